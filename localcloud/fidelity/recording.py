"""Config Connector's HTTP recordings (``_http.log`` / ``_audit_probe.log``), parsed once into types.

The format (``pkg/test`` in k8s-config-connector writes it): for each exchange a request line
``METHOD URL``, request headers, a blank line, an optional JSON body, a blank line, a status line
``200 OK``, response headers, a blank line, the response body; a line ``---`` between exchanges.
Quirks the parser takes as they come, because the files are byte-for-byte copies:

- a request may have no headers at all (the Terraform operation polls), no body, or both;
- the last exchange has no ``---`` and the file no final newline; probe files may hold one exchange;
- response headers repeat (``Vary`` three times), so headers are kept as ordered pairs;
- bodies are pretty-printed JSON holding placeholders such as ``${projectId}``, which are valid
  inside JSON strings; a body that is not JSON is kept as text (``body`` is then None).

Which run produced a file (REAL Google, MOCK, MOCK-DERIVED) is read from the folder's SOURCES.md,
the only place that judgement is written down.
"""

from __future__ import annotations

import enum
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qsl, urlsplit

_REQUEST_LINE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (\S+)$")
_STATUS_LINE = re.compile(r"^(\d{3})(?: (.*))?$")
_HEADER = re.compile(r"^([A-Za-z0-9-]+): ?(.*)$")
SEPARATOR = "---"

# The recordings ship with the repository (reference/gcp-http-logs); LOCALCLOUD_RECORDINGS may point
# at another folder of the same format, e.g. newer recordings being tried out.
RECORDINGS_ENV = "LOCALCLOUD_RECORDINGS"
DEFAULT_RECORDINGS = Path(__file__).resolve().parents[2] / "reference" / "gcp-http-logs"


class RecordingError(ValueError):
    """A recording that cannot be read as the format above; says file and line."""


class Provenance(enum.Enum):
    """Who answered the recorded requests, as SOURCES.md judges it."""

    REAL = "REAL"
    PROBABLY_REAL = "PROBABLY_REAL"  # "Probably REAL": the audit probes
    MOCK = "MOCK"
    MOCK_DERIVED = "MOCK-DERIVED"
    UNKNOWN = "UNKNOWN"

    @property
    def is_evidence(self) -> bool:
        """Only traffic answered by Google itself says what Google does."""
        return self in (Provenance.REAL, Provenance.PROBABLY_REAL)


@dataclass(frozen=True)
class Headers:
    """Headers in file order; names compare case-insensitively, repeats are kept."""

    pairs: tuple[tuple[str, str], ...] = ()

    def get(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.pairs:
            if key.lower() == name.lower():
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key.lower() == name.lower()]


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: Headers
    body_text: str  # "" when no body was recorded
    body: Any = field(default=None, compare=False)  # parsed JSON, None when absent or not JSON

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def path(self) -> str:
        """The raw path (still percent-encoded, placeholders as written)."""
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: Headers
    body_text: str
    body: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class Exchange:
    """One recorded request and its answer. ``index`` counts from 0, ``line`` from 1 (the request line)."""

    index: int
    line: int
    request: Request
    response: Response | None  # None: the recorder wrote a request and no answer

    @property
    def title(self) -> str:
        return f"#{self.index} (line {self.line}) {self.request.method} {self.request.path}"


@dataclass(frozen=True)
class Recording:
    name: str  # the file name, e.g. compute-computefirewall._http.log
    path: Path
    exchanges: tuple[Exchange, ...]
    provenance: Provenance = Provenance.UNKNOWN

    @property
    def is_probe(self) -> bool:
        return self.name.endswith("_audit_probe.log")


# ---- parsing ------------------------------------------------------------------------------------
def parse_text(text: str, *, name: str = "<text>") -> tuple[Exchange, ...]:
    """Every exchange of one recording, in order. Raises RecordingError with file and line."""
    lines = text.replace("\r\n", "\n").split("\n")
    exchanges: list[Exchange] = []
    for start, block in _blocks(lines):
        exchanges.append(_exchange(len(exchanges), start, block, name))
    return tuple(exchanges)


def _blocks(lines: list[str]) -> Iterator[tuple[int, list[str]]]:
    """(first line number, lines) of each exchange: split on ``---`` lines, blank edges trimmed.

    A ``---`` line can only be a separator: inside a pretty-printed JSON body every line is
    indented or a bracket, and a string value is always quoted.
    """
    current: list[str] = []
    first = 1
    for number, line in enumerate(lines, start=1):
        if line == SEPARATOR:
            yield from _trimmed(first, current)
            current, first = [], number + 1
        else:
            current.append(line)
    yield from _trimmed(first, current)


def _trimmed(first: int, block: list[str]) -> Iterator[tuple[int, list[str]]]:
    start, end = 0, len(block)
    while start < end and not block[start].strip():
        start += 1
    while end > start and not block[end - 1].strip():
        end -= 1
    if start < end:
        yield first + start, block[start:end]


def _exchange(index: int, line: int, block: list[str], name: str) -> Exchange:
    m = _REQUEST_LINE.match(block[0])
    if not m:
        raise RecordingError(f"{name}:{line}: expected a request line 'METHOD URL', found {block[0]!r}")
    method, url = m.groups()
    pos = 1
    request_headers, pos = _headers(block, pos)
    # The request body runs until the status line (which follows a blank line, or comes at once).
    body_lines: list[str] = []
    status_at = None
    while pos < len(block):
        candidate = block[pos]
        if _STATUS_LINE.match(candidate) and (not body_lines or not body_lines[-1].strip()):
            status_at = pos
            break
        body_lines.append(candidate)
        pos += 1
    request_text = "\n".join(body_lines).strip("\n")
    request = Request(method, url, request_headers, request_text, _json(request_text, name, line))
    if status_at is None:
        if request_text and not request_text.lstrip().startswith(("{", "[")):
            raise RecordingError(f"{name}:{line}: no status line after {method} {url}")
        return Exchange(index, line, request, None)
    status, reason = _STATUS_LINE.match(block[status_at]).groups()  # type: ignore[union-attr]
    response_headers, pos = _headers(block, status_at + 1)
    response_text = "\n".join(block[pos:]).strip("\n")
    response = Response(int(status), reason or "", response_headers, response_text,
                        _json(response_text, name, line))
    return Exchange(index, line, request, response)


def _headers(block: list[str], pos: int) -> tuple[Headers, int]:
    """Header lines from ``pos`` up to the blank line (consumed) or the first non-header line."""
    pairs: list[tuple[str, str]] = []
    while pos < len(block):
        text = block[pos]
        if not text.strip():
            return Headers(tuple(pairs)), pos + 1
        m = _HEADER.match(text)
        if not m:
            break
        pairs.append((m.group(1), m.group(2)))
        pos += 1
    return Headers(tuple(pairs)), pos


def _json(text: str, name: str, line: int) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None  # kept as body_text: the comparison then reports the body as unreadable


# ---- the folder ---------------------------------------------------------------------------------
def recordings_dir() -> Path:
    """The folder of recordings: $LOCALCLOUD_RECORDINGS, else the repository's reference/gcp-http-logs."""
    configured = os.environ.get(RECORDINGS_ENV)
    return Path(configured) if configured else DEFAULT_RECORDINGS


_SOURCES_ROW = re.compile(r"^\|\s*`(?P<file>[^`]+\.log)`\s*\|(?P<cells>.*)\|\s*$")


def load_provenance(folder: Path) -> dict[str, Provenance]:
    """File name -> provenance, from the table in SOURCES.md (its third column)."""
    sources = folder / "SOURCES.md"
    if not sources.is_file():
        return {}
    found: dict[str, Provenance] = {}
    for text in sources.read_text(encoding="utf-8").splitlines():
        m = _SOURCES_ROW.match(text)
        if not m:
            continue
        cells = [c.strip() for c in m.group("cells").split("|")]
        if len(cells) < 2:
            continue
        found[m.group("file")] = _provenance(cells[1])
    return found


def _provenance(cell: str) -> Provenance:
    text = cell.replace("*", "")
    if text.startswith("Probably REAL"):
        return Provenance.PROBABLY_REAL
    if text.startswith("MOCK-DERIVED"):
        return Provenance.MOCK_DERIVED
    if text.startswith("MOCK"):
        return Provenance.MOCK
    if text.startswith("REAL"):
        return Provenance.REAL
    return Provenance.UNKNOWN


def load(path: Path, provenance: Provenance = Provenance.UNKNOWN) -> Recording:
    text = path.read_text(encoding="utf-8")
    return Recording(path.name, path, parse_text(text, name=path.name), provenance)


def load_folder(folder: Path | None = None) -> list[Recording]:
    """Every ``*.log`` recording of the folder, sorted by name, with its provenance."""
    folder = folder or recordings_dir()
    if not folder.is_dir():
        raise RecordingError(f"no recordings folder at {folder} (set {RECORDINGS_ENV})")
    provenance = load_provenance(folder)
    return [load(path, provenance.get(path.name, Provenance.UNKNOWN)) for path in sorted(folder.glob("*.log"))]
