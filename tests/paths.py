"""Where the tests find the recorded Google material: the repository's own reference/ folder
(reference/README.md says what each file is and where it came from)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reference"
AUDIT_SAMPLES = REFERENCE / "audit-samples"
HTTP_RECORDINGS = REFERENCE / "gcp-http-logs"
