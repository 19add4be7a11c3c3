"""Where the tests find things outside the repository: `../shared` sits beside the clone
(in CI too); EGRESS_GUARD_SHARED overrides it."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EGRESS_GUARD_SHARED", ROOT.parent / "shared"))
AUDIT_SAMPLES = SHARED / "reference" / "audit-samples"
HTTP_RECORDINGS = SHARED / "reference" / "gcp-http-logs"
