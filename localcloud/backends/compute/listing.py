"""List parameters (``filter``, ``maxResults``, ``pageToken``, ``orderBy``) parsed once into a
``ListQuery`` that filters, orders and cuts one page; the filter language is ``list_filter``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from localcloud.backends.compute.common import MSG_BAD_PAGE_TOKEN, _field_error
from localcloud.backends.compute.list_filter import compile_filter


MAX_RESULTS_LIMIT = 500  # Compute's list maximum (and gcloud's page size)


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

    def page(self, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
        """Filter, order and cut one page; returns the page and the next page token (or None)."""
        selected = [item for item in items if self.matcher(item)]
        if self.order_by == "creationTimestamp desc":
            selected.sort(key=lambda r: str(r.get("creationTimestamp", "")), reverse=True)
        else:
            selected.sort(key=lambda r: str(r.get("name", "")))
        start = self._offset()
        end = start + self.max_results
        token = _page_token(end, self._fingerprint()) if end < len(selected) else None
        return selected[start:end], token

    def _fingerprint(self) -> str:
        return hashlib.sha256(f"{self.filter_text}\0{self.order_by}".encode()).hexdigest()[:12]

    def _offset(self) -> int:
        if not self.page_token:
            return 0
        try:
            decoded = json.loads(base64.urlsafe_b64decode(self.page_token.encode() + b"==").decode())
            offset, fingerprint = int(decoded["o"]), str(decoded["q"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, AttributeError):
            raise _field_error("pageToken", self.page_token, MSG_BAD_PAGE_TOKEN) from None
        if offset < 0 or fingerprint != self._fingerprint():
            raise _field_error("pageToken", self.page_token, MSG_BAD_PAGE_TOKEN)
        return offset


def _match_all(_resource: Mapping[str, Any]) -> bool:
    return True


def _page_token(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "q": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
