"""Replay a recording against localcloud, exchange by exchange, in the recorded order.

For each recorded request the replayer decides (plan) and then sends (act):

- **where**: Google's hosts become localcloud's URL layout (``compute.googleapis.com/compute/v1`` ->
  ``{URL}/compute/v1``, ``vpcaccess.googleapis.com/v1beta1`` -> ``{URL}/vpcaccess/v1beta1``,
  ``run.googleapis.com/v2`` -> ``{URL}/run/v2``). Requests to APIs or collections localcloud does
  not emulate (resource manager, billing, service usage, Network Connectivity, serverless NEGs,
  Cloud Run worker pools...) are not sent: the recording answers them itself, counted as skipped.
- **what**: the recorder's placeholders become concrete values (``${projectId}``, ``${uniqueId}``,
  ``${networkID}``...), ``${operationID}`` becomes the operation localcloud last started in that
  scope, and values the recorder normalised in request bodies (a ``labelFingerprint`` of
  ``abcdef0123A=``) become the current value localcloud last returned for that resource.
- **when**: the recorder deleted unfinished operation polls, so where the recording shows the final
  poll and localcloud's operation is not done yet, the replayer polls until it is (bounded).

Two things the recording implies but never shows are recreated as *environment* steps, listed in
the report and never counted as exchanges: resources the recorded project already had (a test that
reads the ``default`` network it never created), and out-of-band resources named by recorded
errors (compute-computerouternatprivate: firewall rules the test never created block the network
delete 13 times).

One placeholder can stand for several resources (the recorder replaced every address name of
compute-computerouternat with ``${addressID}``). Each fresh resource behind a placeholder is a new
*generation* with its own concrete name: a recorded 404 on a placeholder whose resource exists
starts the next one. Where a request body names several generations at once (a NAT's
``natIps`` and rule IPs), each occurrence takes a distinct one, in order, and only one the field
can hold (``sourceNatActiveRanges`` holds PRIVATE_NAT subnets).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlsplit

import requests

from localcloud import discovery
from localcloud.fidelity.recording import Exchange, Recording

# ---- what localcloud emulates -------------------------------------------------------------------
# service -> collections replayed against localcloud; everything else is answered by the recording.
EMULATED: Mapping[str, frozenset[str]] = {
    "compute": frozenset({"networks", "subnetworks", "firewalls", "routers", "addresses", "operations"}),
    "vpcaccess": frozenset({"connectors", "operations"}),
    "run": frozenset({"services", "jobs", "operations"}),
}
# The recorder's per-kind placeholders, by the collection whose names (and numeric ids) they hide.
KIND_PLACEHOLDERS: Mapping[str, str] = {
    "networks": "${networkID}",
    "subnetworks": "${subnetworkID}",
    "firewalls": "${firewallID}",
    "routers": "${routerID}",
    "addresses": "${addressID}",
    "jobs": "${jobID}",
    "networkEndpointGroups": "${networkEndpointGroupID}",
}
_NAME_PREFIX = {"networks": "network", "subnetworks": "subnet", "firewalls": "firewall", "routers": "router",
                "addresses": "address", "jobs": "job", "networkEndpointGroups": "neg"}
# A project's only pre-existing network is the one Google creates with it.
PREEXISTING_NETWORK_NAME = "default"

PROJECT = "fidelity-project"
# The normalised values the recorder writes in place of real ones (NOTES.md §0), as they appear in
# request bodies; the replayer sends localcloud's current value of the same field instead.
NORMALISED_REQUEST_VALUES: Mapping[str, str] = {
    "fingerprint": "abcdef0123A=", "labelFingerprint": "abcdef0123A=", "etag": "abcdef0123A=",
}

POLL_TIMEOUT_S = 30.0  # how long the replayer polls an operation the recording shows finished
POLL_INTERVAL_S = 0.02
REQUEST_TIMEOUT_S = 30.0
# Faster than localcloud's defaults so a full replay takes seconds; the lifecycle shapes compared
# (first answer RUNNING / no done, final poll DONE / done) do not depend on the delays.
REPLAY_CONFIG: Mapping[str, Any] = {
    "compute_operation_delay_s": 0.0, "connector_ready_delay_s": 0.05, "run_operation_delay_s": 0.0,
    "validate_responses": True,
}

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z]+)\}")
_IN_USE_BY = re.compile(r"already being used by '(?P<user>projects/[^']+)'")


# ---- where a request goes ------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """What a recorded URL addresses, and whether localcloud serves it."""

    service: str  # compute | vpcaccess | run | the host of an API localcloud does not emulate
    emulated: bool
    local_path: str  # the path under localcloud's base URL (placeholders still in)
    query: str
    collection: str  # first collection below the project scope, e.g. firewalls, connectors
    scope: str  # global | regions/R | locations/R: where an operation of this call lives
    resource: str | None  # the resource segment (placeholder or name) when the path names one
    verb: str | None  # trailing custom method segment (setLabels, setPrivateIpGoogleAccess)

    @property
    def is_operation(self) -> bool:
        return self.collection == "operations"

    @property
    def why_skipped(self) -> str:
        if self.service in EMULATED:
            return f"{self.service} {self.collection} is not emulated by localcloud"
        return f"{self.service} is not emulated by localcloud"


def classify(url: str) -> Target:
    parts = urlsplit(url)
    host, path = parts.netloc, parts.path
    service, local = host, path
    if host.startswith("compute."):
        service = "compute"
        local = re.sub(r"^/compute/(?:beta|alpha)/", "/compute/v1/", path)  # localcloud serves v1 only
    elif host.startswith("vpcaccess."):
        service, local = "vpcaccess", "/vpcaccess" + path
    elif host.startswith("run."):
        service, local = "run", "/run" + path
    segments = path.strip("/").split("/")
    collection, scope, resource, verb = "", "", None, None
    if "projects" in segments:
        rest = segments[segments.index("projects") + 2:]
        if rest[:1] == ["global"]:
            scope, rest = "global", rest[1:]
        elif rest[:1] in (["regions"], ["locations"], ["zones"]) and len(rest) >= 2:
            scope, rest = f"{rest[0]}/{rest[1]}", rest[2:]
        if rest:
            collection = rest[0].split(":")[0]
        if len(rest) >= 2:
            resource = rest[1].split(":")[0]
        if len(rest) == 3:
            verb = rest[2]
    emulated = service in EMULATED and collection in EMULATED[service]
    return Target(service, emulated, local, parts.query, collection, scope, resource, verb)


# ---- what the recording's placeholders stand for -------------------------------------------------
@dataclass
class Generation:
    """One concrete resource behind a kind placeholder."""

    name: str
    recorded_as: str  # how the recording writes its name: the placeholder, or e.g. runjob-${uniqueId}
    created_with: Mapping[str, Any] = field(default_factory=dict)  # its recorded create body
    live: bool = False  # exists in the recorded project at this point of the recording
    deleted: bool = False  # the recording deleted it (a later reference means another generation)


class Names:
    """Placeholder -> concrete values, and the way back for comparing localcloud's answers."""

    def __init__(self, project: str, unique_id: str, project_number: str) -> None:
        self.project = project
        self.unique_id = unique_id
        self.project_number = project_number
        self.generations: dict[str, list[Generation]] = {}
        self._current: dict[str, int] = {}
        self.preexisting: set[str] = set()  # placeholders whose first resource the project already had
        # The recorder replaced a name by its placeholder in URLs only, while bodies kept it with just
        # ${uniqueId} replaced (runjob-${uniqueId}): the first name a body shows for each placeholder.
        self.aliases: dict[str, str] = {}
        self.ids: dict[str, str] = {}  # numeric resource id -> kind placeholder (learnt from answers)
        self.operations: set[str] = set()  # operation names localcloud answered with (-> ${operationID})

    # -- forward --
    def scalar(self, key: str) -> str | None:
        return {"projectId": self.project, "projectNumber": self.project_number,
                "uniqueId": self.unique_id}.get(key)

    def current(self, placeholder: str) -> Generation:
        gens = self.generations.get(placeholder)
        if not gens:
            return self.new_generation(placeholder)
        index = self._current[placeholder]
        if gens[index].deleted:
            live = [i for i, g in enumerate(gens) if g.live]
            if live:
                index = self._current[placeholder] = live[0]
        return gens[index]

    def new_generation(self, placeholder: str, recorded_as: str | None = None) -> Generation:
        gens = self.generations.setdefault(placeholder, [])
        collection = next((c for c, p in KIND_PLACEHOLDERS.items() if p == placeholder), None)
        if recorded_as is None and not gens:
            recorded_as = self.aliases.get(placeholder)
        if recorded_as is not None:
            name = self.text(recorded_as)
        elif collection == "networks" and not gens and placeholder in self.preexisting:
            name = PREEXISTING_NETWORK_NAME
        else:
            prefix = _NAME_PREFIX.get(collection or "", placeholder.strip("${}").lower().removesuffix("id"))
            number = "" if not gens else str(len(gens) + 1)
            name = f"{prefix}{number}-{self.unique_id}"
        gens.append(Generation(name, recorded_as or placeholder))
        self._current[placeholder] = len(gens) - 1
        return gens[-1]

    def select(self, placeholder: str, generation: Generation) -> None:
        self._current[placeholder] = self.generations[placeholder].index(generation)

    def live(self, placeholder: str) -> list[Generation]:
        return [g for g in self.generations.get(placeholder, []) if g.live]

    def text(self, value: str) -> str:
        """Every placeholder of a string (URL or body value) replaced; kinds by their current generation."""
        def one(m: re.Match[str]) -> str:
            scalar = self.scalar(m.group(1))
            if scalar is not None:
                return scalar
            if m.group(0) in KIND_PLACEHOLDERS.values():
                return self.current(m.group(0)).name
            return m.group(0)  # ${operationID} and unknown ones: the caller resolves them
        return _PLACEHOLDER.sub(one, value)

    # -- backward --
    def reverse(self) -> list[tuple[str, str]]:
        """(concrete, placeholder) pairs, longest concrete first, as the recorder replaced text."""
        pairs = [(g.name, g.recorded_as) for gens in self.generations.values() for g in gens]
        pairs += [(op, "${operationID}") for op in self.operations]
        pairs += [(self.project, "${projectId}"), (self.project_number, "${projectNumber}"),
                  (self.unique_id, "${uniqueId}")]
        return sorted(pairs, key=lambda pair: -len(pair[0]))


# Which generations a request-body field can name, by the path of the field: a private NAT's rules
# take PRIVATE_NAT subnets, its source subnetworks take ordinary ones.
def _fits(path: str, created_with: Mapping[str, Any]) -> bool:
    purpose = created_with.get("purpose")
    if re.search(r"\.sourceNat(?:Active|Drain)Ranges\[\d+\]$", path):
        return purpose == "PRIVATE_NAT"
    if re.search(r"\.subnetworks\[\d+\]\.name$", path):
        return purpose in (None, "PRIVATE")
    return True


# ---- what happened -------------------------------------------------------------------------------
SENT, SKIPPED, UNKNOWN_ROUTE, TRANSPORT_ERROR, NOT_RECORDED = (
    "sent", "skipped", "unknown-route", "transport-error", "no-recorded-answer")


@dataclass(frozen=True)
class Step:
    """One recorded exchange and what localcloud answered (or why nothing was sent)."""

    exchange: Exchange
    target: Target
    outcome: str  # SENT | SKIPPED | UNKNOWN_ROUTE | TRANSPORT_ERROR | NOT_RECORDED
    method: str
    url: str  # as sent (or as recorded, when skipped)
    request_body: Any
    status: int | None
    body: Any
    content_type: str = ""
    polls: int = 0  # extra polls made until localcloud's operation was done
    note: str = ""


@dataclass(frozen=True)
class EnvironmentStep:
    """A change made to localcloud that the recording implies but does not show."""

    before_exchange: int
    action: str  # e.g. "create compute network default"
    reason: str
    status: int | None
    note: str = ""  # why it failed, when it did

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.note


@dataclass
class FileReplay:
    recording: Recording
    names: Names
    steps: list[Step] = field(default_factory=list)
    environment: list[EnvironmentStep] = field(default_factory=list)


# ---- an in-process localcloud --------------------------------------------------------------------
class InProcessLocalCloud:
    """localcloud served from this process on a free loopback port (stopped by ``close``)."""

    def __init__(self) -> None:
        from localcloud.server import serve

        self.server = serve("127.0.0.1", 0)
        self.app = self.server.app
        self.thread = threading.Thread(target=self.server.serve_forever, name="localcloud-fidelity", daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def reset(self) -> None:
        with self.app.world.lock:
            self.app.world.reset()
            self.app.operations.reset()
        self.app.calls.reset()
        self.app.faults.reset()
        self.app.world.config.update(dict(REPLAY_CONFIG))

    def close(self) -> None:
        self.server.shutdown()
        self.app.operations.stop_ticker()
        self.thread.join(timeout=5)

    def __enter__(self) -> "InProcessLocalCloud":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- the replayer ----------------------------------------------------------------------------------
def unique_id_for(name: str) -> str:
    """A stable, distinctive uniqueId per recording: letters g-z only, so no hex id or operation
    name of localcloud's can contain it by chance (the way back replaces it textually)."""
    digest = hashlib.sha256(name.encode()).digest()
    return "fid" + "".join("ghijklmnopqrstuvwxyz"[b % 20] for b in digest[:7])


class Replayer:
    """Replays one recording against localcloud at ``base_url`` (already reset)."""

    def __init__(self, recording: Recording, base_url: str, *, session: requests.Session | None = None) -> None:
        from localcloud.backends.vpcaccess import project_number

        self.recording = recording
        self.base_url = base_url.rstrip("/")
        self.http = session or requests.Session()
        self.names = Names(PROJECT, unique_id_for(recording.name), project_number(PROJECT))
        self.result = FileReplay(recording, self.names)
        self._operations: dict[tuple[str, str], str | None] = {}  # (service, scope) -> last op name
        self._latest: dict[str, dict[str, Any]] = {}  # resource path -> last body localcloud returned
        self._blockers = _blocker_plan(recording)
        self._blocker_now: str | None = None
        self._plan_preexisting()
        self._aliases = _alias_plan(recording)
        for placeholder, alias in reversed(list(self._aliases.values())):
            self.names.aliases[placeholder] = alias  # reversed: the first one wins

    # -- plan ------------------------------------------------------------------------------------
    def _plan_preexisting(self) -> None:
        """Resources the recorded project had before the test: read with 200 before any create."""
        created: set[str] = set()
        for ex in self.recording.exchanges:
            target = classify(ex.request.url)
            placeholder = target.resource if target.resource in KIND_PLACEHOLDERS.values() else None
            if ex.request.method == "POST" and target.resource is None:
                body_name = (ex.request.body or {}).get("name") if isinstance(ex.request.body, dict) else None
                if body_name in KIND_PLACEHOLDERS.values():
                    created.add(body_name)
            if placeholder and placeholder not in created and ex.request.method == "GET" and \
                    ex.response is not None and ex.response.status == 200:
                self.names.preexisting.add(placeholder)
                created.add(placeholder)  # only its first resource

    # -- run -------------------------------------------------------------------------------------
    def run(self) -> FileReplay:
        if self.recording.is_probe:
            # A probe re-reads, after the test, everything the test left: all of it exists at once.
            for ex in self.recording.exchanges:
                self._apply_alias(ex)
                self._seed_if_preexisting(ex, classify(ex.request.url))
        for ex in self.recording.exchanges:
            target = classify(ex.request.url)
            self._apply_alias(ex)
            self._seed_if_preexisting(ex, target)
            self._track_before(ex, target)
            if ex.index in self._blockers:
                self._ensure_blocker(ex, self._blockers[ex.index])
            self.result.steps.append(self._replay(ex, target))
            self._track_after(ex, target)
        return self.result

    def _replay(self, ex: Exchange, target: Target) -> Step:
        if ex.response is None:
            return Step(ex, target, NOT_RECORDED, ex.request.method, ex.request.url, ex.request.body, None, None,
                        note="the recording has no answer to compare with")
        if not target.emulated:
            self._note_skipped_operation(ex, target)
            return Step(ex, target, SKIPPED, ex.request.method, ex.request.url, ex.request.body,
                        ex.response.status, ex.response.body, note=target.why_skipped)
        if target.is_operation and target.resource == "${operationID}":
            op = self._operations.get((target.service, target.scope), "")
            if op is None:
                return Step(ex, target, SKIPPED, ex.request.method, ex.request.url, ex.request.body,
                            ex.response.status, ex.response.body,
                            note="polls an operation of a call localcloud did not receive (skipped)")
        url = self._url(target)
        body = self._request_body(ex, target)
        try:
            status, answer, content_type = self._send(ex.request.method, url, body)
            polls = 0
            if target.is_operation and ex.request.method == "GET" and _finished(ex.response.body):
                deadline = time.monotonic() + POLL_TIMEOUT_S
                while status == 200 and not _finished(answer) and time.monotonic() < deadline:
                    time.sleep(POLL_INTERVAL_S)
                    status, answer, content_type = self._send("GET", url, None)
                    polls += 1
        except requests.RequestException as exc:
            return Step(ex, target, TRANSPORT_ERROR, ex.request.method, url, body, None, None, note=str(exc))
        self._learn(target, ex.request.method, status, answer)
        outcome = UNKNOWN_ROUTE if _is_unknown_route(status, answer) else SENT
        note = f"polled {polls} more time(s) until done" if polls else ""
        return Step(ex, target, outcome, ex.request.method, url, body, status, answer, content_type, polls, note)

    # -- requests --------------------------------------------------------------------------------
    def _url(self, target: Target) -> str:
        path = target.local_path
        if target.is_operation and target.resource == "${operationID}":
            path = path.replace("${operationID}", self._operations.get((target.service, target.scope)) or "", 1)
        path = self.names.text(path)
        query = self.names.text(target.query)
        return f"{self.base_url}{path}" + (f"?{query}" if query else "")

    def _request_body(self, ex: Exchange, target: Target) -> Any:
        if ex.request.body is None:
            return None
        used: dict[str, set[int]] = {}
        latest = self._latest.get(self._resource_path(target), {})

        def walk(value: Any, path: str) -> Any:
            if isinstance(value, dict):
                out = {}
                for key, item in value.items():
                    if key in NORMALISED_REQUEST_VALUES and item == NORMALISED_REQUEST_VALUES[key] and key in latest:
                        out[key] = latest[key]
                    else:
                        out[key] = walk(item, f"{path}.{key}")
                return out
            if isinstance(value, list):
                return [walk(item, f"{path}[{i}]") for i, item in enumerate(value)]
            if isinstance(value, str):
                return self._body_text(value, path, used)
            return value

        return walk(copy.deepcopy(ex.request.body), "")

    def _body_text(self, value: str, path: str, used: dict[str, set[int]]) -> str:
        """A body string with its placeholders resolved. A link may name any live generation (each
        link of the body a distinct one that fits); a bare name is the resource being written."""
        if "/" not in value:
            return self.names.text(value)

        def one(m: re.Match[str]) -> str:
            placeholder = m.group(0)
            live = self.names.live(placeholder)
            if len(live) < 2:
                return m.group(0)
            gens = self.names.generations[placeholder]
            taken = used.setdefault(placeholder, set())
            fitting = [i for i, g in enumerate(gens) if g.live and _fits(path, g.created_with)]
            choice = next((i for i in fitting if i not in taken), fitting[0] if fitting else None)
            if choice is None:
                return m.group(0)
            taken.add(choice)
            return gens[choice].name
        return self.names.text(_PLACEHOLDER.sub(one, value))

    def _send(self, method: str, url: str, body: Any) -> tuple[int, Any, str]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        data = json.dumps(body) if body is not None else None
        response = self.http.request(method, url, data=data, headers=headers, timeout=REQUEST_TIMEOUT_S)
        try:
            answer = response.json() if response.content.strip() else None
        except ValueError:
            answer = response.text
        return response.status_code, answer, response.headers.get("Content-Type", "")

    # -- what the answers teach ------------------------------------------------------------------
    def _learn(self, target: Target, method: str, status: int, answer: Any) -> None:
        if status != 200 or not isinstance(answer, dict):
            return
        op_name = _operation_name(answer)
        if op_name is not None:
            self.names.operations.add(op_name)
        if op_name is not None and not target.is_operation:
            self._operations[(target.service, _operation_scope(target, answer))] = op_name
        if target.resource is not None and target.verb is None and not target.is_operation and method == "GET":
            self._latest[self._resource_path(target)] = answer
        self._learn_ids(answer)

    def _learn_ids(self, body: dict[str, Any]) -> None:
        """Numeric ids of localcloud's resources, so the way back can write their placeholders."""
        link = body.get("targetLink") or body.get("selfLink")
        target_id = body.get("targetId") if "targetLink" in body else body.get("id")
        if isinstance(link, str) and isinstance(target_id, str) and target_id.isdigit():
            collection = _collection_of_link(link)
            if collection in KIND_PLACEHOLDERS:
                self.names.ids[target_id] = KIND_PLACEHOLDERS[collection]

    def _note_skipped_operation(self, ex: Exchange, target: Target) -> None:
        """A call localcloud does not receive may start an operation the recording then polls."""
        if ex.response is None or target.is_operation or not isinstance(ex.response.body, dict):
            return
        if _operation_name(ex.response.body) is not None:
            self._operations[(target.service, _operation_scope(target, ex.response.body))] = None

    def _resource_path(self, target: Target) -> str:
        path = self.names.text(target.local_path)
        if target.verb:
            path = path.rsplit("/", 1)[0]
        return path.split(":")[0]

    # -- the recorded project's own history --------------------------------------------------------
    def _track_before(self, ex: Exchange, target: Target) -> None:
        """A recorded 404 on a placeholder whose resource exists means the next resource behind it."""
        placeholder = _kind_placeholder(target)
        if placeholder is None or ex.response is None:
            return
        if ex.request.method == "GET" and ex.response.status == 404:
            gens = self.names.generations.get(placeholder)
            if gens and self.names.current(placeholder).live:
                self.names.new_generation(placeholder)
        elif ex.request.method == "GET" and ex.response.status == 200 and isinstance(ex.response.body, dict):
            # Several live resources behind one placeholder: the recorded answer says which one
            # (the one whose create body agrees with it most, e.g. ipCidrRange and purpose).
            live = self.names.live(placeholder)
            if len(live) > 1:
                current = self.names.current(placeholder)  # on a tie, the one the recording was using
                best = max(live, key=lambda g: (_agreement(g.created_with, ex.response.body), g is current))
                self.names.select(placeholder, best)

    def _track_after(self, ex: Exchange, target: Target) -> None:
        if ex.response is None or ex.response.status != 200:
            return
        body = ex.request.body if isinstance(ex.request.body, dict) else {}
        if ex.request.method == "POST" and target.resource is None and target.collection in KIND_PLACEHOLDERS:
            created = body.get("name")
            for key, value in ex.request.query.items():
                if key.endswith("Id") and value in KIND_PLACEHOLDERS.values():
                    created = value
            if created in KIND_PLACEHOLDERS.values():
                gen = self.names.current(created)
                gen.live, gen.created_with = True, body
        elif ex.request.method == "DELETE":
            placeholder = _kind_placeholder(target)
            if placeholder is not None:
                gen = self.names.current(placeholder)
                gen.live, gen.deleted = False, True

    def _apply_alias(self, ex: Exchange) -> None:
        """This exchange's recorded answer names the resource behind a placeholder: use that name."""
        if ex.index not in self._aliases:
            return
        placeholder, alias = self._aliases[ex.index]
        gens = self.names.generations.get(placeholder, [])
        same = [g for g in gens if g.recorded_as == alias]
        if same:
            self.names.select(placeholder, same[-1])
        elif gens and not self.names.current(placeholder).live and not self.names.current(placeholder).deleted:
            gen = self.names.current(placeholder)
            gen.name, gen.recorded_as = self.names.text(alias), alias
        else:
            self.names.new_generation(placeholder, alias)

    # -- environment -----------------------------------------------------------------------------
    def _seed_if_preexisting(self, ex: Exchange, target: Target) -> None:
        """Create, from its recorded GET, a resource the recorded project already had."""
        placeholder = _kind_placeholder(target)
        if (placeholder is None or not target.emulated or target.service != "compute" or ex.response is None
                or ex.response.status != 200 or ex.request.method != "GET" or not isinstance(ex.response.body, dict)):
            return
        if placeholder not in self.names.preexisting and not self.recording.is_probe:
            return
        gen = self.names.current(placeholder)
        if gen.live or gen.deleted:
            return
        body = _creatable(target, ex.response.body, self.names)
        if placeholder == "${networkID}" and gen.name == PREEXISTING_NETWORK_NAME:
            body.setdefault("autoCreateSubnetworks", True)  # default networks are auto mode
        body["name"] = gen.name
        collection_path = self.names.text(target.local_path).rsplit("/", 1)[0]
        status, note = self._create_and_wait(f"{self.base_url}{collection_path}", body)
        gen.live, gen.created_with = True, body
        self.result.environment.append(EnvironmentStep(
            ex.index, f"create compute {target.collection} {gen.name}",
            "the recorded project already had it: the recording reads it (200) before any create",
            status, note))

    def _ensure_blocker(self, ex: Exchange, blocker: str) -> None:
        """Keep the out-of-band firewall rule a recorded error names in place before this DELETE."""
        wanted = self.names.text(blocker)
        if self._blocker_now == wanted:
            return
        target_path = self.names.text(classify(ex.request.url).local_path)
        project = target_path.split("/projects/", 1)[1].split("/", 1)[0]
        firewalls = f"{self.base_url}/compute/v1/projects/{project}/global/firewalls"
        reason = ("a recorded operation of this DELETE failed with RESOURCE_IN_USE_BY_ANOTHER_RESOURCE naming "
                  "this firewall rule, which the test never created (out of band; NOTES.md §3)")
        if self._blocker_now is not None:
            old = self._blocker_now.rsplit("/", 1)[-1]
            status, note = self._delete_and_wait(f"{firewalls}/{old}")
            self.result.environment.append(EnvironmentStep(
                ex.index, f"delete compute firewall {old}", "the recorded blocker changed", status, note))
        network = target_path.rsplit("/", 1)[-1]
        body = {"name": wanted.rsplit("/", 1)[-1], "allowed": [{"IPProtocol": "tcp"}],
                "sourceRanges": ["0.0.0.0/0"], "network": f"projects/{project}/global/networks/{network}"}
        status, note = self._create_and_wait(firewalls, body)
        self._blocker_now = wanted
        self.result.environment.append(EnvironmentStep(ex.index, f"create compute firewall {body['name']}",
                                                       reason, status, note))

    def _create_and_wait(self, url: str, body: dict[str, Any]) -> tuple[int | None, str]:
        return self._write_and_wait("POST", url, body)

    def _delete_and_wait(self, url: str) -> tuple[int | None, str]:
        return self._write_and_wait("DELETE", url, None)

    def _write_and_wait(self, method: str, url: str, body: Any) -> tuple[int | None, str]:
        """A compute write and its operation, to the end: (status, "" or what went wrong)."""
        try:
            status, answer, _ = self._send(method, url, body)
            if status != 200:
                return status, json.dumps(answer)[:300]
            final = self._wait_compute(answer)
        except requests.RequestException as exc:
            return None, str(exc)
        if not _finished(final):
            return status, "its operation did not finish"
        if isinstance(final, dict) and final.get("error"):
            return status, json.dumps(final["error"])[:300]
        return status, ""

    def _wait_compute(self, op: Any) -> Any:
        link = op.get("selfLink") if isinstance(op, dict) else None
        if not isinstance(link, str):
            return op
        url = self.base_url + "/compute/v1/" + link.split("/compute/v1/", 1)[-1]
        deadline = time.monotonic() + POLL_TIMEOUT_S
        answer = op
        while time.monotonic() < deadline:
            status, answer, _ = self._send("GET", url, None)
            if status != 200 or _finished(answer):
                return answer
            time.sleep(POLL_INTERVAL_S)
        return answer


# ---- helpers ---------------------------------------------------------------------------------------
def _finished(body: Any) -> bool:
    """A compute operation DONE, or a google.longrunning.Operation with done."""
    return isinstance(body, dict) and (body.get("status") == "DONE" or body.get("done") is True)


def _operation_name(body: Mapping[str, Any]) -> str | None:
    if body.get("kind") == "compute#operation" and isinstance(body.get("name"), str):
        return body["name"]
    name = body.get("name")
    if isinstance(name, str) and "/operations/" in name:
        return name.rsplit("/", 1)[-1]
    return None


def _operation_scope(target: Target, body: Mapping[str, Any]) -> str:
    link = body.get("selfLink") if body.get("kind") == "compute#operation" else body.get("name")
    if isinstance(link, str):
        m = re.search(r"/((?:regions|locations|zones)/[^/]+|global)/operations/", "/" + link)
        if m:
            return m.group(1)
    return target.scope


def _collection_of_link(link: str) -> str:
    segments = urlsplit(link).path.strip("/").split("/") if "://" in link else link.strip("/").split("/")
    return segments[-2] if len(segments) >= 2 else ""


def _agreement(created_with: Mapping[str, Any], recorded: Mapping[str, Any]) -> int:
    return sum(1 for k, v in created_with.items() if not isinstance(v, (dict, list)) and recorded.get(k) == v)


def _kind_placeholder(target: Target) -> str | None:
    if target.resource is not None and target.resource == KIND_PLACEHOLDERS.get(target.collection):
        return target.resource
    return None


def _is_unknown_route(status: int, body: Any) -> bool:
    """localcloud's router answers an unrouted path 404/405 with a message saying so."""
    if status not in (404, 405) or not isinstance(body, dict):
        return False
    message = str((body.get("error") or {}).get("message", ""))
    return message.startswith("localcloud: no route") or message.startswith("localcloud: method")


def _creatable(target: Target, recorded: Mapping[str, Any], names: Names) -> dict[str, Any]:
    """A create body from a recorded GET body: output-only fields dropped, placeholders resolved."""
    schema = {"networks": "Network", "subnetworks": "Subnetwork", "firewalls": "Firewall",
              "routers": "Router", "addresses": "Address"}.get(target.collection)
    output_only = discovery.output_only_fields("compute.v1", schema) if schema else frozenset()
    # Also fields a create must not carry though discovery does not mark them output only.
    dropped = set(output_only) | {"selfLinkWithId", "subnetworks", "peerings", "gatewayAddress", "state",
                                  "fingerprint", "labelFingerprint"}
    body = {k: v for k, v in recorded.items() if k not in dropped}

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, str):
            return names.text(value)
        return value

    return resolve(body)


def _alias_plan(recording: Recording) -> dict[int, tuple[str, str]]:
    """Exchange index -> (placeholder, name as its recorded answer writes it), where they differ."""
    plan: dict[int, tuple[str, str]] = {}
    for ex in recording.exchanges:
        if ex.response is None or ex.response.status != 200 or not isinstance(ex.response.body, dict):
            continue
        target = classify(ex.request.url)
        placeholder = _kind_placeholder(target)
        if placeholder is None:
            placeholder = next((v for k, v in ex.request.query.items()
                                if k.endswith("Id") and v == KIND_PLACEHOLDERS.get(target.collection)), None)
        if placeholder is None or target.is_operation:
            continue
        body = ex.response.body
        names = [body.get("name"), *(body.get(k, {}).get("name") for k in ("metadata", "response")
                                     if isinstance(body.get(k), dict))]
        for name in names:
            if not isinstance(name, str):
                continue
            segments = name.split("/")
            if len(segments) > 1 and segments[-2] != target.collection:
                continue
            alias = segments[-1]
            others = {m.group(1) for m in _PLACEHOLDER.finditer(alias)} - {"uniqueId", "projectId", "projectNumber"}
            if alias != placeholder and not others:
                plan[ex.index] = (placeholder, alias)
                break
    return plan


def _blocker_plan(recording: Recording) -> dict[int, str]:
    """DELETE exchange index -> the out-of-band resource that must block it, from recorded errors.

    A recorded final poll that failed RESOURCE_IN_USE_BY_ANOTHER_RESOURCE names the blocker; the
    DELETE it belongs to is the last one of the same target before it. DELETEs of that target
    whose poll was not recorded keep the blocker of the one before (or after, for the first).
    """
    created = _created_names(recording)
    deletes: dict[str, list[int]] = {}
    known: dict[int, str] = {}
    last_delete: dict[str, int] = {}
    for ex in recording.exchanges:
        target = classify(ex.request.url)
        if target.service != "compute" or ex.response is None:
            continue
        if ex.request.method == "DELETE" and target.resource:
            key = target.local_path
            deletes.setdefault(key, []).append(ex.index)
            last_delete[key] = ex.index
        body = ex.response.body if isinstance(ex.response.body, dict) else {}
        if target.is_operation and body.get("status") == "DONE":
            for err in (body.get("error") or {}).get("errors", []):
                m = _IN_USE_BY.search(str(err.get("message", "")))
                if err.get("code") != "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE" or not m:
                    continue
                blocker = m.group("user")
                if blocker.rsplit("/", 1)[-1] in created or "/firewalls/" not in blocker:
                    continue  # the test's own resource, or one localcloud cannot stand in for
                link = str(body.get("targetLink", ""))
                for key, index in last_delete.items():
                    if link.endswith(key.split("/compute/v1/", 1)[-1]):
                        known[index] = blocker
    plan: dict[int, str] = {}
    for indices in deletes.values():
        determined = [i for i in indices if i in known]
        if not determined:
            continue
        carried = known[determined[0]]
        for index in indices:
            carried = known.get(index, carried)
            plan[index] = carried
    return plan


def _created_names(recording: Recording) -> set[str]:
    names: set[str] = set()
    for ex in recording.exchanges:
        if ex.request.method == "POST" and isinstance(ex.request.body, dict):
            name = ex.request.body.get("name")
            if isinstance(name, str):
                names.add(name)
    return names


def replay_all(recordings: list[Recording], *, base_url: str | None = None,
               on_file: Callable[[FileReplay], None] | None = None) -> Iterator[FileReplay]:
    """Replay each recording on a fresh localcloud (in-process unless ``base_url`` names one)."""
    local = InProcessLocalCloud() if base_url is None else None
    try:
        session = requests.Session()
        for recording in recordings:
            if local is not None:
                local.reset()
                url = local.url
            else:
                from localcloud.control_client import LocalCloudControl

                control = LocalCloudControl(base_url)  # type: ignore[arg-type]
                control.reset()
                control.config(**REPLAY_CONFIG)
                url = base_url  # type: ignore[assignment]
            replay = Replayer(recording, url, session=session).run()
            if on_file:
                on_file(replay)
            yield replay
    finally:
        if local is not None:
            local.close()
