"""gRPC for the clients that speak nothing else: gcloud's GAPIC path (``gcloud beta run worker-pools``).

Most gcloud commands call REST (apitools) and reach localcloud through the API endpoint overrides.
``gcloud beta run worker-pools deploy`` (gcloud 528) instead builds the generated GAPIC client of
Cloud Run v2 (``apis.GetGapicClientInstance('run', 'v2')``), which always speaks gRPC over TLS to
``REGION-<override host>`` and goes through the gcloud HTTP proxy with ``CONNECT``. So localcloud
answers that too, without a second model:

- ``server.py``'s proxy handler answers ``CONNECT`` by tunnelling the bytes to this gateway;
- the gateway is a gRPC server (TLS, a certificate made at start for the regional host names gcloud
  derives, signed by a local CA that ``GET /_localcloud/tls`` hands out; the stack puts it where
  gcloud's ``core/custom_ca_certs_file`` points);
- each gRPC call is transcoded by Google's own rule for it, the ``google.api.http`` options the
  client library's REST transport carries (``path_template.transcode``, as that transport does), and
  answered in-process by the same ``LocalCloud`` app that serves REST: same routes, checks, audit
  entries and call log. Google's error envelope becomes the gRPC status of the same name.

Only the services listed in ``SERVICES`` are served; any other method is ``UNIMPLEMENTED``, loudly.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import threading
from concurrent import futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlencode

if TYPE_CHECKING:
    from localcloud.server import LocalCloud

log = logging.getLogger("localcloud.grpc")

# Regions whose REGION-HOST names the certificate covers (the regions localcloud serves), and the hosts
# gcloud's endpoint override may name.
_HOSTS = ("127.0.0.1", "localhost", "run.localcloud")
MAX_WORKERS = 8


@dataclass(frozen=True)
class Method:
    """One gRPC method: its protobuf request and response classes and its HTTP rule."""

    request: Any  # protobuf message class
    response: Any
    http_options: Callable[[], list[dict[str, str]]]
    prefix: str  # where localcloud serves the API ("/run")


def _services() -> dict[str, dict[str, Method]]:
    """gRPC service -> method -> Method, from the installed client library (imported when first needed)."""
    from google.cloud import run_v2
    from google.cloud.run_v2.services.worker_pools.transports.rest_base import _BaseWorkerPoolsRestTransport as Base
    from google.longrunning import operations_pb2

    def pb(message: Any) -> Any:
        return message.pb()

    return {
        "google.cloud.run.v2.WorkerPools": {
            "CreateWorkerPool": Method(pb(run_v2.CreateWorkerPoolRequest), operations_pb2.Operation,
                                       Base._BaseCreateWorkerPool._get_http_options, "/run"),
            "GetWorkerPool": Method(pb(run_v2.GetWorkerPoolRequest), pb(run_v2.WorkerPool),
                                    Base._BaseGetWorkerPool._get_http_options, "/run"),
            "ListWorkerPools": Method(pb(run_v2.ListWorkerPoolsRequest), pb(run_v2.ListWorkerPoolsResponse),
                                      Base._BaseListWorkerPools._get_http_options, "/run"),
            "UpdateWorkerPool": Method(pb(run_v2.UpdateWorkerPoolRequest), operations_pb2.Operation,
                                       Base._BaseUpdateWorkerPool._get_http_options, "/run"),
            "DeleteWorkerPool": Method(pb(run_v2.DeleteWorkerPoolRequest), operations_pb2.Operation,
                                       Base._BaseDeleteWorkerPool._get_http_options, "/run"),
        },
        # Cloud Run's operations, as the GAPIC client polls them on the same channel.
        "google.longrunning.Operations": {
            "GetOperation": Method(operations_pb2.GetOperationRequest, operations_pb2.Operation,
                                   Base._BaseGetOperation._get_http_options, "/run"),
            "ListOperations": Method(operations_pb2.ListOperationsRequest, operations_pb2.ListOperationsResponse,
                                     Base._BaseListOperations._get_http_options, "/run"),
            "WaitOperation": Method(operations_pb2.WaitOperationRequest, operations_pb2.Operation,
                                    Base._BaseWaitOperation._get_http_options, "/run"),
            "DeleteOperation": Method(operations_pb2.DeleteOperationRequest, _empty(),
                                      Base._BaseDeleteOperation._get_http_options, "/run"),
        },
    }


def _empty() -> Any:
    from google.protobuf import empty_pb2

    return empty_pb2.Empty


class GrpcGateway:
    """The gRPC server, started on first use (most runs never need it): ``port`` and ``ca_pem``."""

    def __init__(self, app: "LocalCloud", host: str = "127.0.0.1") -> None:
        self.app = app
        self.host = host
        self._lock = threading.Lock()
        self._server: Any = None
        self._port = 0
        self._ca_pem = b""

    @property
    def port(self) -> int:
        self._start()
        return self._port

    @property
    def ca_pem(self) -> bytes:
        self._start()
        return self._ca_pem

    def stop(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.stop(grace=None)
                self._server = None

    def _start(self) -> None:
        with self._lock:
            if self._server is not None:
                return
            import grpc

            ca_pem, cert_pem, key_pem = _certificates()
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="lc-grpc"))
            for service, methods in _services().items():
                server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {
                    name: grpc.unary_unary_rpc_method_handler(
                        self._handler(f"{service}.{name}", method), request_deserializer=method.request.FromString,
                        response_serializer=method.response.SerializeToString)
                    for name, method in methods.items()}),))
            self._port = server.add_secure_port(f"{self.host}:0", grpc.ssl_server_credentials([(key_pem, cert_pem)]))
            server.start()
            self._server, self._ca_pem = server, ca_pem
            log.info("localcloud gRPC gateway on %s:%d (TLS)", self.host, self._port)

    def _handler(self, full_name: str, method: Method) -> Callable[[Any, Any], Any]:
        def handle(request: Any, context: Any) -> Any:
            import grpc
            from google.api_core import path_template, rest_helpers
            from google.protobuf import json_format

            try:
                transcoded = path_template.transcode(method.http_options(), request)
            except ValueError as exc:  # the request does not fit the method's URL template
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{full_name}: {exc}")
            body = None
            if transcoded.get("body") is not None:
                body = json_format.MessageToJson(transcoded["body"], use_integers_for_enums=True)
            query = json.loads(json_format.MessageToJson(transcoded["query_params"], use_integers_for_enums=True))
            params = dict(rest_helpers.flatten_query_params(query, strict=True))
            params["$alt"] = "json;enum-encoding=int"  # as the REST transport asks: enums as numbers
            metadata = dict(context.invocation_metadata())
            status, answer = self.app.call_in_process(
                transcoded["method"].upper(), method.prefix + transcoded["uri"], urlencode(params), body,
                authorization=metadata.get("authorization", ""), user_agent=metadata.get("user-agent", ""))
            if status >= 400:
                error = (answer or {}).get("error") or {}
                code = getattr(grpc.StatusCode, str(error.get("status") or ""), None) or _code_for(status)
                context.abort(code, str(error.get("message") or f"HTTP {status}"))
            return json_format.ParseDict(answer or {}, method.response(), ignore_unknown_fields=False)

        return handle


def _code_for(http_status: int) -> Any:
    import grpc

    return {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
            403: grpc.StatusCode.PERMISSION_DENIED, 404: grpc.StatusCode.NOT_FOUND, 409: grpc.StatusCode.ABORTED,
            429: grpc.StatusCode.RESOURCE_EXHAUSTED, 503: grpc.StatusCode.UNAVAILABLE}.get(
        http_status, grpc.StatusCode.INTERNAL)


def _certificates() -> tuple[bytes, bytes, bytes]:
    """(CA certificate, server certificate, server key) in PEM: a CA made now, and a certificate it signs
    for REGION-HOST of every region and host gcloud may derive (valid one day; nothing is kept)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from localcloud.routes.vpcaccess import LOCATIONS

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localcloud test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in ("localhost", "run.localcloud")]
    names += [x509.DNSName(f"{region}-{host}") for region in LOCATIONS for host in _HOSTS]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localcloud")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (ca.public_bytes(pem), cert.public_bytes(pem),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
