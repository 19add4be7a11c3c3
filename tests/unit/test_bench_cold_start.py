"""bench.cold_start measures in fresh processes; here only that it measures, never how fast."""

from __future__ import annotations

import pytest

from bench.cold_start import measure_import


def test_measure_import_reports_median_wall_and_peak_rss() -> None:
    figures = measure_import("import json", runs=1)
    assert set(figures) == {"wall_s", "rss_mib"}
    assert figures["wall_s"] >= 0 and figures["rss_mib"] > 0


def test_measure_import_fails_loudly_when_the_import_fails() -> None:
    with pytest.raises(RuntimeError, match="no_such_module"):
        measure_import("import no_such_module", runs=1)
