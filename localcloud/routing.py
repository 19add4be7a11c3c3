"""URL routes: which handler serves which request (the HTTP layer's table, moto-style).

A route names the API and the discovery method id it implements, so the HTTP layer can check
bodies against the discovery document, count calls per method, and inject faults per method.
Patterns use ``{name}`` for one path segment (never a ``/``) and ``{name=**}`` for the rest.
Segments are matched on the raw (still percent-encoded) path, then decoded one by one, so a
name like ``a%2Fb`` can never smuggle a ``/`` into a resource path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import unquote

from localcloud.auditlog.record import AuditInfo
from localcloud.errors import ApiError

__all__ = ["AuditInfo", "Call", "Handler", "Result", "Route", "Router"]


@dataclass
class Call:
    """One API request, parsed once by the HTTP layer."""

    api: str
    method_id: str
    http_method: str
    path: str
    params: dict[str, str]
    query: Mapping[str, str]
    body: Any
    principal: str
    user_agent: str
    enums_as_int: bool
    caller_ip: str = "127.0.0.1"
    host: str = ""
    operation_delay_s: float = 0.0  # a fault keeps the operation this call starts RUNNING longer
    # Every value of each query parameter, for the repeated ones (``query`` keeps the last value):
    # searchAllResources' ``assetTypes=a&assetTypes=b``.
    query_lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class Result:
    """What a handler answers: the body, and for mutating calls what the audit log records."""

    body: Any
    status: int = 200
    audit: AuditInfo | None = None
    response_schema: str | None = None  # overrides the discovery response schema (e.g. LRO vs resource)


Handler = Callable[[Call], Result]


@dataclass(frozen=True)
class Route:
    http_method: str
    pattern: str
    api: str
    method_id: str
    handler: Handler
    mutating: bool = False
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", _compile(self.pattern))

    def match(self, http_method: str, raw_path: str) -> dict[str, str] | None:
        if http_method != self.http_method:
            return None
        m = self.regex.fullmatch(raw_path)
        if not m:
            return None
        return {k: unquote(v) for k, v in m.groupdict().items()}


_PARAM = re.compile(r"\{(\w+)(=\*\*)?\}")


def _compile(pattern: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in _PARAM.finditer(pattern):
        out.append(re.escape(pattern[pos:m.start()]))
        out.append(f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("".join(out))


class Router:
    """An ordered table of routes; literal-looking routes are tried before wildcard ones."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, route: Route) -> None:
        self._routes.append(route)

    def extend(self, routes: list[Route]) -> None:
        self._routes.extend(routes)

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)

    def resolve(self, http_method: str, raw_path: str) -> tuple[Route, dict[str, str]]:
        path_matched = False
        for route in self._routes:
            if route.regex.fullmatch(raw_path):
                path_matched = True
                params = route.match(http_method, raw_path)
                if params is not None:
                    return route, params
        if path_matched:
            raise ApiError(405, f"localcloud: method {http_method} is not allowed on {raw_path}",
                           reason="methodNotAllowed")
        raise ApiError(404, f"localcloud: no route for {http_method} {raw_path} (not emulated)",
                       reason="notFound")
