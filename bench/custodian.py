"""Cloud Custodian's GCP function handler, the cold-start anchor (docs/peers.md §5), in its own
virtualenv under ``.bench/c7n-venv`` so that none of its dependencies touch ours.

The versions are the ones docs/peers.md §5 measured, so the two can be compared. The virtualenv is
built once and kept (a stamp file records what is in it); if building it fails (no network, no
wheel for this Python), the reason is returned and the benchmark carries on without the anchor.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".bench" / "c7n-venv"
REQUIREMENTS = ("c7n==0.9.53", "c7n-gcp==0.4.52")
# What Custodian's deployed function imports (inside its handler: c7n_gcp/mu.py, PolicyHandlerTemplate).
HANDLER_IMPORT = "import c7n_gcp.handler"
INSTALL_TIMEOUT_S = 300


def python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> tuple[Path | None, str]:
    """The virtualenv's python and a note; (None, why) when it cannot be had."""
    stamp = VENV / ".installed"
    wanted = " ".join(REQUIREMENTS)
    if stamp.is_file() and stamp.read_text().strip() == wanted and python().is_file():
        return python(), f"cached {VENV.relative_to(ROOT)} ({wanted})"
    try:
        if not python().is_file():
            _run([sys.executable, "-m", "venv", str(VENV)])
        _run([str(python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *REQUIREMENTS])
        _run([str(python()), "-c", HANDLER_IMPORT])
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"Cloud Custodian could not be installed into {VENV.relative_to(ROOT)}: {_reason(exc)}"
    stamp.write_text(wanted + "\n")
    return python(), f"installed {VENV.relative_to(ROOT)} ({wanted})"


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-3:]
        return f"`{' '.join(map(str, exc.cmd[:4]))} ...` exited {exc.returncode}: {' | '.join(tail)}"
    return f"{type(exc).__name__}: {exc}"
