"""A local Slack incoming-webhook receiver: records what would have been posted, refuses what Slack refuses.

    python -m localcloud.slack_receiver --port 8791 --host 127.0.0.1

- ``POST /services/...``   a webhook (any path under /services/): validated like Slack, recorded on 200.
  Answers as Slack does, in text/plain: ``ok``; 400 ``invalid_payload`` (not JSON), ``invalid_blocks``
  (a block Slack would refuse), ``invalid_blocks_format`` (``blocks`` not a list), ``no_text``.
- ``GET /_messages``       the recorded payloads, oldest first (JSON list); ``DELETE /_messages`` clears.
- ``POST /_control``       fail the next requests: ``{"status": 429, "retry_after": 2, "count": N}``
                           or for a window: ``{"status": 500, "seconds": 60}``; ``GET`` shows it,
                           ``DELETE`` clears it.
- ``GET /_health``         ``{"status": "ok", "messages": N, "requests": M}``.

State lives in memory only; nothing is written outside the process. Thread-safe.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

# Block Kit limits Slack enforces (https://docs.slack.dev/reference/block-kit/blocks).
MAX_BLOCKS = 50
MAX_HEADER_TEXT = 150
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_MARKDOWN_BLOCK_TEXT = 12000
MAX_BLOCK_ID = 255
MAX_ALT_TEXT = 2000

KNOWN_BLOCK_TYPES = frozenset({
    "actions", "context", "divider", "file", "header", "image", "input", "markdown", "rich_text",
    "section", "table", "video", "call", "context_actions",
})
TEXT_OBJECT_TYPES = frozenset({"plain_text", "mrkdwn"})

# What Slack answers with a failure when the test did not say (webhook error strings).
DEFAULT_ERROR_BODY = {429: "rate_limited", 500: "rollup_error", 503: "service_unavailable"}


class InvalidBlocks(ValueError):
    pass


# --- validation -----------------------------------------------------------------------------


def _text_object(value: Any, where: str, *, limit: int, plain_only: bool = False) -> None:
    if not isinstance(value, Mapping):
        raise InvalidBlocks(f"{where}: a text object is required")
    kind = value.get("type")
    if kind not in TEXT_OBJECT_TYPES or (plain_only and kind != "plain_text"):
        raise InvalidBlocks(f"{where}: type must be {'plain_text' if plain_only else 'plain_text or mrkdwn'}")
    text = value.get("text")
    if not isinstance(text, str) or not text:
        raise InvalidBlocks(f"{where}.text: must be a non-empty string")
    if len(text) > limit:
        raise InvalidBlocks(f"{where}.text: {len(text)} characters, at most {limit}")


def _elements(value: Any, where: str, *, limit: int) -> Sequence[Any]:
    if not isinstance(value, list) or not value:
        raise InvalidBlocks(f"{where}: a non-empty list is required")
    if len(value) > limit:
        raise InvalidBlocks(f"{where}: {len(value)} elements, at most {limit}")
    return value


def _validate_block(block: Any, where: str) -> None:
    if not isinstance(block, Mapping):
        raise InvalidBlocks(f"{where}: a block must be an object")
    kind = block.get("type")
    if kind not in KNOWN_BLOCK_TYPES:
        raise InvalidBlocks(f"{where}: unknown block type {kind!r}")
    block_id = block.get("block_id")
    if block_id is not None and (not isinstance(block_id, str) or len(block_id) > MAX_BLOCK_ID):
        raise InvalidBlocks(f"{where}.block_id: a string of at most {MAX_BLOCK_ID} characters")

    if kind == "header":
        _text_object(block.get("text"), f"{where}.text", limit=MAX_HEADER_TEXT, plain_only=True)
    elif kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and fields is None:
            raise InvalidBlocks(f"{where}: a section needs text or fields")
        if text is not None:
            _text_object(text, f"{where}.text", limit=MAX_SECTION_TEXT)
        if fields is not None:
            for index, item in enumerate(_elements(fields, f"{where}.fields", limit=MAX_FIELDS)):
                _text_object(item, f"{where}.fields[{index}]", limit=MAX_FIELD_TEXT)
        accessory = block.get("accessory")
        if accessory is not None and not (isinstance(accessory, Mapping) and isinstance(accessory.get("type"), str)):
            raise InvalidBlocks(f"{where}.accessory: an element with a type is required")
    elif kind == "context":
        for index, item in enumerate(_elements(block.get("elements"), f"{where}.elements", limit=MAX_CONTEXT_ELEMENTS)):
            if isinstance(item, Mapping) and item.get("type") == "image":
                _image(item, f"{where}.elements[{index}]")
            else:
                _text_object(item, f"{where}.elements[{index}]", limit=MAX_SECTION_TEXT)
    elif kind == "actions":
        for index, item in enumerate(_elements(block.get("elements"), f"{where}.elements", limit=MAX_ACTIONS_ELEMENTS)):
            if not (isinstance(item, Mapping) and isinstance(item.get("type"), str)):
                raise InvalidBlocks(f"{where}.elements[{index}]: an element with a type is required")
    elif kind == "image":
        _image(block, where)
        if block.get("title") is not None:
            _text_object(block["title"], f"{where}.title", limit=MAX_ALT_TEXT, plain_only=True)
    elif kind == "markdown":
        text = block.get("text")
        if not isinstance(text, str) or not text or len(text) > MAX_MARKDOWN_BLOCK_TEXT:
            raise InvalidBlocks(f"{where}.text: a string of 1 to {MAX_MARKDOWN_BLOCK_TEXT} characters is required")
    elif kind == "rich_text":
        _elements(block.get("elements"), f"{where}.elements", limit=10_000)
    # divider, and the rarer types (file, input, table, video, call): their type is all we check.


def _image(item: Mapping[str, Any], where: str) -> None:
    if not (isinstance(item.get("image_url"), str) or isinstance(item.get("slack_file"), Mapping)):
        raise InvalidBlocks(f"{where}: image_url or slack_file is required")
    alt = item.get("alt_text")
    if not isinstance(alt, str) or not alt or len(alt) > MAX_ALT_TEXT:
        raise InvalidBlocks(f"{where}.alt_text: a string of 1 to {MAX_ALT_TEXT} characters is required")


def validate_payload(payload: Any) -> str | None:
    """None when Slack would accept the payload, else the error string Slack answers with."""
    error, _ = explain_payload(payload)
    return error


def explain_payload(payload: Any) -> tuple[str | None, str]:
    """(Slack's error string or None, a sentence saying what is wrong)."""
    if not isinstance(payload, Mapping):
        return "invalid_payload", "the payload is not a JSON object"
    text = payload.get("text")
    if text is not None and not isinstance(text, str):
        return "invalid_payload", "text must be a string"
    blocks = payload.get("blocks")
    if isinstance(blocks, str):  # Slack also takes blocks as a JSON-encoded string
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return "invalid_blocks_format", "blocks is a string that is not JSON"
    if blocks is not None:
        if not isinstance(blocks, list):
            return "invalid_blocks_format", "blocks must be a list"
        if len(blocks) > MAX_BLOCKS:
            return "invalid_blocks", f"{len(blocks)} blocks, at most {MAX_BLOCKS}"
        for index, block in enumerate(blocks):
            try:
                _validate_block(block, f"blocks[{index}]")
            except InvalidBlocks as problem:
                return "invalid_blocks", str(problem)
    has_text = isinstance(text, str) and bool(text.strip())
    if not has_text and not blocks and not payload.get("attachments"):
        return "no_text", "neither text nor blocks"
    return None, "ok"


# --- state ----------------------------------------------------------------------------------


@dataclass
class _Fault:
    status: int
    body: str
    retry_after: int | None
    remaining: int | None  # requests still to fail; None: no count limit
    until: float | None  # monotonic deadline; None: no time limit

    def active(self, now: float) -> bool:
        return (self.remaining is None or self.remaining > 0) and (self.until is None or now < self.until)

    def describe(self, now: float) -> dict[str, Any]:
        return {
            "status": self.status,
            "body": self.body,
            "retry_after": self.retry_after,
            "remaining": self.remaining,
            "seconds_left": None if self.until is None else max(0.0, round(self.until - now, 3)),
            "active": self.active(now),
        }


class ReceiverState:
    """What was posted, and the fault to inject. Every method takes the one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self._requests = 0
        self._fault: _Fault | None = None

    def take_fault(self) -> _Fault | None:
        """The fault to answer this request with, counting it down."""
        with self._lock:
            self._requests += 1
            fault = self._fault
            if fault is None or not fault.active(time.monotonic()):
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
            return fault

    def record(self, payload: dict[str, Any]) -> None:
        with self._lock:
            self._messages.append(payload)

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._requests = 0

    def set_fault(self, fault: _Fault | None) -> None:
        with self._lock:
            self._fault = fault

    def describe(self) -> dict[str, Any]:
        with self._lock:
            now = time.monotonic()
            return {
                "status": "ok",
                "messages": len(self._messages),
                "requests": self._requests,
                "fault": None if self._fault is None else self._fault.describe(now),
            }


def parse_fault(body: Any) -> _Fault:
    """`{"status": 429, "retry_after": 2, "count": N}` or `{"status": 500, "seconds": 60}`."""
    if not isinstance(body, Mapping):
        raise ValueError("the control body must be a JSON object")
    status = body.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        raise ValueError("status must be an HTTP error code, 400-599")
    count, seconds, retry_after = body.get("count"), body.get("seconds"), body.get("retry_after")
    if count is None and seconds is None:
        raise ValueError("say how long to fail: count (requests) and/or seconds")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
        raise ValueError("count must be a whole number >= 0")
    if seconds is not None and (not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0):
        raise ValueError("seconds must be a number >= 0")
    if retry_after is not None and (not isinstance(retry_after, int) or isinstance(retry_after, bool) or retry_after < 0):
        raise ValueError("retry_after must be a whole number of seconds >= 0 (Slack sends integers)")
    error_body = body.get("body", DEFAULT_ERROR_BODY.get(status, "error"))
    if not isinstance(error_body, str):
        raise ValueError("body must be a string")
    return _Fault(
        status=status,
        body=error_body,
        retry_after=retry_after,
        remaining=count,
        until=None if seconds is None else time.monotonic() + float(seconds),
    )


# --- HTTP -----------------------------------------------------------------------------------


def _text(body: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(body, status=status, mimetype="text/plain", headers=dict(headers or {}))


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, mimetype="application/json")


class SlackReceiver:
    """The WSGI application."""

    def __init__(self, state: ReceiverState | None = None) -> None:
        self.state = state or ReceiverState()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return self.dispatch(request)(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/services/"):
            if request.method != "POST":
                return _text("invalid_method", 405, {"Allow": "POST"})
            if path.rstrip("/") == "/services":
                return _text("no_service", 404)
            return self._webhook(request)
        routes = {
            ("GET", "/_messages"): lambda: _json(self.state.messages()),
            ("DELETE", "/_messages"): self._clear,
            ("GET", "/_health"): lambda: _json(self.state.describe()),
            ("POST", "/_control"): lambda: self._control(request),
            ("GET", "/_control"): lambda: _json(self.state.describe()["fault"]),
            ("DELETE", "/_control"): self._clear_fault,
        }
        handler = routes.get((request.method, path))
        if handler is not None:
            return handler()
        if any(route_path == path for _, route_path in routes):
            return _text("invalid_method", 405)
        return _text(f"no route for {request.method} {path}", 404)

    def _webhook(self, request: Request) -> Response:
        fault = self.state.take_fault()
        if fault is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            if fault.status == 429 and fault.retry_after is None:
                headers["Retry-After"] = "1"  # Slack always says how long to wait
            return _text(fault.body, fault.status, headers)
        payload = _read_payload(request)
        if payload is None:
            return _text("invalid_payload", 400)
        error, _why = explain_payload(payload)
        if error is not None:
            return _text(error, 400)
        self.state.record(payload)
        return _text("ok")

    def _control(self, request: Request) -> Response:
        try:
            fault = parse_fault(json.loads(request.get_data(as_text=True) or "null"))
        except ValueError as problem:
            return _json({"error": str(problem)}, 400)
        self.state.set_fault(fault)
        return _json(fault.describe(time.monotonic()))

    def _clear(self) -> Response:
        self.state.clear()
        return _json({"cleared": True})

    def _clear_fault(self) -> Response:
        self.state.set_fault(None)
        return _json({"cleared": True})


def _read_payload(request: Request) -> Any | None:
    """A webhook body is JSON, or a form with a `payload` field holding JSON (both work at Slack)."""
    raw = request.get_data(as_text=True)
    if request.mimetype == "application/x-www-form-urlencoded":
        values = parse_qs(raw).get("payload")
        if not values:
            return None
        raw = values[0]
    try:
        return json.loads(raw)
    except ValueError:
        return None


# --- serving --------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    # Request lines carry the webhook path, which is a secret in real life; tests assert that no
    # secret reaches a log, so the in-process receiver logs nothing.
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class RunningReceiver:
    """A receiver serving on a thread: ``.url``, ``.webhook_url(...)``, ``.state``, ``.stop()``."""

    def __init__(self, server: BaseWSGIServer, app: SlackReceiver) -> None:
        self._server = server
        self.app = app
        self.state = app.state
        self.url = f"http://{server.host}:{server.port}"
        # A short poll interval: stop() returns within 50 ms instead of werkzeug's default 0.5 s.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="slack-receiver", daemon=True
        )
        self._thread.start()

    def webhook_url(self, path: str = "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX") -> str:
        return f"{self.url}/services/{path}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "RunningReceiver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_in_thread(host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True) -> RunningReceiver:
    """Start a receiver on a thread (port 0: a free port). Stop it with ``.stop()``."""
    app = SlackReceiver()
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler if quiet else None)
    return RunningReceiver(server, app)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud.slack_receiver", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback by default)")
    parser.add_argument("--port", type=int, default=8791, help="port to bind (0: a free one)")
    parser.add_argument("--quiet", action="store_true", help="do not log request lines")
    args = parser.parse_args(argv)
    app = SlackReceiver()
    server = make_server(args.host, args.port, app, threaded=True, request_handler=_QuietHandler if args.quiet else None)
    print(f"slack receiver listening on http://{server.host}:{server.port}/services/...", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
