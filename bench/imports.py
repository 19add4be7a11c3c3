"""Cold start of each function beside its floors, measured in the same run (``cold_start.measure_import``:
median of N fresh processes, import wall time inside the child and peak RSS of the process).

- each ``functions/<name>/main.py``, loaded as the Functions Framework loads it;
- floors: ``functions_framework`` alone, ``google.cloud.compute_v1`` alone (docs/peers.md §5);
- Cloud Custodian's ``c7n_gcp.handler`` in its own virtualenv (``custodian.py``);
- for the remediation functions, also main.py plus the client libraries their first event imports
  (``clients.py`` imports them lazily, so an instance pays them on its first event, not at import).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from localcloud.identities import PROJECT

from . import custodian
from .cold_start import ROOT, measure_import

FUNCTIONS = ("ensure_nat", "replace_connector_firewalls", "notify_slack")
REMEDIATION = ("ensure_nat", "replace_connector_firewalls")
FLOORS = {
    "functions_framework": "import functions_framework",
    "compute_v1": "from google.cloud import compute_v1",
}
# What each remediation function's first event imports (egress_guard/clients.py builds these lazily).
FIRST_EVENT_IMPORTS = {
    "ensure_nat": "from google.cloud import compute_v1, vpcaccess_v1, run_v2",
    "replace_connector_firewalls": "from google.cloud import compute_v1, vpcaccess_v1",
}
# The settings a function reads at import. Nothing is contacted: the Pub/Sub channel and every API
# client are created lazily, and the port below is never listened on.
FUNCTION_ENV = {
    "GOOGLE_CLOUD_PROJECT": PROJECT,
    "EGRESS_GUARD_FINDINGS_TOPIC": f"projects/{PROJECT}/topics/egress-guard-findings",
    "PUBSUB_EMULATOR_HOST": "127.0.0.1:9",
}


def main_path(name: str) -> str:
    return f"functions/{name}/main.py"


def load_main_then(name: str, statement: str) -> str:
    """A statement that loads main.py as the Functions Framework does, then runs ``statement``."""
    path = ROOT / main_path(name)
    return (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('main', {str(path)!r}, "
        f"submodule_search_locations=[{str(path.parent)!r}])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        f"sys.path.append({str(path.parent)!r}); sys.modules['main'] = module\n"
        "spec.loader.exec_module(module)\n"
        f"{statement}\n"
    )


def run(runs: int = 5, progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    result: dict[str, Any] = {"runs": runs}
    for name in FUNCTIONS:
        progress(f"cold start: {main_path(name)}")
        result[name] = measure_import(main_path(name), runs, env=FUNCTION_ENV)
    floors: dict[str, Any] = {}
    for name, statement in FLOORS.items():
        progress(f"cold start floor: {statement}")
        floors[name] = {"import": statement, **measure_import(statement, runs)}
    result["floors"] = floors
    first: dict[str, Any] = {}
    for name in REMEDIATION:
        progress(f"cold start: {main_path(name)} + its first event's client libraries")
        first[name] = {"import": f"{main_path(name)}; {FIRST_EVENT_IMPORTS[name]}",
                       **measure_import(load_main_then(name, FIRST_EVENT_IMPORTS[name]), runs, env=FUNCTION_ENV)}
    result["with_first_event_clients"] = first
    result["custodian"] = _custodian(runs, progress)
    return result


def _custodian(runs: int, progress: Callable[[str], None]) -> Mapping[str, Any]:
    progress("cold start anchor: Cloud Custodian (virtualenv under .bench/)")
    python, note = custodian.ensure_venv()
    if python is None:
        return {"import": custodian.HANDLER_IMPORT, "error": note}
    try:
        figures = measure_import(custodian.HANDLER_IMPORT, runs, python=str(python))
    except RuntimeError as exc:
        return {"import": custodian.HANDLER_IMPORT, "error": str(exc)[-500:], "venv": note}
    return {"import": custodian.HANDLER_IMPORT, "venv": note, "versions": list(custodian.REQUIREMENTS), **figures}

