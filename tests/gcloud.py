"""Run the real gcloud CLI against localcloud (tests and the demo use the same environment)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from urllib.parse import urlsplit

from localcloud.gcloud_config import gcloud_credentials

_CONFIG_DIR = tempfile.mkdtemp(prefix="eg-gcloud-config-")


_CREDENTIALS: dict[tuple[str, str], dict[str, str]] = {}  # (url, config dir) -> properties (written once)


def gcloud_env(url: str, project: str, config_dir: str | None = None) -> dict[str, str]:
    port = urlsplit(url).port
    directory = config_dir or _CONFIG_DIR
    if (url, directory) not in _CREDENTIALS:
        _CREDENTIALS[(url, directory)] = gcloud_credentials(directory, url)
    env = dict(os.environ)
    env.update({
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE": f"{url}/compute/v1/",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_VPCACCESS": f"{url}/vpcaccess/",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN": f"{url}/run/",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDFUNCTIONS": f"{url}/cloudfunctions/",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE": f"{url}/serviceusage/",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER": f"{url}/cloudresourcemanager/",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDBUILD": f"{url}/cloudbuild/",
        "CLOUDSDK_CORE_SHOULD_PROMPT_TO_ENABLE_API": "false",
        "CLOUDSDK_CONFIG": directory,
        "CLOUDSDK_CORE_PROJECT": project,
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        # gcloud run derives REGION-host from the override; localcloud answers as that proxy.
        "CLOUDSDK_PROXY_TYPE": "http",
        "CLOUDSDK_PROXY_ADDRESS": "127.0.0.1",
        "CLOUDSDK_PROXY_PORT": str(port),
        # A token that never reaches Google, and trust in localcloud's gRPC gateway (gcloud_config.py).
        **_CREDENTIALS[(url, directory)],
    })
    return env


def gcloud(url: str, project: str, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(["gcloud", *args], env=gcloud_env(url, project), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"gcloud {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def gcloud_json(url: str, project: str, *args: str):
    proc = gcloud(url, project, *args, "--format=json")
    return json.loads(proc.stdout or "null")
