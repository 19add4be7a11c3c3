"""What gcloud needs, besides endpoint overrides, to use localcloud for every command: a credential
it accepts that never reaches Google, and trust in localcloud's gRPC gateway.

Most gcloud commands would run with ``auth/disable_credentials``; ``gcloud beta run worker-pools``
(gcloud 528) does not: it builds a GAPIC client whose credentials come from
``gapic_util.GetGapicCredentials``, and with credentials disabled that raises ``Unable to load
credentials``. So gcloud runs with credentials enabled and ``auth/access_token_file`` naming a file
in its own configuration directory (the stack's or the tests', never the user's): gcloud sends that
token as it is and never refreshes it (an access-token credential has no refresh token), and every
endpoint it is sent to is localcloud. localcloud takes a token that does not name a principal
(``Bearer localcloud:EMAIL``) as its default user, as before. The GAPIC client's gRPC is TLS: the CA
of localcloud's gateway (``GET /_localcloud/tls``) is written beside the token and named by
``core/custom_ca_certs_file``, which gcloud only uses for HTTPS and gRPC (every other endpoint here
is plain HTTP).
"""

from __future__ import annotations

from pathlib import Path

import requests

ACCESS_TOKEN = "localcloud-gcloud-token"  # names no principal: localcloud's default user
TOKEN_FILE = "localcloud-access-token"
CA_FILE = "localcloud-ca.pem"


def gcloud_credentials(config_dir: str | Path, localcloud_url: str) -> dict[str, str]:
    """Write the token and the gateway's CA into ``config_dir``; the gcloud properties naming them."""
    directory = Path(config_dir)
    directory.mkdir(parents=True, exist_ok=True)
    token, ca = directory / TOKEN_FILE, directory / CA_FILE
    token.write_text(ACCESS_TOKEN + "\n")
    response = requests.get(f"{localcloud_url}/_localcloud/tls", timeout=30)
    response.raise_for_status()
    ca.write_bytes(response.content)
    return {"CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "false", "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(token),
            "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE": str(ca)}
