"""The official Pub/Sub emulator for tests: started once per session, stopped by process group.

Use it from any test module::

    from tests.pubsub_emulator import pubsub_emulator  # noqa: F401  (the fixture)

    def test_x(pubsub_emulator):            # "127.0.0.1:PORT"
        ...

``gcloud beta emulators pubsub start`` runs a Python wrapper that starts Java; both are put in a
new session (their own process group), so stopping kills the whole group: SIGTERM, then SIGKILL
after a grace period. One emulator serves the whole session even when several modules import
the fixture (a module-level reference count), and an ``atexit`` hook stops it if pytest dies
before fixture teardown. Tests use fresh topic and subscription names, so sharing is safe.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from localcloud.identities import PROJECT
from localcloud.ports import free_port

EMULATOR_PROJECT = PROJECT
STARTUP_TIMEOUT_S = 60.0  # the JVM takes a few seconds; a cold machine more
STOP_GRACE_S = 10.0


class PubSubEmulator:
    """One emulator process group on a free loopback port."""

    def __init__(self, project: str = EMULATOR_PROJECT) -> None:
        self.project = project
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._workdir = tempfile.TemporaryDirectory(prefix="pubsub-emulator-")
        self._log_path = Path(self._workdir.name) / "emulator.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "PubSubEmulator":
        env = dict(os.environ)
        env.update({
            "CLOUDSDK_CONFIG": str(Path(self._workdir.name) / "gcloud-config"),
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
            "CLOUDSDK_CORE_PROJECT": self.project,
        })
        env.pop("PUBSUB_EMULATOR_HOST", None)
        data_dir = Path(self._workdir.name) / "data"
        data_dir.mkdir()
        with open(self._log_path, "wb") as log:
            self.process = subprocess.Popen(
                ["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port={self.host}",
                 f"--project={self.project}", f"--data-dir={data_dir}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,  # its own process group: the Java child dies with it
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"the Pub/Sub emulator exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"http://{self.host}/", timeout=1) as response:
                    if response.status == 200:  # the emulator answers "Ok" on /
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the Pub/Sub emulator was not ready after {STARTUP_TIMEOUT_S:.0f} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        pgid = process.pid  # start_new_session: the group id is the leader's pid
        gone = False
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                gone = True
                break
            if _group_gone(pgid, process, STOP_GRACE_S):
                gone = True
                break
        try:
            process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass
        self._workdir.cleanup()
        if not gone:  # say so loudly: a surviving JVM would hold the port and memory
            raise RuntimeError(f"the Pub/Sub emulator's process group {pgid} survived SIGKILL")


def _group_gone(pgid: int, leader: subprocess.Popen[bytes], timeout: float) -> bool:
    """True once no process of the group is left (the leader reaped, the Java child gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader.poll()
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


_lock = threading.Lock()
_shared: PubSubEmulator | None = None
_users = 0


def acquire() -> PubSubEmulator:
    global _shared, _users
    with _lock:
        if _shared is None:
            _shared = PubSubEmulator().start()
            atexit.register(_shared.stop)
        _users += 1
        return _shared


def release() -> None:
    global _shared, _users
    with _lock:
        _users -= 1
        if _users == 0 and _shared is not None:
            _shared.stop()
            _shared = None


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[str]:
    """``HOST:PORT`` of a running Pub/Sub emulator (project ``EMULATOR_PROJECT`` by default;
    the emulator accepts any project id)."""
    emulator = acquire()
    try:
        yield emulator.host
    finally:
        release()
