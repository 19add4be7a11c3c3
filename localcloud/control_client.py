"""A small client of the control API, for tests, the demo and benchmarks."""

from __future__ import annotations

from typing import Any

import requests


class LocalCloudControl:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()

    def _call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self._session.request(method, f"{self.base_url}/_localcloud/{path}", json=body,
                                         params=params or None, timeout=self.timeout)
        if response.status_code >= 400:
            raise RuntimeError(f"localcloud control {method} {path}: {response.status_code} {response.text}")
        return response.json()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "health")

    def reset(self) -> None:
        self._call("POST", "reset")

    def state(self) -> dict[str, Any]:
        return self._call("GET", "state")

    def calls(self, since: int = 0, principal: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"since": since}
        if principal:
            params["principal"] = principal
        return self._call("GET", "calls", **params)

    def clear_calls(self) -> None:
        self._call("DELETE", "calls")

    def set_faults(self, rules: list[dict[str, Any]], seed: int | None = None) -> None:
        self._call("POST", "faults", {"rules": rules, **({"seed": seed} if seed is not None else {})})

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def held(self) -> int:
        """How many calls a ``hold`` fault rule holds now."""
        return int(self._call("GET", "faults")["held"])

    def release(self) -> int:
        """Let every held call go on; returns how many were held."""
        return int(self._call("POST", "faults/release")["released"])

    def set_quotas(self, **quota: Any) -> dict[str, Any]:
        """Switch on Compute's rate quota (``per_window``, ``window_s``; Google's 1,500 a minute by default)."""
        return self._call("POST", "quotas", quota)

    def quotas(self) -> dict[str, Any]:
        return self._call("GET", "quotas")

    def clear_quotas(self) -> None:
        self._call("DELETE", "quotas")

    def config(self, **changes: Any) -> dict[str, Any]:
        return self._call("POST", "config", changes) if changes else self._call("GET", "config")

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """Any other control route a service adds (e.g. ``sinks``)."""
        return self._call(method, path, body, **params)
