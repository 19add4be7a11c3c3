"""The local stack: the official Pub/Sub emulator, localcloud, the three functions under the real
Functions Framework, and a local Slack receiver (one per Slack destination the policy's notify.routes
name, besides the default), wired as infra/ wires them in Google Cloud.

    python -m localcloud.stack up [--guardrails=on|off] [--policy=FILE] [--instances=N]   (make up)
    python -m localcloud.stack down                                                         (make down)

``up`` first stops whatever a previous ``up`` left (so starting twice, or after a crash, works),
starts every process in its own session (so ``down`` can stop a process and its children, the
emulator's Java included, by PID), waits until each answers, creates the topics and push
subscriptions, gives localcloud the audit sink with the filter text rendered from infra/, and
writes ``.local/env`` with the shell ``export`` lines for gcloud and the clients.

Instances as deployed: Cloud Run runs each function at concurrency 1 on as many instances as
Pub/Sub push needs (infra/modules/guardrail-function: ``max_instance_request_concurrency = 1``).
``--instances=N`` runs each function as N such instances behind its push port: the Functions
Framework serves through gunicorn when not in debug mode, and its gunicorn application reads the
worker and thread counts from the environment (``WORKERS``, ``THREADS`` in
functions_framework/_http/gunicorn.py), so each function runs with ``WORKERS=N THREADS=1``: N
separate processes (forked by one gunicorn master), each serving one request at a time, sharing
nothing in memory (no lock, no remembered decision), accepting from the one port Pub/Sub pushes
to. A killed worker is replaced by the master, as Cloud Run starts a new instance. ``down`` stops
the master's process group, the workers with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import requests

from localcloud.gcloud_config import gcloud_credentials
from localcloud.identities import FUNCTION_ACCOUNTS, PROJECT, REGION
from localcloud.ports import free_port, lost_its_port, port_free

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = ROOT / ".local"

AUDIT_TOPIC = "egress-guard-audit"
FINDINGS_TOPIC = "egress-guard-findings"
DEAD_LETTER_TOPIC = "egress-guard-dead-letter"
DEAD_LETTER_INBOX = "egress-guard-dead-letter-inbox"

# The functions, the topic each is pushed from, and the service account each runs as (identities.py).
FUNCTIONS = {
    "ensure_nat": {"topic": AUDIT_TOPIC, "sa": FUNCTION_ACCOUNTS["ensure_nat"]},
    "replace_connector_firewalls": {"topic": AUDIT_TOPIC, "sa": FUNCTION_ACCOUNTS["replace_connector_firewalls"]},
    "notify_slack": {"topic": FINDINGS_TOPIC, "sa": FUNCTION_ACCOUNTS["notify_slack"]},
}

DEFAULT_PORTS = {"localcloud": 8790, "slack": 8791, "pubsub": 8085,
                 "ensure_nat": 8801, "replace_connector_firewalls": 8802, "notify_slack": 8803}

START_TIMEOUT_S = 60.0
DEFAULT_INSTANCES = 1  # make up INSTANCES=N; the reliability suite runs with 3 (the deployment's default max)


PORT_ATTEMPTS = 3  # a server that finds its port taken is started again on another


class PortTaken(RuntimeError):
    """A server exited while starting because another program bound its port first."""


@dataclass
class Stack:
    state_dir: Path = DEFAULT_STATE_DIR
    guardrails: bool = True
    policy: str | None = None
    project: str = PROJECT
    fixed_ports: bool = True  # tests pass False: every port is picked free
    instances: int = DEFAULT_INSTANCES  # processes per function, each serving one request at a time
    # Settings every function instance gets on top of ``environment()`` (EGRESS_GUARD_*), e.g. a test's
    # shorter EGRESS_GUARD_OPERATION_TIMEOUT_SECONDS, so that a timeout it injects costs seconds.
    function_settings: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    log: Callable[[str], None] = print
    _log_offsets: dict[str, int] = field(default_factory=dict, repr=False)
    _gcloud_properties: dict[tuple[str, int], dict[str, str]] = field(default_factory=dict, repr=False)

    # ---- paths --------------------------------------------------------------------------
    @property
    def pid_dir(self) -> Path:
        return self.state_dir / "pids"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def env_file(self) -> Path:
        return self.state_dir / "env"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    # ---- lifecycle ----------------------------------------------------------------------
    def up(self) -> dict[str, str]:
        self.down(quiet=True)
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._choose_ports()
        try:
            self._start_on_a_free_port("pubsub", self._start_pubsub)
            self._start_on_a_free_port("localcloud", self._start_localcloud)
            for receiver in ("slack", *self.team_receivers):  # one Slack receiver per destination
                self._start_on_a_free_port(receiver, lambda receiver=receiver: self._start_slack(receiver))
            if self.guardrails:
                for name in FUNCTIONS:
                    self._start_on_a_free_port(name, lambda name=name: self._start_function(name, self.environment()))
            env = self.environment()
            self._wire(env)
            self._write_env(env)
        except BaseException:
            self.down(quiet=True)
            raise
        self.log(f"local stack up: env in {self.env_file}")
        return self.environment()

    def down(self, quiet: bool = False) -> None:
        if not self.pid_dir.exists():
            return
        for pid_file in sorted(self.pid_dir.glob("*.pid")):
            name = pid_file.stem
            try:
                pid = int(pid_file.read_text().strip())
            except ValueError:
                pid_file.unlink(missing_ok=True)
                continue
            if _stop_process_group(pid) and not quiet:
                self.log(f"stopped {name} (pid {pid})")
            pid_file.unlink(missing_ok=True)

    def pid(self, name: str) -> int:
        """The PID (and process group) of a process this stack started."""
        return int((self.pid_dir / f"{name}.pid").read_text().strip())

    def instance_pids(self, name: str) -> list[int]:
        """The PIDs of function ``name``'s instances: the gunicorn master's worker processes."""
        return sorted(_children(self.pid(name)))

    def restart_function(self, name: str) -> int:
        """Start function ``name`` again on its own port, after a crash or a kill (Pub/Sub pushes
        to that port, so redeliveries reach the new process); returns the new PID."""
        if (self.pid_dir / f"{name}.pid").exists():
            _stop_process_group(self.pid(name), timeout=5.0)  # nothing left running if it was killed
        self._start_function(name, self.environment())
        return self.pid(name)

    # ---- Slack destinations -------------------------------------------------------------
    @property
    def slack_destinations(self) -> tuple[str, ...]:
        """The team destinations the policy's notify.routes name (the default one is "slack")."""
        from egress_guard.policy import DEFAULT_DESTINATION, load_policy

        if not self.policy:
            return ()
        return tuple(d for d in load_policy(self.policy).notify.destinations if d != DEFAULT_DESTINATION)

    @property
    def team_receivers(self) -> tuple[str, ...]:
        return tuple(f"slack-{destination}" for destination in self.slack_destinations)

    # ---- environment --------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        lc = self.url("localcloud")
        env = {
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE": f"{lc}/compute/v1/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_VPCACCESS": f"{lc}/vpcaccess/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN": f"{lc}/run/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDFUNCTIONS": f"{lc}/cloudfunctions/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE": f"{lc}/serviceusage/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER": f"{lc}/cloudresourcemanager/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDBUILD": f"{lc}/cloudbuild/",
            "CLOUDSDK_CORE_SHOULD_PROMPT_TO_ENABLE_API": "false",
            "CLOUDSDK_CONFIG": str(self.state_dir / "gcloud"),
            "CLOUDSDK_CORE_PROJECT": self.project,
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            # gcloud run derives REGION-host from the override; localcloud answers as that proxy.
            "CLOUDSDK_PROXY_TYPE": "http",
            "CLOUDSDK_PROXY_ADDRESS": "127.0.0.1",
            "CLOUDSDK_PROXY_PORT": str(self.ports["localcloud"]),
            # A token that never reaches Google, and trust in localcloud's gRPC gateway (gcloud_config.py).
            **self._gcloud_credentials(),
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{self.ports['pubsub']}",
            "PUBSUB_PROJECT_ID": self.project,
            "LOCALCLOUD_URL": lc,
            "SLACK_RECEIVER_URL": self.url("slack"),
            "GOOGLE_CLOUD_PROJECT": self.project,
            "EGRESS_GUARD_FINDINGS_TOPIC": f"projects/{self.project}/topics/{FINDINGS_TOPIC}",
            # Where `egress-guard undo FINDING_ID` looks findings up (infra: the findings archive).
            "EGRESS_GUARD_FINDINGS_SUBSCRIPTION": f"projects/{self.project}/subscriptions/{FINDINGS_TOPIC}-watch",
            # What `egress-guard dead-letters` reads (infra: the dead-letter inbox).
            "EGRESS_GUARD_DEAD_LETTER_SUBSCRIPTION": f"projects/{self.project}/subscriptions/{DEAD_LETTER_TOPIC}-watch",
            "EGRESS_GUARD_SELF_PRINCIPALS": ",".join(f["sa"] for f in FUNCTIONS.values()),
        }
        for destination in self.slack_destinations:  # where each team's receiver listens
            env[f"SLACK_RECEIVER_URL_{destination.upper().replace('-', '_')}"] = self.url(f"slack-{destination}")
        if self.guardrails:
            for name in FUNCTIONS:
                env[f"EGRESS_GUARD_URL_{name.upper()}"] = self.url(name)
        if self.policy:
            env["EGRESS_GUARD_POLICY"] = str(Path(self.policy).resolve())
        return env

    def _gcloud_credentials(self) -> dict[str, str]:
        """Written into the stack's own gcloud configuration directory once per localcloud process (each
        makes its own CA when it starts)."""
        key = (self.url("localcloud"), self.pid("localcloud"))
        if key not in self._gcloud_properties:
            self._gcloud_properties[key] = gcloud_credentials(self.state_dir / "gcloud", self.url("localcloud"))
        return self._gcloud_properties[key]

    def _write_env(self, env: dict[str, str]) -> None:
        lines = ["# written by `make up`; source it: . .local/env",
                 f"# each function runs as {self.instances} instance(s), one request at a time each "
                 f"(gunicorn WORKERS={self.instances} THREADS=1); `make down` stops them all"]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items())]
        self.env_file.write_text("\n".join(lines) + "\n")
        (self.state_dir / "gcloud").mkdir(exist_ok=True)

    # ---- processes ----------------------------------------------------------------------
    def _choose_ports(self) -> None:
        for name, default in DEFAULT_PORTS.items():
            if name in self.ports:
                continue
            self.ports[name] = default if self.fixed_ports and port_free(default) else free_port()
        for receiver in self.team_receivers:  # as many as the policy names: picked free
            self.ports.setdefault(receiver, free_port())

    def _start_on_a_free_port(self, name: str, start: Callable[[], None]) -> None:
        """Start a server; if another program took its port meanwhile, start it on a fresh one.
        Nothing has been told the port yet (env, subscriptions and .local/env are written after
        every server answers), so moving it is safe."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                return start()
            except PortTaken as exc:
                if attempt == PORT_ATTEMPTS:
                    raise
                taken, self.ports[name] = self.ports[name], free_port()
                self.log(f"{name}: port {taken} was taken ({exc}); trying {self.ports[name]}")

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log_path = self.log_dir / f"{name}.log"
        self._log_offsets[name] = log_path.stat().st_size if log_path.exists() else 0
        log_file = open(log_path, "ab")
        proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, cwd=ROOT, start_new_session=True)
        (self.pid_dir / f"{name}.pid").write_text(str(proc.pid))
        return proc

    def _wait(self, name: str, proc: subprocess.Popen, ready: Callable[[], bool]) -> None:
        deadline = time.time() + START_TIMEOUT_S
        while time.time() < deadline:
            if proc.poll() is not None:
                with open(self.log_dir / f"{name}.log", "rb") as log:  # this start's output only
                    log.seek(self._log_offsets.get(name, 0))
                    tail = log.read().decode(errors="replace")[-2000:]
                kind = PortTaken if lost_its_port(tail) else RuntimeError
                raise kind(f"{name} exited with {proc.returncode} while starting:\n{tail}")
            try:
                if ready():
                    self.log(f"{name} ready on port {self.ports.get(name, '?')} (pid {proc.pid})")
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not become ready within {START_TIMEOUT_S:.0f} s; see {self.log_dir / (name + '.log')}")

    def _start_pubsub(self) -> None:
        data_dir = self.state_dir / "pubsub"
        data_dir.mkdir(parents=True, exist_ok=True)
        argv = ["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{self.ports['pubsub']}",
                f"--project={self.project}", f"--data-dir={data_dir}", "--quiet"]
        env = {"CLOUDSDK_CORE_DISABLE_PROMPTS": "1", "CLOUDSDK_CONFIG": str(self.state_dir / "gcloud"),
               "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true"}
        proc = self._spawn("pubsub", argv, env)
        self._wait("pubsub", proc, lambda: requests.get(self.url("pubsub"), timeout=1).ok)

    def _start_localcloud(self) -> None:
        argv = [sys.executable, "-m", "localcloud", "--port", str(self.ports["localcloud"])]
        env = {"PUBSUB_EMULATOR_HOST": f"127.0.0.1:{self.ports['pubsub']}"}
        proc = self._spawn("localcloud", argv, env)
        self._wait("localcloud", proc, lambda: requests.get(self.url("localcloud") + "/_localcloud/health", timeout=1).ok)

    def _start_slack(self, name: str = "slack") -> None:
        argv = [sys.executable, "-m", "localcloud.slack_receiver", "--port", str(self.ports[name])]
        proc = self._spawn(name, argv)
        self._wait(name, proc, lambda: requests.get(self.url(name) + "/_health", timeout=1).ok)

    def _start_function(self, name: str, env: dict[str, str]) -> None:
        source = ROOT / "functions" / name / "main.py"
        argv = [str(Path(sys.executable).parent / "functions-framework"), f"--target={name}", f"--source={source}",
                "--signature-type=cloudevent", "--host=127.0.0.1", f"--port={self.ports[name]}"]
        # N instances at concurrency 1 (module docstring): the Functions Framework's gunicorn reads these.
        fenv = {**env, **self.function_settings, "EGRESS_GUARD_PRINCIPAL": FUNCTIONS[name]["sa"], "PYTHONUNBUFFERED": "1",
                "WORKERS": str(self.instances), "THREADS": "1"}
        if name == "notify_slack":
            from egress_guard.policy import webhook_variable

            fenv["SLACK_WEBHOOK_URL"] = f"{self.url('slack')}/services/T000/B000/localcloud"
            for destination in self.slack_destinations:  # each destination's webhook, as its own secret would
                fenv[webhook_variable(destination)] = f"{self.url('slack-' + destination)}/services/T000/B000/{destination}"
        proc = self._spawn(name, argv, fenv)
        # functions-framework answers GET / of a CloudEvent function with 4xx once it listens.
        self._wait(name, proc, lambda: requests.get(self.url(name), timeout=1).status_code < 500
                   and len(_children(proc.pid)) >= self.instances)

    # ---- wiring -------------------------------------------------------------------------
    def _wire(self, env: dict[str, str]) -> None:
        from google.cloud import pubsub_v1

        os.environ["PUBSUB_EMULATOR_HOST"] = env["PUBSUB_EMULATOR_HOST"]
        publisher = pubsub_v1.PublisherClient()
        subscriber = pubsub_v1.SubscriberClient()
        for topic in (AUDIT_TOPIC, FINDINGS_TOPIC, DEAD_LETTER_TOPIC):
            publisher.create_topic(name=publisher.topic_path(self.project, topic))
        # A pull subscription on each topic lets tests and the demo watch the traffic.
        for topic in (AUDIT_TOPIC, FINDINGS_TOPIC, DEAD_LETTER_TOPIC):
            subscriber.create_subscription(name=subscriber.subscription_path(self.project, f"{topic}-watch"),
                                           topic=publisher.topic_path(self.project, topic))
        if self.guardrails:
            for name, spec in FUNCTIONS.items():
                subscriber.create_subscription(request={
                    "name": subscriber.subscription_path(self.project, f"{name}-push"),
                    "topic": publisher.topic_path(self.project, spec["topic"]),
                    "push_config": {"push_endpoint": self.url(name) + "/"},
                    "ack_deadline_seconds": 60,
                    "retry_policy": {"minimum_backoff": {"seconds": 1}, "maximum_backoff": {"seconds": 10}},
                    "dead_letter_policy": {"dead_letter_topic": publisher.topic_path(self.project, DEAD_LETTER_TOPIC),
                                           "max_delivery_attempts": 10},
                })
        # The dead-letter inbox infra's notifications module creates (doctor counts what waits there).
        subscriber.create_subscription(name=subscriber.subscription_path(self.project, DEAD_LETTER_INBOX),
                                       topic=publisher.topic_path(self.project, DEAD_LETTER_TOPIC))
        from localcloud.infra_sink import sink_filter_from_terraform

        sink = {"name": "egress-guard-audit", "filter": sink_filter_from_terraform(ROOT / "infra"),
                "destination": f"pubsub.googleapis.com/projects/{self.project}/topics/{AUDIT_TOPIC}",
                "parent": f"projects/{self.project}"}
        created = self._control("POST", "sinks", sink, "the audit sink")
        # log-routing's google_pubsub_topic_iam_member.sink_writer: the writer identity may publish.
        # (through localcloud: the Pub/Sub emulator answers IAM calls with 501)
        audit_topic = publisher.topic_path(self.project, AUDIT_TOPIC)
        grant = {"policy": {"bindings": [{"role": "roles/pubsub.publisher", "members": [created["writer_identity"]]}]}}
        response = requests.post(f"{self.url('localcloud')}/pubsub/v1/{audit_topic}:setIamPolicy", json=grant, timeout=10)
        if response.status_code >= 400:
            raise RuntimeError(f"localcloud refused the sink writer's grant: {response.status_code} {response.text}")
        self.log(f"audit sink wired: {len(sink['filter'])} characters of filter from infra/ -> {AUDIT_TOPIC}")
        self._deploy_identities()
        (self.state_dir / "stack.json").write_text(json.dumps({"ports": self.ports, "guardrails": self.guardrails,
                                                                "policy": self.policy, "instances": self.instances},
                                                               indent=2))


    def _control(self, method: str, path: str, body: dict, what: str) -> dict:
        response = requests.request(method, f"{self.url('localcloud')}/_localcloud/{path}", json=body, timeout=10)
        if response.status_code >= 400:
            raise RuntimeError(f"localcloud refused {what}: {response.status_code} {response.text}")
        return response.json()

    def _deploy_identities(self) -> None:
        """What ``terraform apply`` of infra/examples/single-project creates besides topics and the
        sink: each function's custom role (its permissions read from infra/) granted to its service
        account on the project, and the Slack webhook secret with one version."""
        from egress_guard.doctor import expected
        from localcloud.infra_sink import functions_from_terraform

        deployed = functions_from_terraform(ROOT / "infra", project_id=self.project)
        for spec in expected.FUNCTIONS:
            permissions = deployed[spec.key]["permissions"]
            if not permissions:  # notify_slack calls no Google API: no role (serviceaccount.tf)
                continue
            role = f"projects/{self.project}/roles/{spec.role_id()}"
            self._control("PUT", "iam/roles", {"name": role, "permissions": permissions,
                                               "title": f"egress-guard {spec.name()}"}, f"the role {role}")
            self._control("POST", "iam/bindings", {"resource": f"projects/{self.project}", "role": role,
                                                   "member": f"serviceAccount:{spec.service_account(self.project)}"},
                          f"the binding of {role}")
        secret = expected.Names().slack_secret
        self._control("POST", "secrets", {"project": self.project, "secret": secret, "versions": 1},
                      f"the secret {secret}")
        self.log(f"identities wired: custom roles and bindings from infra/, secret {secret}")
        if self.guardrails:
            self._deploy_functions(deployed)

    def _deploy_functions(self, deployed: dict) -> None:
        """Each function's Cloud Functions v2 record, created through localcloud's functions API as
        infra/modules/guardrail-function declares it (the processes serving them run beside it), and
        waited for until ACTIVE."""
        from egress_guard.doctor import expected

        names = expected.Names()
        parent = f"{self.url('localcloud')}/cloudfunctions/v2/projects/{self.project}/locations/{REGION}/functions"
        principals = ",".join(expected.self_principals(self.project))
        for spec in expected.FUNCTIONS:
            account = spec.service_account(self.project)
            environment = {"EGRESS_GUARD_PROJECT": self.project, "EGRESS_GUARD_SELF_PRINCIPALS": principals}
            if deployed[spec.key]["publishes_findings"]:
                environment["EGRESS_GUARD_FINDINGS_TOPIC"] = f"projects/{self.project}/topics/{names.findings_topic}"
            body = {
                "description": deployed[spec.key]["description"],
                "buildConfig": {"runtime": "python312", "entryPoint": deployed[spec.key]["entry_point"]},
                "serviceConfig": {"serviceAccountEmail": account, "ingressSettings": "ALLOW_INTERNAL_ONLY",
                                  "allTrafficOnLatestRevision": True, "maxInstanceRequestConcurrency": 1,
                                  "environmentVariables": environment},
                "eventTrigger": {"triggerRegion": REGION, "eventType": "google.cloud.pubsub.topic.v1.messagePublished",
                                 "pubsubTopic": f"projects/{self.project}/topics/{names.trigger_topic(spec)}",
                                 "retryPolicy": "RETRY_POLICY_RETRY", "serviceAccountEmail": account},
            }
            response = requests.post(parent, params={"functionId": spec.name()}, json=body, timeout=10)
            if response.status_code >= 400:
                raise RuntimeError(f"localcloud refused the function {spec.name()}: {response.status_code} {response.text}")
        deadline = time.time() + START_TIMEOUT_S
        while time.time() < deadline:
            listed = requests.get(parent, timeout=10).json().get("functions", [])
            if len(listed) == len(expected.FUNCTIONS) and all(f.get("state") == "ACTIVE" for f in listed):
                self.log(f"functions deployed: {', '.join(f['name'].rsplit('/', 1)[-1] for f in listed)}")
                return
            time.sleep(0.1)
        raise RuntimeError("the functions' records did not become ACTIVE in localcloud")


def _children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (from /proc: the stack runs on Linux and macOS has no /proc;
    there ``ps`` says the same)."""
    children: set[int] = set()
    proc = Path("/proc")
    if not proc.is_dir():
        out = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "ppid="], capture_output=True, text=True).stdout
        return {int(a) for a, b in (line.split() for line in out.splitlines() if line.strip()) if int(b) == pid}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()  # after the command name, which may hold spaces
        if int(fields[1]) == pid and fields[0] != "Z":
            children.add(int(entry.name))
    return children


def _stop_process_group(pid: int, timeout: float = 10.0) -> bool:
    """SIGTERM the process group, then SIGKILL what is left. True when something was running."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        try:  # reap our own child if it is one, so it does not linger as a zombie
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localcloud.stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--guardrails", choices=["on", "off"], default="on")
    parser.add_argument("--policy", default=None, help="policy YAML passed to the functions")
    parser.add_argument("--instances", type=int, default=DEFAULT_INSTANCES,
                        help="instances per function, each serving one request at a time (default 1)")
    args = parser.parse_args(argv)
    if args.instances < 1:
        print(f"--instances must be at least 1, not {args.instances}", file=sys.stderr)
        return 2
    stack = Stack(guardrails=args.guardrails == "on", policy=args.policy, instances=args.instances)
    if args.command == "down":
        stack.down()
        return 0
    if args.policy and not Path(args.policy).is_file():
        print(f"policy file not found: {args.policy}", file=sys.stderr)
        return 2
    try:
        stack.up()
    except RuntimeError as exc:
        print(f"make up failed: {exc}", file=sys.stderr)
        return 1
    print(f"source it with:  . {stack.env_file.relative_to(ROOT) if stack.env_file.is_relative_to(ROOT) else stack.env_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
