"""Cold start of a function: how long importing its main.py takes, and the peak memory of the process,
each in a fresh interpreter (what a new Cloud Functions instance pays before its first event).

    .venv/bin/python -m bench.cold_start                      # functions/notify_slack/main.py
    .venv/bin/python -m bench.cold_start functions/ensure_nat/main.py "import egress_guard.findings" --runs 9

`wall_s` is the import alone, timed inside the child; `rss_mib` is the child's peak resident set
(os.wait4's ru_maxrss), interpreter included. Both are medians over `runs` processes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# notify_slack's cold-start budget (issue 4): import of main.py in a fresh process.
BUDGETS = {"functions/notify_slack/main.py": {"wall_s": 0.3, "rss_mib": 60.0}}

# main.py reads its settings at import; a placeholder webhook (never contacted) lets it load.
FUNCTION_ENV = {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T00000000/B00000000/BENCHMARKONLY"}

_CHILD = """
import importlib.util, os, sys, time
target = sys.argv[1]
start = time.perf_counter()
if target.endswith(".py"):
    # As the Functions Framework loads a source file: module "main", its directory on sys.path.
    path = os.path.realpath(target)
    spec = importlib.util.spec_from_file_location("main", path, submodule_search_locations=[os.path.dirname(path)])
    module = importlib.util.module_from_spec(spec)
    sys.path.append(os.path.dirname(path))
    sys.modules["main"] = module
    spec.loader.exec_module(module)
else:
    exec(compile(target, "<bench>", "exec"), {})
elapsed = time.perf_counter() - start
os.write(1, repr(elapsed).encode())
"""


def _one_run(target: str, env: Mapping[str, str], python: str) -> tuple[float, float]:
    process = subprocess.Popen(
        [python, "-c", _CHILD, target], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(env), cwd=ROOT
    )
    assert process.stdout is not None and process.stderr is not None
    out = process.stdout.read()
    err = process.stderr.read()
    # wait4, not wait: it returns this child's own resource usage (RUSAGE_CHILDREN would be the max of all).
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"importing {target} failed (exit {process.returncode}):\n{err.decode(errors='replace')}")
    return float(out), usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def measure_import(
    module_path_or_stmt: str,
    runs: int = 5,
    *,
    env: Mapping[str, str] | None = None,
    python: str = sys.executable,
) -> dict[str, float]:
    """Median import wall time (s) and peak RSS (MiB) over `runs` fresh processes.

    `module_path_or_stmt`: a path to a .py file (relative to the repository root, or absolute) or a
    Python statement such as "import egress_guard.findings".
    """
    if runs < 1:
        raise ValueError("runs must be >= 1")
    child_env = {**os.environ, **FUNCTION_ENV, **(env or {})}
    walls, rss = [], []
    for _ in range(runs):
        wall, peak = _one_run(module_path_or_stmt, child_env, python)
        walls.append(wall)
        rss.append(peak)
    return {"wall_s": round(statistics.median(walls), 4), "rss_mib": round(statistics.median(rss), 1)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", default=["functions/notify_slack/main.py"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is over its budget")
    args = parser.parse_args(argv)

    results = {target: measure_import(target, args.runs) for target in args.targets}
    results["<interpreter alone>"] = measure_import("pass", args.runs)
    over = [
        target for target, figures in results.items()
        if any(figures[key] > limit for key, limit in BUDGETS.get(target, {}).items())
    ]
    if args.json:
        print(json.dumps({"cold_start": results, "runs": args.runs, "over_budget": over}, indent=2))
    else:
        print(f"{'cold start (median of ' + str(args.runs) + ')':<40} {'import s':>9} {'peak MiB':>9}  budget")
        for target, figures in results.items():
            budget = BUDGETS.get(target)
            verdict = "" if budget is None else (
                f"{'OVER' if target in over else 'ok'} (<= {budget['wall_s']} s, <= {budget['rss_mib']:g} MiB)"
            )
            print(f"{target:<40} {figures['wall_s']:>9.3f} {figures['rss_mib']:>9.1f}  {verdict}")
    return 1 if args.check and over else 0


if __name__ == "__main__":
    raise SystemExit(main())
