"""The local Slack webhook receiver: validates like Slack, records, injects faults (WSGI, in memory)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from werkzeug.test import Client

from localcloud.slack_receiver import SlackReceiver, main, validate_payload

HOOK = "/services/T000/B000/XXXX"


@pytest.fixture
def client() -> Client:
    return Client(SlackReceiver())


def post(client: Client, payload: object, path: str = HOOK):
    return client.post(path, data=json.dumps(payload), content_type="application/json")


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_slack_receiver_accepts_and_records_like_slack(client: Client) -> None:
    payload = {"text": "hello", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "Hi"}}, section("x")]}
    response = post(client, payload)
    assert (response.status_code, response.get_data(as_text=True), response.mimetype) == (200, "ok", "text/plain")
    assert post(client, {"text": "second"}, path="/services/T1/B1/other").status_code == 200
    assert client.get("/_messages").get_json() == [payload, {"text": "second"}]
    assert client.get("/_health").get_json()["messages"] == 2
    assert client.delete("/_messages").status_code == 200
    assert client.get("/_messages").get_json() == []


def test_slack_receiver_takes_form_encoded_payloads(client: Client) -> None:
    response = client.post(HOOK, data={"payload": json.dumps({"text": "form"})})
    assert response.status_code == 200
    assert client.get("/_messages").get_json() == [{"text": "form"}]


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({}, "no_text"),
        ({"text": "  "}, "no_text"),
        ({"blocks": []}, "no_text"),
        ({"text": 5}, "invalid_payload"),
        ([1, 2], "invalid_payload"),
        ({"blocks": {"type": "divider"}}, "invalid_blocks_format"),
        ({"blocks": [{"type": "fancy"}]}, "invalid_blocks"),
        ({"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]}, "invalid_blocks"),
        ({"blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]}, "invalid_blocks"),
        ({"blocks": [section("s" * 3001)]}, "invalid_blocks"),
        ({"blocks": [section("")]}, "invalid_blocks"),
        ({"blocks": [{"type": "section"}]}, "invalid_blocks"),
        ({"blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}]}, "invalid_blocks"),
        ({"blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}]}, "invalid_blocks"),
        ({"blocks": [{"type": "context", "elements": []}]}, "invalid_blocks"),
        ({"blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}]}, "invalid_blocks"),
        ({"blocks": [{"type": "divider"}] * 51}, "invalid_blocks"),
        ({"blocks": [{"type": "image", "image_url": "https://x/y.png"}]}, "invalid_blocks"),
    ],
)
def test_slack_receiver_refuses_what_slack_refuses(client: Client, payload: object, error: str) -> None:
    response = post(client, payload)
    assert (response.status_code, response.get_data(as_text=True)) == (400, error)
    assert validate_payload(payload) == error
    assert client.get("/_messages").get_json() == []


def test_slack_receiver_refuses_bad_json(client: Client) -> None:
    response = client.post(HOOK, data="{nope", content_type="application/json")
    assert (response.status_code, response.get_data(as_text=True)) == (400, "invalid_payload")


def test_slack_receiver_accepts_the_limits_exactly() -> None:
    payload = {
        "text": "fallback",
        "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 150}}]
        + [{"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3000},
            "fields": [{"type": "mrkdwn", "text": "f"}] * 10}]
        + [{"type": "divider"}] * 48,
    }
    assert validate_payload(payload) is None


def test_slack_receiver_fails_the_next_n_requests(client: Client) -> None:
    assert client.post("/_control", json={"status": 429, "retry_after": 2, "count": 2}).status_code == 200
    for _ in range(2):
        response = post(client, {"text": "x"})
        assert (response.status_code, response.headers["Retry-After"], response.get_data(as_text=True)) == (429, "2", "rate_limited")
    assert post(client, {"text": "x"}).status_code == 200
    assert len(client.get("/_messages").get_json()) == 1
    assert client.get("/_health").get_json()["requests"] == 3


def test_slack_receiver_fails_for_a_window() -> None:
    client = Client(SlackReceiver())
    client.post("/_control", json={"status": 500, "seconds": 0.3})
    assert post(client, {"text": "x"}).status_code == 500
    assert client.get("/_control").get_json()["active"] is True
    time.sleep(0.35)
    assert post(client, {"text": "x"}).status_code == 200
    client.post("/_control", json={"status": 503, "seconds": 600})
    client.delete("/_control")
    assert post(client, {"text": "x"}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [{"status": 200, "count": 1}, {"status": 500}, {"status": 429, "count": -1}, {"status": 429, "count": 1, "retry_after": 1.5}, []],
)
def test_slack_receiver_control_refuses_bad_faults(client: Client, body: object) -> None:
    response = client.post("/_control", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]


def test_slack_receiver_routes(client: Client) -> None:
    assert client.get(HOOK).status_code == 405
    assert client.post("/services/", json={"text": "x"}).status_code == 404
    assert client.get("/elsewhere").status_code == 404
    assert client.put("/_messages").status_code == 405
    assert client.get("/_health").get_json()["status"] == "ok"


def test_slack_receiver_is_thread_safe() -> None:
    app = SlackReceiver()
    app.state.set_fault(None)
    Client(app).post("/_control", json={"status": 429, "retry_after": 1, "count": 50})

    def hammer() -> None:
        client = Client(app)
        for index in range(25):
            post(client, {"text": f"{threading.get_ident()}-{index}"})

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state = Client(app).get("/_health").get_json()
    assert state["requests"] == 200
    assert state["messages"] == 150  # exactly the 50 failures were answered with 429


def test_slack_receiver_cli_rejects_bad_arguments() -> None:
    with pytest.raises(SystemExit):
        main(["--port", "not-a-port"])


def test_slack_receiver_serves_from_the_command_line() -> None:
    import re
    import subprocess
    import sys
    import urllib.request

    process = subprocess.Popen(
        [sys.executable, "-m", "localcloud.slack_receiver", "--host", "127.0.0.1", "--port", "0", "--quiet"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        base = match.group(0)
        request = urllib.request.Request(f"{base}{HOOK}", data=b'{"text": "cli"}', method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.read() == b"ok"
        with urllib.request.urlopen(f"{base}/_messages", timeout=10) as response:
            assert json.loads(response.read()) == [{"text": "cli"}]
    finally:
        process.terminate()
        process.wait(timeout=10)
