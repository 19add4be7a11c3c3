"""localcloud fidelity, measured (issue 8): Google's recorded traffic replayed against localcloud.

Every recording in reference/gcp-http-logs is replayed, in order, against an in-process
localcloud and each answer compared structurally with Google's (localcloud/fidelity). The gate:
recordings of real Google traffic are 100% structurally identical or explained (known.py); no
recording meets an unknown route, a transport error or a 5xx. Nothing here is xfail: a difference
from real traffic is a localcloud bug to fix, or a recording artefact to explain in known.py.
"""

from __future__ import annotations

import pytest

from localcloud.fidelity import compare, known, recording, replay, report
from tests.paths import HTTP_RECORDINGS

pytestmark = pytest.mark.contract

NAMES = sorted(p.name for p in HTTP_RECORDINGS.glob("*.log"))
# Recorded against Google itself (SOURCES.md): REAL, and the probably-real audit probes.
EVIDENCE = sorted(name for name, provenance in recording.load_provenance(HTTP_RECORDINGS).items()
                  if provenance.is_evidence and name in NAMES)


@pytest.fixture(scope="module")
def fidelity() -> report.Report:
    return report.build(replay.replay_all(recording.load_folder(HTTP_RECORDINGS)))


def _file(result: report.Report, name: str) -> report.FileResult:
    return next(f for f in result.files if f.name == name)


def test_fidelity_summary_covers_every_recording(fidelity: report.Report, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print("\n" + report.render_summary(fidelity))
    assert [f.name for f in fidelity.files] == NAMES
    assert fidelity.totals()["replayed"] > 0


@pytest.mark.parametrize("name", NAMES)
def test_recording_replays_without_unknown_routes_or_server_errors(fidelity: report.Report, name: str) -> None:
    f = _file(fidelity, name)
    broken = [f"#{e.index} {e.method} {e.path}: {e.verdict} {e.status} {e.note}"
              for e in f.exchanges if e.outcome in (replay.UNKNOWN_ROUTE, replay.TRANSPORT_ERROR) or e.server_error]
    assert not broken, "\n".join(broken)
    assert all(step.ok for step in f.environment), [step for step in f.environment if not step.ok]


@pytest.mark.parametrize("name", EVIDENCE)
def test_real_traffic_is_structurally_identical_or_explained(fidelity: report.Report, name: str) -> None:
    """MOCK and MOCK-DERIVED files are a second opinion: their differences are in the report only."""
    f = _file(fidelity, name)
    differing = [f"#{e.index} (line {e.line}) {e.method} {e.path}\n    " +
                 "\n    ".join(x.difference.describe() for x in e.unexplained)
                 for e in f.exchanges if e.verdict == report.DIFFERS]
    assert not differing, f"{name} differs from {f.provenance.value} Google traffic:\n" + "\n".join(differing)


# ---- the pieces, on small inputs ------------------------------------------------------------------
QUIRKY = """GET https://compute.googleapis.com/compute/v1/projects/${projectId}/global/operations/${operationID}?alt=json

200 OK
Vary: Origin
Vary: X-Origin

{
  "status": "DONE"
}

---

POST https://run.googleapis.com/v2/projects/${projectId}/locations/us-central1/jobs?alt=json&jobId=${jobID}
Content-Type: application/json

{
  "template": {}
}

404 Not Found
X-Gfe-Server: ESF

not json"""


def test_parser_takes_headerless_requests_repeated_headers_and_unreadable_bodies() -> None:
    first, second = recording.parse_text(QUIRKY)
    assert first.request.headers.pairs == () and first.request.body is None
    assert first.response is not None and first.response.headers.get_all("vary") == ["Origin", "X-Origin"]
    assert first.response.body == {"status": "DONE"}
    assert (second.line, second.request.method, second.request.body) == (13, "POST", {"template": {}})
    assert second.request.query["jobId"] == "${jobID}"
    assert second.response is not None and second.response.status == 404
    assert second.response.body is None and second.response.body_text == "not json"


def test_parser_refuses_a_block_without_request_line() -> None:
    with pytest.raises(recording.RecordingError, match="<text>:1"):
        recording.parse_text("200 OK\n\n{}")


def test_provenance_comes_from_sources_md() -> None:
    found = recording.load_provenance(HTTP_RECORDINGS)
    assert found["compute-computefirewall._http.log"] is recording.Provenance.REAL
    assert found["compute-computerouternatbasic._http.log"] is recording.Provenance.MOCK
    assert found["vpcaccess-cidrconnector._http.log"] is recording.Provenance.MOCK_DERIVED
    assert found["run-runworkerpool-minimal._audit_probe.log"] is recording.Provenance.PROBABLY_REAL


def test_classify_maps_google_hosts_to_localcloud_paths() -> None:
    t = replay.classify("https://vpcaccess.googleapis.com/v1beta1/projects/p/locations/us-central1/connectors/c?alt=json")
    assert (t.service, t.emulated, t.local_path, t.collection, t.scope) == (
        "vpcaccess", True, "/vpcaccess/v1beta1/projects/p/locations/us-central1/connectors/c", "connectors",
        "locations/us-central1")
    t = replay.classify("https://compute.googleapis.com/compute/v1/projects/p/regions/r/addresses/a/setLabels")
    assert (t.emulated, t.resource, t.verb) == (True, "a", "setLabels")
    assert not replay.classify("https://compute.googleapis.com/compute/v1/projects/p/regions/r/"
                               "networkEndpointGroups/n").emulated
    assert not replay.classify("https://serviceusage.googleapis.com/v1/projects/p/services").emulated


def test_comparison_is_structural_after_normalisation() -> None:
    recorded = {"kind": "compute#operation", "status": "RUNNING", "id": "000000000000000000000",
                "targetLink": "https://www.googleapis.com/compute/v1/projects/${projectId}/global/networks/${networkID}",
                "insertTime": "2024-04-01T12:34:56.123456Z", "description": "x"}
    actual = {"kind": "compute#operation", "status": "DONE", "id": "123",
              "targetLink": "https://www.googleapis.com/compute/beta/projects/${projectId}/global/networks/n2",
              "insertTime": "2026-01-01T00:00:00.000-08:00", "description": "y", "warnings": []}
    normaliser = compare.Normaliser(replay.Names("fidelity-project", "fidqwerty", "123456789012"))
    diffs = {d.path: d for d in compare.compare_bodies(normaliser.recorded(recorded), normaliser.actual(actual))}
    assert set(diffs) == {"body.status", "body.targetLink", "body.description", "body.warnings"}
    assert [diffs[p].kind for p in sorted(diffs)] == ["value", "lifecycle", "link", "extra"]
    assert not diffs["body.description"].structural


def test_known_explains_recorder_artefacts_only() -> None:
    step = replay.Step(exchange=None, target=replay.classify("https://run.googleapis.com/v2/projects/p/locations/r/jobs"),  # type: ignore[arg-type]
                       outcome=replay.SENT, method="POST", url="", request_body=None, status=200,
                       body={"name": "projects/p/locations/r/operations/o", "done": False})
    done = compare.Difference("body.done", compare.EXTRA, compare.ABSENT, False)
    assert known.explain(done, step).key == "lro-done-false"  # type: ignore[union-attr]
    assert known.explain(compare.Difference("body.done", compare.EXTRA, compare.ABSENT, True), step) is None
