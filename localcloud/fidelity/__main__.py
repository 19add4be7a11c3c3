"""``python -m localcloud.fidelity`` (``make fidelity``): replay the recordings, print the report.

Writes the whole report as JSON to ``.local/fidelity.json`` and exits 1 when the gate fails (a
difference from real Google traffic nobody explained, an unknown route, a 5xx), 2 when the
recordings cannot be read.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from localcloud.fidelity import recording, replay, report

DEFAULT_JSON = Path(".local") / "fidelity.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud.fidelity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=Path, default=None,
                        help=f"folder of *_http.log recordings (default ${recording.RECORDINGS_ENV} or "
                             "reference/gcp-http-logs)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the JSON report")
    parser.add_argument("--only", default="", help="replay only the files whose name contains this text")
    parser.add_argument("--summary", action="store_true", help="print the summary table only")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise

    try:
        recordings = recording.load_folder(args.recordings)
    except recording.RecordingError as exc:
        print(f"fidelity: {exc}", file=sys.stderr)
        return 2
    recordings = [r for r in recordings if args.only in r.name]
    if not recordings:
        print("fidelity: no recording to replay", file=sys.stderr)
        return 2

    result = report.build(replay.replay_all(recordings))
    print(report.render_summary(result) if args.summary else report.render_text(result), end="\n")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(report.dumps(result), encoding="utf-8")
    print(f"JSON report: {args.json}")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
