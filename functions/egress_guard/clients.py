"""The one client factory: every Google API call egress-guard makes goes through a client built here.

``Clients(settings)`` builds each client on first use and keeps it (clients are thread-safe and
reuse connections). In Google Cloud the clients use the default credentials and endpoints. With
``LOCALCLOUD_URL`` set they use anonymous credentials and localcloud's URL layout:

| Client                          | Library (transport)                  | localcloud endpoint          |
|---------------------------------|--------------------------------------|------------------------------|
| networks, subnetworks, firewalls, routers, addresses, region_operations, global_operations | google-cloud-compute ``compute_v1`` (REST) | ``{URL}`` (paths ``/compute/v1/...``) |
| connectors                      | google-cloud-vpc-access ``vpcaccess_v1`` (REST) | ``{URL}/vpcaccess``   |
| run_services, run_jobs          | google-cloud-run ``run_v2`` (REST)   | ``{URL}/run``                |
| functions_json                  | Cloud Functions v2 as JSON (``JsonApi`` over google-auth's ``AuthorizedSession``) | ``{URL}/cloudfunctions`` |
| appengine                       | App Engine Admin v1 as JSON (``JsonApi``) | ``{URL}/appengine`` |
| logging                         | google-cloud-logging (HTTP, ``_use_grpc=False``) | ``{URL}/logging`` |
| publisher, subscriber           | google-cloud-pubsub (gRPC)           | ``PUBSUB_EMULATOR_HOST``, honoured by the library |
| topic_iam                       | google-cloud-pubsub's GAPIC ``PublisherClient`` (REST): topics' IAM policies | ``{URL}/pubsub`` (the emulator has no IAM) |
| functions                       | google-api-python-client ``cloudfunctions`` v2 (discovery) | ``{URL}/cloudfunctions/`` |
| projects, folders, organizations | google-cloud-resource-manager ``resourcemanager_v3`` (REST) | ``{URL}/cloudresourcemanager`` |
| assets                          | google-cloud-asset ``asset_v1`` (REST): ``searchAllResources`` for ``sweep --organization`` | ``{URL}/cloudasset`` |
| secrets                         | google-cloud-secret-manager ``secretmanager_v1`` (REST) | ``{URL}/secretmanager`` |
| iam                             | google-api-python-client ``iam`` v1 (discovery; google-cloud-iam has no REST transport) | ``{URL}/iam/`` |
| json (``api_root(api)``)        | google-auth ``AuthorizedSession`` (REST, JSON as Google sends it) | ``{URL}``, ``{URL}/vpcaccess``, ``{URL}/run`` |

``json`` is for bulk reads whose pages are only looked at once (``egress-guard sweep``'s lists):
the same REST calls, credentials and endpoints as the client libraries, without their typed
messages. Turning 70,000 firewall rules into proto-plus messages and back to JSON cost a sweep more
than listing them, and importing ``compute_v1`` alone takes longer than a 1,000-connector sweep's
budget (docs/peers.md §5). Writes stay on the client libraries.

The heavy libraries are imported inside the properties, so importing ``egress_guard`` (for
example from notify_slack) never loads ``compute_v1`` (about 1 s and 150 MiB, docs/peers.md §5).

Tests and the demo get the real clients pointed at localcloud by setting ``LOCALCLOUD_URL``;
unit tests of guardrails may pass any object with the same attributes.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .config import Settings
from .errors import ConfigError

if TYPE_CHECKING:  # for type checkers only; never imported at run time here
    from google.cloud import compute_v1, logging as cloud_logging, pubsub_v1, run_v2, vpcaccess_v1

USER_AGENT = "egress-guard/0.1.0"

# Where each API's REST paths start, at Google (host, version) and under LOCALCLOUD_URL (the prefix
# the client libraries' api_endpoint gets below). The same roots the client libraries use.
_GOOGLE_ROOTS = {"compute": "https://compute.googleapis.com/compute/v1", "vpcaccess": "https://vpcaccess.googleapis.com/v1",
                 "run": "https://run.googleapis.com/v2", "cloudfunctions": "https://cloudfunctions.googleapis.com/v2",
                 "appengine": "https://appengine.googleapis.com/v1"}
_LOCAL_ROOTS = {"compute": "/compute/v1", "vpcaccess": "/vpcaccess/v1", "run": "/run/v2",
                "cloudfunctions": "/cloudfunctions/v2", "appengine": "/appengine/v1"}
_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


class Clients:
    """Lazily built, cached Google API clients for one set of ``Settings``."""

    def __init__(self, settings: Settings, *, credentials: Any = None) -> None:
        self.settings = settings
        self._explicit_credentials = credentials
        self._lock = threading.Lock()
        self._response_hooks: list[Any] = []
        self._sessions: list[Any] = []
        self.unobserved: list[str] = []  # clients built without a session a response hook can see

    # -- every HTTP request, observed

    def on_response(self, hook: Any) -> None:
        """Call ``hook`` (a ``requests`` response hook) for every HTTP response of every REST client,
        built now or later. google-api-core's REST transports keep their ``requests`` session in
        ``_transport._session`` (private); a client without one is named in ``unobserved``."""
        with self._lock:
            self._response_hooks.append(hook)
            for session in self._sessions:
                session.hooks.setdefault("response", []).append(hook)

    def _observed(self, name: str, client: Any) -> Any:
        session = client if hasattr(client, "hooks") else getattr(getattr(client, "_transport", None), "_session", None)
        with self._lock:
            if not isinstance(getattr(session, "hooks", None), dict):
                self.unobserved.append(name)
                return client
            self._sessions.append(session)
            session.hooks.setdefault("response", []).extend(self._response_hooks)
        return client

    # -- shared construction

    @cached_property
    def _credentials(self) -> Any:
        if self._explicit_credentials is not None:
            return self._explicit_credentials
        if self.settings.localcloud_url is not None:
            if self.settings.principal:
                return LocalPrincipalCredentials(self.settings.principal)
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials()
        return None  # each library falls back to google.auth.default()

    def _client_info(self) -> Any:
        # Marks egress-guard's own calls in the x-goog-api-client header (and audit entries' user agent).
        from google.api_core.gapic_v1.client_info import ClientInfo

        return ClientInfo(user_agent=USER_AGENT)

    def _options(self, path: str = "") -> dict[str, str] | None:
        if self.settings.localcloud_url is None:
            return None
        return {"api_endpoint": f"{self.settings.localcloud_url}{path}"}

    def _compute(self, class_name: str) -> Any:
        from google.cloud import compute_v1

        cls = getattr(compute_v1, class_name)
        with self._lock:
            client = cls(credentials=self._credentials, client_options=self._options(), transport="rest",
                         client_info=self._client_info())
        self._observed(class_name, client)
        if class_name not in ("GlobalOperationsClient", "RegionOperationsClient"):
            # ExtendedOperation.result() polls through operations clients that compute_v1 builds
            # itself with the default endpoint, ignoring client_options (google-cloud-compute
            # 1.57, transports/base.py). Hand it ours, so that waiting works against localcloud too.
            services = getattr(client._transport, "_extended_operations_services", None)
            if isinstance(services, dict):
                services["global_operations"] = self.global_operations
                services["region_operations"] = self.region_operations
        return client

    # -- Compute Engine v1

    @cached_property
    def networks(self) -> "compute_v1.NetworksClient":
        return self._compute("NetworksClient")

    @cached_property
    def subnetworks(self) -> "compute_v1.SubnetworksClient":
        return self._compute("SubnetworksClient")

    @cached_property
    def firewalls(self) -> "compute_v1.FirewallsClient":
        return self._compute("FirewallsClient")

    @cached_property
    def routers(self) -> "compute_v1.RoutersClient":
        return self._compute("RoutersClient")

    @cached_property
    def addresses(self) -> "compute_v1.AddressesClient":
        return self._compute("AddressesClient")

    @cached_property
    def region_operations(self) -> "compute_v1.RegionOperationsClient":
        return self._compute("RegionOperationsClient")

    @cached_property
    def global_operations(self) -> "compute_v1.GlobalOperationsClient":
        return self._compute("GlobalOperationsClient")

    # -- Serverless VPC Access v1

    @cached_property
    def connectors(self) -> "vpcaccess_v1.VpcAccessServiceClient":
        from google.cloud import vpcaccess_v1

        with self._lock:
            client = vpcaccess_v1.VpcAccessServiceClient(
                credentials=self._credentials, transport="rest", client_options=self._options("/vpcaccess"),
                client_info=self._client_info())
        return self._observed("connectors", client)

    # -- Cloud Run v2

    @cached_property
    def run_services(self) -> "run_v2.ServicesClient":
        from google.cloud import run_v2

        with self._lock:
            client = run_v2.ServicesClient(credentials=self._credentials, transport="rest",
                                           client_options=self._options("/run"), client_info=self._client_info())
        return self._observed("run_services", client)

    @cached_property
    def run_jobs(self) -> "run_v2.JobsClient":
        from google.cloud import run_v2

        with self._lock:
            client = run_v2.JobsClient(credentials=self._credentials, transport="rest",
                                       client_options=self._options("/run"), client_info=self._client_info())
        return self._observed("run_jobs", client)

    # -- JSON over REST, for bulk reads

    @cached_property
    def json(self) -> Any:
        """A ``requests`` session that authenticates as the client libraries do (``AuthorizedSession``),
        for ``api.pages``: list pages as Google's JSON, without typed messages."""
        from google.auth.transport.requests import AuthorizedSession

        credentials = self._credentials
        if credentials is None:
            import google.auth

            credentials, _ = google.auth.default(scopes=_SCOPES)
        session = AuthorizedSession(credentials)
        session.headers["User-Agent"] = USER_AGENT
        return self._observed("json", session)

    def api_root(self, api: str) -> str:
        """The URL an API's REST paths start from: ``compute`` (``.../compute/v1``), ``vpcaccess``
        (``.../v1``), ``run`` (``.../v2``)."""
        if self.settings.localcloud_url is None:
            return _GOOGLE_ROOTS[api]
        return f"{self.settings.localcloud_url}{_LOCAL_ROOTS[api]}"

    # -- Cloud Functions v2

    @cached_property
    def functions_json(self) -> "JsonApi":
        """Cloud Functions v2, read as Google's JSON (the guardrails and sweep; ``functions``, the
        discovery client, is doctor's: two ways to one API, to be made one): google-cloud-functions' v2 ``ServiceConfig`` has
        no Direct VPC fields (1.25.0) and would drop them, and installed beside the Functions Framework
        it replaces the framework's ``google.cloud.functions`` package (docs/gcp-facts.md §12.3)."""
        return self._json_api("cloudfunctions", "v2")

    @cached_property
    def appengine(self) -> "JsonApi":
        """App Engine Admin v1, read as JSON: one read (versions.get) does not justify another client
        library in every function bundle."""
        return self._json_api("appengine", "v1")

    def _json_api(self, service: str, version: str) -> "JsonApi":
        """Over the one observed ``json`` session, so a sweep counts these calls like the others."""
        base = f"{self.settings.localcloud_url}/{service}" if self.settings.localcloud_url is not None \
            else f"https://{service}.googleapis.com"
        return JsonApi(self.json, base, version)

    # -- Pub/Sub and Logging

    @cached_property
    def publisher(self) -> "pubsub_v1.PublisherClient":
        # PUBSUB_EMULATOR_HOST is honoured by the library (insecure channel, anonymous credentials).
        # LOCALCLOUD_URL is not used: localcloud does not serve Pub/Sub, the official emulator does.
        from google.cloud import pubsub_v1

        with self._lock:
            return pubsub_v1.PublisherClient()

    @cached_property
    def subscriber(self) -> "pubsub_v1.SubscriberClient":
        # ``egress-guard dead-letters`` reads the dead-letter inbox with it; the functions never do.
        from google.cloud import pubsub_v1

        with self._lock:
            return pubsub_v1.SubscriberClient()

    # -- What doctor reads: the deployment itself

    @cached_property
    def topic_iam(self) -> Any:
        """Topics' IAM policies. The GAPIC client, not pubsub_v1's wrapper, which would send it to
        ``PUBSUB_EMULATOR_HOST``: the emulator answers IAM calls with 501, localcloud keeps them."""
        from google.pubsub_v1.services.publisher import PublisherClient
        from google.pubsub_v1.services.publisher.transports.rest import PublisherRestTransport

        # A built transport: given the name "rest", the client would still open a gRPC channel to
        # PUBSUB_EMULATOR_HOST and hand it to the REST transport, which refuses it.
        options = self._options("/pubsub") or {}
        with self._lock:
            transport = PublisherRestTransport(host=options.get("api_endpoint", "pubsub.googleapis.com"),
                                               credentials=self._credentials, client_info=self._client_info())
            return PublisherClient(transport=transport)

    @cached_property
    def functions(self) -> Any:
        """Cloud Functions v2 (``cloudfunctions.projects.locations.functions.get``, ...) through the
        discovery client: google-cloud-functions would shadow the Functions Framework's
        ``google.cloud.functions`` module (and lacks the Direct VPC fields)."""
        return self._discovery("cloudfunctions", "v2")

    def _resource_manager(self, class_name: str) -> Any:
        from google.cloud import resourcemanager_v3

        with self._lock:
            return getattr(resourcemanager_v3, class_name)(credentials=self._credentials, transport="rest",
                                                           client_options=self._options("/cloudresourcemanager"),
                                                           client_info=self._client_info())

    @cached_property
    def projects(self) -> Any:
        return self._resource_manager("ProjectsClient")

    @cached_property
    def folders(self) -> Any:
        return self._resource_manager("FoldersClient")

    @cached_property
    def organizations(self) -> Any:
        return self._resource_manager("OrganizationsClient")

    @cached_property
    def assets(self) -> Any:
        """Cloud Asset Inventory v1: what ``sweep --organization`` discovers every project's resources
        with. REST, like every other client here: the library defaults to gRPC, which localcloud
        does not serve."""
        from google.cloud import asset_v1

        with self._lock:
            client = asset_v1.AssetServiceClient(credentials=self._credentials, transport="rest",
                                                 client_options=self._options("/cloudasset"),
                                                 client_info=self._client_info())
        return self._observed("assets", client)

    @cached_property
    def secrets(self) -> Any:
        from google.cloud import secretmanager_v1

        with self._lock:
            return secretmanager_v1.SecretManagerServiceClient(credentials=self._credentials, transport="rest",
                                                               client_options=self._options("/secretmanager"),
                                                               client_info=self._client_info())

    @cached_property
    def iam(self) -> Any:
        """The IAM v1 API (``iam.projects.roles.get``, ...) through the discovery client:
        google-cloud-iam's IAMClient has no REST transport."""
        return self._discovery("iam", "v1")

    def _discovery(self, api: str, version: str) -> Any:
        """A google-api-python-client service from its static discovery document; it raises
        ``googleapiclient.errors.HttpError``."""
        from googleapiclient import discovery

        options = ({"api_endpoint": f"{self.settings.localcloud_url}/{api}/"} if self.settings.localcloud_url
                   else None)
        credentials = self._credentials
        if credentials is None:
            import google.auth

            credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        with self._lock:
            return discovery.build(api, version, credentials=credentials, client_options=options,
                                   static_discovery=True, cache_discovery=False)

    @cached_property
    def logging(self) -> "cloud_logging.Client":
        from google.cloud import logging as cloud_logging

        if self.settings.localcloud_url is not None and not self.settings.project:
            # Anonymous credentials carry no project, and the client needs one.
            raise ConfigError("the logging client needs a project with LOCALCLOUD_URL: set GOOGLE_CLOUD_PROJECT "
                              "or EGRESS_GUARD_PROJECT")
        with self._lock:
            return cloud_logging.Client(
                project=self.settings.project or None, credentials=self._credentials, _use_grpc=False,
                client_options=self._options("/logging"))


class JsonApi:
    """A one-platform API as JSON over an authorized session, with the client libraries' call shape
    (keyword arguments, ``retry=`` and ``timeout=``, google-api-core exceptions), so ``api`` sorts
    its failures like any other client's."""

    def __init__(self, session: Any, base_url: str, version: str = "v2") -> None:
        self.session = session
        self.base_url = f"{base_url.rstrip('/')}/{version}"

    def _get(self, path: str, params: dict[str, str] | None, retry: Any, timeout: float | None) -> dict[str, Any]:
        from google.api_core import exceptions

        def once() -> dict[str, Any]:
            response = self.session.get(f"{self.base_url}/{path}", params=params, timeout=timeout,
                                        headers={"User-Agent": USER_AGENT})
            if response.status_code >= 400:
                raise exceptions.from_http_response(response)
            return response.json()

        return retry(once)() if retry is not None else once()

    def get(self, *, name: str, retry: Any = None, timeout: float | None = None) -> dict[str, Any]:
        return self._get(name, None, retry, timeout)

    def list(self, *, parent: str, collection: str, retry: Any = None, timeout: float | None = None,
             on_page: Any = None) -> list[dict[str, Any]]:
        """Every item of ``parent/collection``, all pages (``on_page()`` is called once per page read)."""
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            page = self._get(f"{parent}/{collection}", {"pageToken": token} if token else None, retry, timeout)
            if on_page is not None:
                on_page()
            items.extend(page.get(collection) or ())
            token = page.get("nextPageToken") or ""
            if not token:
                return items


def LocalPrincipalCredentials(email: str) -> Any:
    """Credentials that tell localcloud who is calling (``Authorization: Bearer localcloud:EMAIL``).

    Google learns a caller's identity from its token; localcloud learns it from this one, so the
    audit entries of a function's writes carry the function's service account and the loop guard
    can be tested as it works in Google Cloud. Built lazily so google.auth loads only when used.
    """
    from google.auth import credentials as ga_credentials

    class _Local(ga_credentials.Credentials):
        def __init__(self) -> None:
            super().__init__()
            self.token = f"localcloud:{email}"
            self.expiry = None

        def refresh(self, request: Any) -> None:  # nothing to refresh: the token never expires
            self.token = f"localcloud:{email}"

        @property
        def valid(self) -> bool:
            return True

    return _Local()
