"""``make bench``: speed, cost and scale of egress-guard, side by side with its anchors, in one run.

    .venv/bin/python -m bench                       # everything: .bench/results.json and a table
    .venv/bin/python -m bench --only cold_start,throughput --runs 3

Sections (each its own module): ``cold_start`` (imports.py), ``throughput``, ``e2e`` and
``api_calls`` (on the local stack, harness.py), ``sweep``, ``sweep_organization`` (organization.py). Then ``goals`` judges the issue's goals on
ratios of figures from this run. A benchmark never fails on a figure: the exit status is 1 only
when a section could not run at all (its error is in the results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import api_calls, e2e, first_event, goals, imports, organization, real_path, report, sweep, throughput
from .harness import LocalStack

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / ".bench"
SECTIONS = ("cold_start", "throughput", "real_path", "first_event", "e2e", "api_calls", "sweep", "sweep_organization")
STACK_SECTIONS = ("real_path", "first_event", "e2e", "api_calls")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per cold-start figure (median)")
    parser.add_argument("--events", type=int, default=30, help="end-to-end events at zero latency")
    parser.add_argument("--realistic-events", type=int, default=30, help="end-to-end events, realistic profile")
    parser.add_argument("--path-events", type=int, default=8, help="real-path events per profile (connectors)")
    parser.add_argument("--connector-ready-s", type=float, default=real_path.DEFAULT_CONNECTOR_READY_S,
                        help="seconds a new connector stays CREATING on the real path")
    parser.add_argument("--sizes", default=",".join(map(str, sweep.SIZES)), help="sweep estate sizes (connectors)")
    parser.add_argument("--projects", default=",".join(map(str, organization.SIZES)),
                        help="sweep --organization sizes (projects)")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "results.json")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; known: {', '.join(SECTIONS)}")

    OUT_DIR.mkdir(exist_ok=True)
    _quiet_logs()
    started = time.monotonic()

    def progress(line: str) -> None:
        print(f"[bench {time.monotonic() - started:6.1f}s] {line}", file=sys.stderr, flush=True)

    results: dict[str, Any] = {"meta": _meta()}
    errors: dict[str, str] = {}

    def section(name: str, run: Callable[[], Any]) -> None:
        if name not in chosen:
            return
        try:
            results[name] = run()
        except Exception as exc:  # recorded and reported; the other sections still run
            errors[name] = f"{type(exc).__name__}: {exc}"
            progress(f"{name} failed: {errors[name]}")
        finally:
            _quiet_logs()

    section("cold_start", lambda: imports.run(args.runs, progress))
    section("throughput", lambda: throughput.run(progress))
    if set(STACK_SECTIONS) & set(chosen):
        try:
            progress("starting the local stack (Pub/Sub emulator, localcloud, three functions, Slack receiver)")
            with LocalStack() as stack:
                # First events of fresh instances are measured on their own (first_event restarts each
                # function); the real path runs with the sink attached, the others publish themselves.
                section("real_path", lambda: real_path.run(stack, args.path_events, args.connector_ready_s, progress))
                section("first_event", lambda: first_event.run(stack, args.runs, progress))
                section("e2e", lambda: e2e.run(stack, args.events, args.realistic_events, progress))
                section("api_calls", lambda: api_calls.run(stack, progress))
            progress("local stack stopped")
        except Exception as exc:
            for name in STACK_SECTIONS:
                if name in chosen and name not in results:
                    errors.setdefault(name, f"the local stack: {type(exc).__name__}: {exc}")
            progress(f"local stack failed: {exc}")
        if "real_path" in results:  # named e2e.real_path in the results (issue 15)
            results.setdefault("e2e", {})["real_path"] = results.pop("real_path")
        if "first_event" in results:  # cold_start.first_event.<function>
            results.setdefault("cold_start", {})["first_event"] = results.pop("first_event")
    if "sweep" in chosen:
        try:
            rows, setup = sweep.run([int(s) for s in args.sizes.split(",") if s.strip()], progress)
            results["sweep_realistic"], results["sweep_setup"] = rows, setup
        except Exception as exc:
            errors["sweep"] = f"{type(exc).__name__}: {exc}"
            progress(f"sweep failed: {errors['sweep']}")
        finally:
            _quiet_logs()

    section("sweep_organization",
            lambda: organization.run([int(s) for s in args.projects.split(",") if s.strip()], progress))

    results["goals"] = goals.evaluate(results)
    results["meta"]["seconds"] = round(time.monotonic() - started, 1)
    if errors:
        results["errors"] = errors
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    print(report.render(results))
    print(f"\nresults: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out} "
          f"({results['meta']['seconds']:.0f} s)")
    return 1 if errors else 0


def _quiet_logs() -> None:
    """egress-guard's JSON log lines (in-process sections) go to .bench/bench.log, not the table."""
    from egress_guard.log import setup_logging

    global _LOG_FILE
    if _LOG_FILE is None:
        _LOG_FILE = open(OUT_DIR / "bench.log", "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the run
    setup_logging(stream=_LOG_FILE)


_LOG_FILE: Any = None


def _meta() -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": commit,
            "python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


if __name__ == "__main__":
    sys.exit(main())
