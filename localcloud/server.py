"""The HTTP layer: parse a request once, check it as Google would, dispatch it, answer in Google's shapes.

Everything protocol-shaped lives here (absolute-form proxy requests, JSON parsing, discovery
checks, enum encoding, faults, the call log, the error envelope); routes map URLs to backends and
backends hold state. Nothing a client sends can crash the server: unexpected errors are answered
as a 500 envelope and logged with their traceback, because that is an emulator bug to fix.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from typing import Any, Iterable
from urllib.parse import parse_qs, parse_qsl, urlsplit

from werkzeug.serving import WSGIRequestHandler
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from localcloud import control, discovery
from localcloud.auditlog.calls import record_of_call
from localcloud.auditlog.record import AuditRecord
from localcloud.backends.functions import UPLOAD_PATH as FUNCTIONS_UPLOAD_PATH
from localcloud.errors import ApiError
from localcloud.grpc_gateway import GrpcGateway
from localcloud.routing import Call, Result, Route, Router
from localcloud.services import Services
from localcloud.world import World

log = logging.getLogger("localcloud")

MAX_BODY_BYTES = 8 * 1024 * 1024
TLS_PATH = "/_localcloud/tls"
TUNNEL_BUFFER = 64 * 1024

# Headers every real Google response carries (reference/gcp-http-logs/NOTES.md §0).
GOOGLE_HEADERS = {
    "Content-Type": "application/json; charset=UTF-8",
    "Server": "ESF",
    "Vary": "Origin, X-Origin, Referer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "X-XSS-Protection": "0",
}

_BEARER_PREFIX = "Bearer localcloud:"


class LocalCloud:
    """The WSGI application. ``world`` holds the state; tests may drive it in-process."""

    def __init__(self, world: World | None = None) -> None:
        self.world = world or World()
        self.services = Services.build(self.world)
        self.operations = self.services.operations
        self.calls = self.services.calls
        self.faults = self.services.faults
        self.router = Router()
        self.router.extend(self.services.api_routes())
        self.control_router = Router()
        self.control_router.extend(control.routes(self.services, self.router))
        # gRPC for gcloud's GAPIC clients, reached by CONNECT through this server (started on first use).
        self.grpc = GrpcGateway(self)

    # ---- WSGI -------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        response = self.handle(request)
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.full_path
        split = urlsplit(raw)
        raw_path = split.path or "/"
        host = split.netloc or request.host
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        if raw_path == TLS_PATH and request.method == "GET":
            # The CA that signed the gRPC gateway's certificate: what gcloud's core/custom_ca_certs_file names.
            return Response(self.grpc.ca_pem, status=200, content_type="application/x-pem-file")
        if raw_path.startswith("/_localcloud/"):
            return self._dispatch_control(request, raw_path, query)
        if raw_path.startswith(FUNCTIONS_UPLOAD_PATH) and request.method == "PUT":
            return self._function_source_upload(request, raw_path)
        started = time.perf_counter()
        route: Route | None = None
        call: Call | None = None
        try:
            self.operations.tick()
            route, params = self.router.resolve(request.method, raw_path)
            call = self._parse_call(request, route, params, query, raw_path, host)
            effect = self.faults.before_call(route.method_id, call.principal, raw_path)
            if effect.latency_s:
                time.sleep(effect.latency_s)
            if effect.hold_s:
                self.faults.hold(effect.hold_s)
            if effect.error is not None:
                raise effect.error
            call.operation_delay_s = effect.operation_delay_s
            self.services.quotas.before_call(route.method_id, raw_path, route.mutating)
            result = route.handler(call)
            body = self._encode_response(route, call, result)
            response = _json_response(result.status, body)
            if route.mutating:
                self._audit(record_of_call(call, route, result=result))
        except ApiError as error:
            if route is not None and route.mutating and call is not None:
                self._audit(record_of_call(call, route, error=error))
            response = _json_response(error.code, error.body(family=_family(route, raw_path)), error.headers)
        except Exception:  # an emulator bug: answer like Google's backendError, keep serving
            log.error("localcloud: internal error on %s %s\n%s", request.method, raw_path, traceback.format_exc())
            error = ApiError(500, "localcloud internal error (see the localcloud log)", reason="backendError")
            response = _json_response(500, error.body(family=_family(route, raw_path)))
        self.calls.record(
            api=route.api if route else "",
            method_id=route.method_id if route else f"unknown {request.method} {raw_path}",
            http_method=request.method, path=raw_path, status=response.status_code,
            principal=call.principal if call else self.world.config.default_principal,
            mutating=bool(route and route.mutating),
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        log.debug("%s %s -> %s in %.1f ms", request.method, raw_path, response.status_code,
                  (time.perf_counter() - started) * 1000)
        return response

    def call_in_process(self, method: str, path: str, query: str, body: str | None, *, authorization: str = "",
                        user_agent: str = "") -> tuple[int, Any]:
        """One REST call answered here without a socket (the gRPC gateway's transcoded calls): the same
        routes, checks, audit entries and call log as over HTTP. Returns (status, JSON body)."""
        headers = {"Content-Type": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        if user_agent:
            headers["User-Agent"] = user_agent
        environ = EnvironBuilder(method=method, path=path, query_string=query, data=body or "", headers=headers,
                                 base_url="http://localcloud.grpc").get_environ()
        environ["RAW_URI"] = f"{path}?{query}" if query else path
        response = self.handle(Request(environ))
        data = response.get_data()
        return response.status_code, json.loads(data) if data.strip() else None

    def _audit(self, record: AuditRecord | None) -> None:
        if record is not None:  # None: it could not be built (logged as an emulator bug)
            self.world.audit.on_call(record)

    # ---- parsing ----------------------------------------------------------------------------
    def _parse_call(self, request: Request, route: Route, params: dict[str, str], query: dict[str, str],
                    raw_path: str, host: str) -> Call:
        enums_as_int = "enum-encoding=int" in query.get("$alt", "")
        body: Any = None
        raw_body = request.get_data(cache=False)
        if len(raw_body) > MAX_BODY_BYTES:
            raise ApiError(413, f"Request payload size exceeds the limit: {MAX_BODY_BYTES} bytes.")
        info = discovery.method(route.api, route.method_id) if route.api else None
        if raw_body.strip():
            try:
                body = json.loads(raw_body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise ApiError(400, f"Invalid JSON payload received. {exc}.") from None
        if info is not None:
            if body is not None and info.request_schema is None:
                raise ApiError(400, f"Invalid JSON payload received. {route.method_id} takes no request body.")
            if info.request_schema is not None:
                if body is None:
                    body = {}
                try:
                    discovery.validate(route.api, info.request_schema, body, enums_as_int=enums_as_int)
                except discovery.SchemaError as exc:
                    raise ApiError(400, str(exc)) from None
                if enums_as_int:
                    body = discovery.decode_enums(route.api, info.request_schema, body)
        return Call(
            api=route.api, method_id=route.method_id, http_method=request.method, path=raw_path,
            params=params, query=query, body=body, principal=self._principal(request),
            user_agent=request.headers.get("User-Agent", ""), enums_as_int=enums_as_int,
            caller_ip=request.remote_addr or "127.0.0.1", host=host,
            query_lists={k: tuple(v) for k, v in parse_qs(urlsplit(request.full_path).query,
                                                          keep_blank_values=True).items()},
        )

    def _principal(self, request: Request) -> str:
        """Who is calling: ``Bearer localcloud:EMAIL`` names it (the client factory's local
        credentials do this); anything else is the configured default user, as gcloud here runs
        without credentials."""
        auth = request.headers.get("Authorization", "")
        if auth.startswith(_BEARER_PREFIX) and "@" in auth:
            return auth[len(_BEARER_PREFIX):].strip()
        return self.world.config.default_principal

    def _encode_response(self, route: Route, call: Call, result: Result) -> Any:
        body = result.body
        if not route.api or not isinstance(body, dict):
            return body
        schema = result.response_schema
        if schema is None:
            info = discovery.method(route.api, route.method_id)
            schema = info.response_schema if info else None
        if schema is None:
            return body
        if self.world.config.validate_responses:
            discovery.validate(route.api, schema, body)  # a SchemaError here is our bug: a 500
        if call.enums_as_int:
            body = discovery.encode_enums(route.api, schema, body)
        return body

    def _function_source_upload(self, request: Request, raw_path: str) -> Response:
        """The PUT of a function's source zip to the URL generateUploadUrl handed out: Cloud Storage's
        signed URL for Google, answered 200 with an empty body as Cloud Storage answers a PUT."""
        token = raw_path[len(FUNCTIONS_UPLOAD_PATH):]
        if not self.services.functions.accept_upload(token, request.get_data(cache=False)):
            return _json_response(403, ApiError(403, "The upload URL is not valid (localcloud never handed it out).",
                                                reason="forbidden").body())
        return Response("", status=200)

    # ---- control ----------------------------------------------------------------------------
    def _dispatch_control(self, request: Request, raw_path: str, query: dict[str, str]) -> Response:
        try:
            route, params = self.control_router.resolve(request.method, raw_path)
            raw_body = request.get_data(cache=False)
            try:
                body = json.loads(raw_body) if raw_body.strip() else None
            except ValueError as exc:
                raise ApiError(400, f"Invalid JSON payload received. {exc}.") from None
            call = Call(api="", method_id=route.method_id, http_method=request.method, path=raw_path,
                        params=params, query=query, body=body, principal="localcloud-control",
                        user_agent=request.headers.get("User-Agent", ""), enums_as_int=False)
            result = route.handler(call)
            return _json_response(result.status, result.body)
        except ApiError as error:
            return _json_response(error.code, error.body(), error.headers)
        except Exception:
            log.error("localcloud: control error on %s %s\n%s", request.method, raw_path, traceback.format_exc())
            return _json_response(500, ApiError(500, "localcloud control internal error").body())

    # ---- serving ----------------------------------------------------------------------------
    def routes(self) -> Iterable[Route]:
        return self.router.routes


def _family(route: Route | None, raw_path: str) -> str:
    """Which error envelope answers: Compute's (errors[], no status) or one-platform's; a Compute
    path with no route (unknown verb or resource) is still answered the Compute way."""
    if route is not None:
        return "compute" if route.api.startswith("compute") else "one-platform"
    return "compute" if raw_path.startswith("/compute/") else "one-platform"


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    # Compact, unlike Google's indented answers: clients parse either, and indent=2 takes json's
    # pure-Python encoder (a third of localcloud's time serving a 10,000-connector sweep's lists).
    response = Response(json.dumps(body) + "\n" if body is not None else "{}\n", status=status)
    for key, value in GOOGLE_HEADERS.items():
        response.headers[key] = value
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


class ProxyRequestHandler(WSGIRequestHandler):
    """werkzeug's handler, plus ``CONNECT``: gcloud's gRPC clients go through the HTTP proxy localcloud
    is for gcloud (``proxy/address``, ``proxy/port``) and ask it for a tunnel to ``REGION-HOST:PORT``.
    Every tunnel leads to the gRPC gateway, whatever host it names: localcloud serves nothing else
    over TLS, and it never forwards anywhere (nothing reaches Google)."""

    def do_CONNECT(self) -> None:  # noqa: N802 (http.server's naming)
        import select
        import socket

        app: LocalCloud = self.server.app  # type: ignore[attr-defined]
        try:
            upstream = socket.create_connection((app.grpc.host, app.grpc.port), timeout=10)
        except OSError as exc:
            self.send_error(502, f"localcloud gRPC gateway unreachable: {exc}")
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        upstream.settimeout(None)
        sockets = [self.connection, upstream]
        try:
            while True:
                readable, _, broken = select.select(sockets, [], sockets, 300)
                if broken or not readable:
                    break
                for source in readable:
                    data = source.recv(TUNNEL_BUFFER)
                    if not data:
                        return
                    (upstream if source is self.connection else self.connection).sendall(data)
        except OSError:
            return
        finally:
            upstream.close()


def serve(host: str = "127.0.0.1", port: int = 8790, app: LocalCloud | None = None):
    """Start a threaded server (returns it; call ``serve_forever``). Binds loopback only by default.
    ``server.shutdown()`` also stops the gRPC gateway if it was started."""
    from werkzeug.serving import make_server

    app = app or LocalCloud()
    app.operations.start_ticker()
    server = make_server(host, port, app, threaded=True, request_handler=ProxyRequestHandler)
    server.app = app  # type: ignore[attr-defined]
    stop_http = server.shutdown

    def shutdown() -> None:
        stop_http()
        app.grpc.stop()

    server.shutdown = shutdown  # type: ignore[method-assign]
    return server
