"""List parameters (``filter``, ``maxResults``, ``pageToken``, ``orderBy``) parsed once into a
``ListQuery`` that filters, orders and cuts one page; the filter language is ``list_filter``.

A list of several pages is filtered and ordered once, on its first page; the later pages are cut
from that result, held in a ``Cursors`` entry the page token names (as Google's pageToken is a
cursor, not an instruction to list again). Filtering and sorting 70,000 rules again for each of
140 pages made localcloud's share of a 10,000-connector sweep grow with the square of the estate.
A resource changed between two pages is seen as it was when the list started, or as it is now
(the items are the table's own, copied per page); Google documents no stronger promise.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Union

from localcloud.backends.compute.common import MSG_BAD_PAGE_TOKEN, _field_error
from localcloud.backends.compute.list_filter import compile_filter


MAX_RESULTS_LIMIT = 500  # Compute's list maximum (and gcloud's page size)
OPEN_CURSORS = 64  # lists still being paged, kept per backend; the oldest is dropped first

Items = Union[list[dict[str, Any]], Callable[[], list[dict[str, Any]]]]


class Cursors:
    """The filtered, ordered items of lists still being paged, by cursor id (what a page token names)."""

    def __init__(self, limit: int = OPEN_CURSORS) -> None:
        self._open: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def open(self, selected: list[dict[str, Any]]) -> str:
        cursor = secrets.token_hex(6)
        with self._lock:
            self._open[cursor] = selected
            while len(self._open) > self._limit:
                self._open.popitem(last=False)
        return cursor

    def get(self, cursor: str) -> list[dict[str, Any]] | None:
        with self._lock:
            return self._open.get(cursor)

    def close(self, cursor: str) -> None:
        with self._lock:
            self._open.pop(cursor, None)

    def clear(self) -> None:
        with self._lock:
            self._open.clear()


@dataclass(frozen=True)
class ListQuery:
    """The list parameters, parsed once: ``filter``, ``maxResults``, ``pageToken``, ``orderBy``."""

    filter_text: str = ""
    max_results: int = MAX_RESULTS_LIMIT
    page_token: str = ""
    order_by: str = ""
    matcher: "Callable[[Mapping[str, Any]], bool]" = field(default_factory=lambda: _match_all, compare=False)

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> "ListQuery":
        text = query.get("filter", "") or ""
        raw_max = query.get("maxResults", "")
        max_results = MAX_RESULTS_LIMIT
        if raw_max != "":
            try:
                max_results = int(raw_max)
            except ValueError:
                raise _field_error("maxResults", raw_max, "Must be an integer.") from None
            if max_results < 0:
                raise _field_error("maxResults", raw_max, "Must be greater than or equal to 0")
            if max_results > MAX_RESULTS_LIMIT:
                raise _field_error("maxResults", raw_max, f"Must be less than or equal to {MAX_RESULTS_LIMIT}")
            max_results = max_results or MAX_RESULTS_LIMIT
        order_by = (query.get("orderBy", "") or "").strip()
        if order_by and order_by not in ("name", "name asc", "creationTimestamp desc"):
            raise _field_error("orderBy", order_by,
                               "Only sorting by name or creationTimestamp desc is supported.")
        matcher = compile_filter(text) if text.strip() else _match_all
        return cls(text, max_results, query.get("pageToken", "") or "", order_by, matcher)

    def page(self, items: Items, cursors: Cursors | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """Filter, order and cut one page; returns the page and the next page token (or None).
        ``items``: the collection, or a function that lists it (not called when a cursor answers).
        With ``cursors``, a later page is cut from the first page's result; an expired cursor (or
        none) lists again."""
        start, cursor = self._position()
        selected = cursors.get(cursor) if cursors is not None and cursor else None
        if selected is None:
            selected = [item for item in (items() if callable(items) else items) if self.matcher(item)]
            if self.order_by == "creationTimestamp desc":
                selected.sort(key=lambda r: str(r.get("creationTimestamp", "")), reverse=True)
            else:
                selected.sort(key=lambda r: str(r.get("name", "")))
            cursor = ""
        end = start + self.max_results
        if end >= len(selected):
            if cursors is not None and cursor:
                cursors.close(cursor)  # the last page: nobody asks for this list again
            return selected[start:end], None
        if cursors is not None and not cursor:
            cursor = cursors.open(selected)
        return selected[start:end], _page_token(end, self._fingerprint(), cursor)

    def _fingerprint(self) -> str:
        return hashlib.sha256(f"{self.filter_text}\0{self.order_by}".encode()).hexdigest()[:12]

    def _position(self) -> tuple[int, str]:
        """(offset, cursor id or "") from the page token."""
        if not self.page_token:
            return 0, ""
        try:
            decoded = json.loads(base64.urlsafe_b64decode(self.page_token.encode() + b"==").decode())
            offset, fingerprint, cursor = int(decoded["o"]), str(decoded["q"]), str(decoded.get("c", ""))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, AttributeError):
            raise _field_error("pageToken", self.page_token, MSG_BAD_PAGE_TOKEN) from None
        if offset < 0 or fingerprint != self._fingerprint():
            raise _field_error("pageToken", self.page_token, MSG_BAD_PAGE_TOKEN)
        return offset, cursor


def _match_all(_resource: Mapping[str, Any]) -> bool:
    return True


def _page_token(offset: int, fingerprint: str, cursor: str = "") -> str:
    fields: dict[str, Any] = {"o": offset, "q": fingerprint}
    if cursor:
        fields["c"] = cursor
    raw = json.dumps(fields, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
