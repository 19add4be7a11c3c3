"""Post findings to a Slack incoming webhook, and never lose one silently (design §2 notify_slack).

- 429 (honouring Retry-After), 5xx and connection errors are retried by slack_sdk's retry handlers;
  when Slack still fails, TransientError is raised so the function fails and Pub/Sub redelivers.
- A 4xx other than 429 is permanent (the payload or the webhook is wrong): the finding is posted
  once more as plain text; if that is refused too it is logged in full and acknowledged, because
  redelivering a payload Slack refuses would loop until the dead-letter topic.
- Findings this instance already posted to this webhook are not posted to it again (Pub/Sub delivers at
  least once); notify_slack keeps one delivery per destination's webhook, so the memory is per
  (finding, destination).
- One invocation spends at most a budget on Slack (``deliver(..., deadline=...)``): a retry starts
  only if its wait and one whole request end before the deadline, else TransientError now. Past the
  push subscription's ack deadline Pub/Sub would redeliver the finding to another instance while
  this one still retries, and both would post it when Slack recovers (notify/settings.py
  ``DEFAULT_BUDGET_S``).
- The webhook URL is a secret: it is redacted from every log line and error this module produces,
  including slack_sdk's own.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from http.client import RemoteDisconnected
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit

from slack_sdk.http_retry import (
    BackoffRetryIntervalCalculator,
    ConnectionErrorRetryHandler,
    Jitter,
    RateLimitErrorRetryHandler,
    RetryHandler,
)
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient, WebhookResponse

from egress_guard.findings import Finding
from egress_guard.notify.render import render_finding, render_text_only
from egress_guard.notify.summary import DEFAULT_CONSOLE_BASE

from egress_guard.errors import TransientError


logger = logging.getLogger(__name__)

REDACTED = "[redacted]"

# Slack's Retry-After is in whole seconds. Waiting longer than this would risk outliving the
# function's timeout; the invocation fails instead and Pub/Sub redelivers later.
MAX_RETRY_AFTER_S = 30.0

# What a refused finding keeps of itself in the error log (Cloud Logging keeps 256 KB per entry).
MAX_LOGGED_FINDING = 50_000


class DeliveryResult(str, enum.Enum):
    POSTED = "posted"
    POSTED_TEXT_ONLY = "posted-text-only"  # Slack refused the blocks, took the plain-text version
    ALREADY_POSTED = "already-posted"  # this instance posted this finding id before
    REJECTED = "rejected"  # Slack refused both versions (4xx): logged in full and acknowledged


def redact_url(url: str) -> str:
    """`https://hooks.slack.com/[redacted]`: enough to tell which host, nothing of the secret path."""
    parts = urlsplit(url)
    if parts.scheme and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}/{REDACTED}"
    return REDACTED


class _Redactor:
    """Replaces the webhook URL, and its path alone (the secret part), in any text."""

    def __init__(self, url: str) -> None:
        path = urlsplit(url).path.rstrip("/")
        # The whole URL first, so that what is left of it still names the host.
        self._replacements = [(url, redact_url(url))]
        if len(path) > 1:
            self._replacements.append((path, f"/{REDACTED}"))

    def __call__(self, text: str) -> str:
        for secret, replacement in self._replacements:
            text = text.replace(secret, replacement)
        return text


class _RedactingFilter(logging.Filter):
    """slack_sdk logs the URL at INFO on every retry ("Going to retry the same request: POST <url>")."""

    def __init__(self, redact: _Redactor) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class _ProportionalJitter(Jitter):
    # slack_sdk's RandomJitter adds up to a whole second to every wait; proportional jitter keeps
    # the spread and lets a short backoff (as in tests) stay short.
    def recalculate(self, duration: float) -> float:
        return duration * (1.0 + 0.5 * random.random())


class _LoggedRetry:
    """Mixin for slack_sdk retry handlers: one log line per retry, then the handler's own wait."""

    max_retry_count: int

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        _log_retry(state, self.max_retry_count, response)
        super().prepare_for_next_attempt(  # type: ignore[misc]
            state=state, request=request, response=response, error=error)


# Whether a retry that first waits this many seconds (and then makes one whole request) still ends
# before the invocation's deadline.
Fits = Callable[[float], bool]


def _always(wait: float) -> bool:
    return True


class _BoundedRateLimitRetryHandler(_LoggedRetry, RateLimitErrorRetryHandler):
    """Honours Retry-After, unless it is longer than the function can wait."""

    def __init__(self, max_retry_count: int, max_retry_after_s: float, fits: Fits = _always) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_retry_after_s = max_retry_after_s
        self.fits = fits

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        assert response is not None
        for name, values in response.headers.items():
            if name.lower() == "retry-after":
                try:
                    wait = float(values[0])
                except (ValueError, IndexError):
                    return False  # slack_sdk would crash parsing it; let Pub/Sub retry instead
                # slack_sdk sleeps Retry-After plus up to a second of jitter (a second and jitter without it).
                return wait <= self.max_retry_after_s and self.fits(wait + 1.0)
        return self.fits(2.0)


def _log_retry(state: RetryState, max_retries: int, response: HttpResponse | None) -> None:
    if response is not None:
        retry_after = next((v[0] for k, v in response.headers.items() if k.lower() == "retry-after" and v), None)
        logger.warning(
            "Slack answered HTTP %s%s; retry %d of %d",
            response.status_code,
            f" (Retry-After {retry_after} s)" if retry_after is not None else "",
            state.current_attempt + 1,
            max_retries,
        )


class _BackoffWithinBudget:
    """Mixin for the backoff handlers: retry only if the longest backoff this attempt can wait
    (``_ProportionalJitter``: up to 1.5 times the base) and one request fit in the budget."""

    fits: Fits
    backoff_factor: float

    def _fits_backoff(self, state: RetryState) -> bool:
        return self.fits(self.backoff_factor * (2 ** state.current_attempt) * 1.5)


class _AnyServerErrorRetryHandler(_BackoffWithinBudget, _LoggedRetry, ServerErrorRetryHandler):
    # slack_sdk retries 500 and 503 only; the front end in between also answers 502 and 504.
    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and 500 <= response.status_code <= 599 and self._fits_backoff(state)


class _ConnectionErrorWithinBudget(_BackoffWithinBudget, ConnectionErrorRetryHandler):
    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return (super()._can_retry(state=state, request=request, response=response, error=error)
                and self._fits_backoff(state))


def retry_handlers(*, max_retries: int, backoff_factor: float, max_retry_after_s: float,
                   fits: Fits = _always) -> list[RetryHandler]:
    """slack_sdk handlers share one attempt counter: `max_retries` bounds all retries of one post.
    ``fits(wait)``: whether a retry after that wait still ends within the invocation's budget."""
    interval = BackoffRetryIntervalCalculator(backoff_factor=backoff_factor, jitter=_ProportionalJitter())
    server = _AnyServerErrorRetryHandler(max_retry_count=max_retries, interval_calculator=interval)
    connection = _ConnectionErrorWithinBudget(
        max_retry_count=max_retries,
        interval_calculator=interval,
        # slack_sdk's defaults (URLError, ConnectionResetError, RemoteDisconnected) miss a read timeout.
        error_types=[URLError, ConnectionError, RemoteDisconnected, TimeoutError],
    )
    for handler in (server, connection):
        handler.fits, handler.backoff_factor = fits, backoff_factor
    return [
        _BoundedRateLimitRetryHandler(max_retry_count=max_retries, max_retry_after_s=max_retry_after_s, fits=fits),
        server,
        connection,
    ]


class SlackDelivery:
    """Posts findings to one incoming webhook. Thread-safe; one per function instance."""

    def __init__(
        self,
        webhook_url: str,
        *,
        max_retries: int = 3,
        timeout_s: float = 10.0,
        backoff_factor: float = 0.5,
        max_retry_after_s: float = MAX_RETRY_AFTER_S,
        console_base: str = DEFAULT_CONSOLE_BASE,
        remember: int = 1024,
    ) -> None:
        parts = urlsplit(webhook_url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError(f"the Slack webhook URL must be an http(s) URL, got {redact_url(webhook_url)!r}")
        if max_retries < 0 or remember < 1:
            raise ValueError("max_retries must be >= 0 and remember >= 1")
        self._redact = _Redactor(webhook_url)
        self._where = redact_url(webhook_url)
        self._console_base = console_base
        self._client = WebhookClient(
            webhook_url,
            timeout=timeout_s,  # type: ignore[arg-type]  # urlopen takes float seconds
            logger=self._sdk_logger(),
            retry_handlers=retry_handlers(
                max_retries=max_retries, backoff_factor=backoff_factor, max_retry_after_s=max_retry_after_s,
                fits=self._fits,
            ),
        )
        self._timeout_s = timeout_s
        self._deadline = threading.local()  # this thread's invocation deadline (time.monotonic), if any
        self._remember = remember
        self._posted: OrderedDict[str, None] = OrderedDict()
        self._in_flight: set[str] = set()
        self._lock = threading.Condition()

    def __repr__(self) -> str:
        return f"SlackDelivery({self._where})"

    def _sdk_logger(self) -> logging.Logger:
        # A logger of its own (not registered by name) so that its redacting filter holds only this
        # URL; it still propagates to our logger's handlers. slack_sdk logs the URL and body in full
        # whenever its logger's own level is DEBUG or unset, so the level is set explicitly.
        parent = logging.getLogger("egress_guard.notify")
        sdk_logger = logging.Logger("egress_guard.notify.slack_sdk")
        sdk_logger.parent = parent
        sdk_logger.setLevel(max(logging.INFO, parent.getEffectiveLevel()))
        sdk_logger.addFilter(_RedactingFilter(self._redact))
        return sdk_logger

    def _fits(self, wait: float) -> bool:
        """Whether waiting ``wait`` seconds, then one whole request, ends by this invocation's deadline."""
        deadline = getattr(self._deadline, "at", None)
        return deadline is None or time.monotonic() + wait + self._timeout_s <= deadline

    def deliver(self, finding: Finding, *, deadline: float | None = None) -> DeliveryResult:
        """Post one finding. Raises TransientError when Slack still fails after the retries, or
        when no whole request fits before ``deadline`` (``time.monotonic()``; None: no limit)."""
        self._deadline.at = deadline
        with self._lock:
            # A second delivery of the same finding waits for the first, then sees it posted.
            while finding.id in self._in_flight:
                self._lock.wait()
            if finding.id in self._posted:
                self._posted.move_to_end(finding.id)
                logger.info("finding %s already posted to Slack by this instance; not posting it again", finding.id)
                return DeliveryResult.ALREADY_POSTED
            self._in_flight.add(finding.id)
        result: DeliveryResult | None = None
        try:
            result = self._post(finding)
            return result
        finally:
            with self._lock:
                self._in_flight.discard(finding.id)
                if result in (DeliveryResult.POSTED, DeliveryResult.POSTED_TEXT_ONLY):
                    self._posted[finding.id] = None
                    while len(self._posted) > self._remember:
                        self._posted.popitem(last=False)
                self._lock.notify_all()

    def _post(self, finding: Finding) -> DeliveryResult:
        response = self._send(finding, render_finding(finding, console_base=self._console_base))
        if _succeeded(response):
            logger.info("posted finding %s (%s, %s) to Slack", finding.id, finding.outcome.value, finding.guardrail)
            return DeliveryResult.POSTED

        logger.warning(
            "Slack refused the message for finding %s (HTTP %s %s); posting it once more as plain text",
            finding.id,
            response.status_code,
            self._redact(str(response.body))[:200],
        )
        retry = self._send(finding, render_text_only(finding, console_base=self._console_base))
        if _succeeded(retry):
            logger.info("posted finding %s to Slack as plain text", finding.id)
            return DeliveryResult.POSTED_TEXT_ONLY

        logger.error(
            "Slack refused finding %s again as plain text (HTTP %s %s); acknowledging it, since retrying "
            "a message Slack refuses cannot succeed. The finding: %s",
            finding.id,
            retry.status_code,
            self._redact(str(retry.body))[:200],
            finding.to_json()[:MAX_LOGGED_FINDING],
        )
        return DeliveryResult.REJECTED

    def _send(self, finding: Finding, payload: dict[str, Any]) -> WebhookResponse:
        """The response when it is 200 or a permanent 4xx; TransientError for anything to retry."""
        if not self._fits(0.0):
            raise TransientError(
                f"no time left in this invocation's budget for finding {finding.id} (a request may take "
                f"{self._timeout_s:g} s); failing so Pub/Sub redelivers it rather than risk posting it after "
                "the push's ack deadline, when another instance may have it too"
            )
        try:
            response = self._client.send_dict(payload)
        except Exception as error:  # connection errors that outlived the retry handlers
            # `from None`: the URL must not reach a traceback through the cause chain either.
            raise TransientError(
                f"could not reach Slack ({self._where}) for finding {finding.id}: "
                f"{type(error).__name__}: {self._redact(str(error))}"
            ) from None
        status = response.status_code
        if _succeeded(response) or (400 <= status < 500 and status != 429):
            return response
        raise TransientError(
            f"Slack ({self._where}) still answered HTTP {status} {self._redact(str(response.body))[:200]!r} "
            f"for finding {finding.id} after the retries; failing so Pub/Sub redelivers it",
            code=status,
        )


def _succeeded(response: WebhookResponse) -> bool:
    return 200 <= response.status_code < 300
