"""Compute's shared vocabulary: name rules, regions, the world tables, Google's error wordings and
the small field readers every resource kind uses.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import ipaddress
import json
import re
import secrets
from typing import Any, Mapping

from localcloud.errors import ApiError, invalid


# ---- Google's name rules ------------------------------------------------------------------------
NAME_REGEX_TEXT = "(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)"  # as Google quotes it in its 400 message
_NAME = re.compile(NAME_REGEX_TEXT)
# Path parameters accept a name or a numeric id (compute.v1.json parameter patterns).
_NAME_OR_ID_TEXT = "[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?|[1-9][0-9]{0,19}"
_NAME_OR_ID = re.compile(_NAME_OR_ID_TEXT)
_REGION_TEXT = "[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?"
_REGION = re.compile(_REGION_TEXT)
_PROJECT_TEXT = ("(?:(?:[-a-z0-9]{1,63}\\.)*(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?):)?"
                 "(?:[0-9]{1,19}|(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?))")
_PROJECT = re.compile(_PROJECT_TEXT)
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")

# Google's public regions (2025). A region outside this list is refused as Google does
# ("Unknown region."); add one here when a test needs it.
KNOWN_REGIONS: frozenset[str] = frozenset({
    "africa-south1", "asia-east1", "asia-east2", "asia-northeast1", "asia-northeast2", "asia-northeast3",
    "asia-south1", "asia-south2", "asia-southeast1", "asia-southeast2", "australia-southeast1",
    "australia-southeast2", "europe-central2", "europe-north1", "europe-north2", "europe-southwest1",
    "europe-west1", "europe-west10", "europe-west12", "europe-west2", "europe-west3", "europe-west4",
    "europe-west6", "europe-west8", "europe-west9", "me-central1", "me-central2", "me-west1",
    "northamerica-northeast1", "northamerica-northeast2", "northamerica-south1", "southamerica-east1",
    "southamerica-west1", "us-central1", "us-east1", "us-east4", "us-east5", "us-south1", "us-west1",
    "us-west2", "us-west3", "us-west4",
})
EMPTY_LABEL_FINGERPRINT = "42WmSpB8rSM="  # the labelFingerprint Google shows for an empty label set

# UNCONFIRMED wordings (no recording or public trace found); each is one sentence that says what to fix.
MSG_ALL_SUBNETWORKS_NEEDS_SOLE_NAT = (
    "Can not create a Nat with option {option} since other Nats exist for network '{network}' in region "
    "'{region}': a Nat covering all subnetworks must be the only Nat of its network and region.")
MSG_BAD_FINGERPRINT = "Supplied fingerprint does not match current fingerprint."
MSG_BAD_PAGE_TOKEN = "Invalid page token."

# Google's own words, from public error traces of real API answers (terraform-provider-google and
# terraform-google-modules issues, google/osv.dev PR 5629, forseti-security issue 203).
MSG_NAT_ALL_EXISTS = "Can not create new Nats since a Nat with option {option} exists."
MSG_NAT_RANGE_TAKEN = ("Can not specify {wanted} for the Subnetwork since it is already configured for Nat "
                       "with the option {existing}.")
MSG_NAT_SUBNET_ALL_TAKEN = ("The subnetwork is already configured with ALL_IP_RANGES for Nat which conflicts "
                            "with the specified IpRangeToNatOption options in this Nat.")
MSG_LABELS_FINGERPRINT = "Labels fingerprint either invalid or resource labels have changed"

# ---- tables -------------------------------------------------------------------------------------
NETWORKS = "compute.networks"  # (project, name)
SUBNETWORKS = "compute.subnetworks"  # (project, region, name)
HIDDEN_SUBNETS = "compute.hidden_subnetworks"  # (project, region, name): connectors' ranges, not listed
AUTO_SUBNETS = "compute.auto_subnetworks"  # (project, region, name) -> True: removed with their network
FIREWALLS = "compute.firewalls"  # (project, name)
ROUTERS = "compute.routers"  # (project, region, name)
ADDRESSES = "compute.addresses"  # (project, region, name)
DELETED_OPERATIONS = "compute.deleted_operations"  # operation path -> True (operations.delete)

_OUTPUT_ONLY_COMMON = frozenset({"kind", "id", "creationTimestamp", "selfLink", "selfLinkWithId"})


# ---- errors in Google's words -------------------------------------------------------------------
def _field_error(name: str, value: Any, why: str) -> ApiError:
    return invalid(f"Invalid value for field '{name}': '{_text(value)}'. {why}")


def _required(name: str) -> ApiError:
    return ApiError(400, f"Required field '{name}' not specified", reason="required")


def _bad_parameter(value: str, pattern: str) -> ApiError:
    return ApiError(400, f"Invalid value '{value}'. Values must match the following regular expression: "
                         f"'{pattern}'", reason="invalidParameter")


def _in_use(kind: str, path: str, user_path: str) -> ApiError:
    return ApiError(400, f"The {kind} resource '{path}' is already being used by '{user_path}'",
                    reason="resourceInUseByAnotherResource")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return "" if value is None else str(value)


# ---- small helpers ------------------------------------------------------------------------------
def _fingerprint() -> str:
    """An opaque fingerprint as Google writes one (8 bytes, base64: 12 characters)."""
    return base64.b64encode(secrets.token_bytes(8)).decode()


def _labels_fingerprint(labels: Mapping[str, str]) -> str:
    if not labels:
        return EMPTY_LABEL_FINGERPRINT
    digest = hashlib.sha256(json.dumps(dict(sorted(labels.items()))).encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch, as Compute's PATCH uses: objects merge, ``null`` removes,
    arrays (and every other value) replace wholesale."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _object(body: Any, name: str = "resource") -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise invalid(f"Invalid JSON payload received. '{name}' must be a JSON object.")
    return body


def _present(body: Mapping[str, Any], key: str) -> bool:
    return body.get(key) is not None


def _str_list(body: Mapping[str, Any], key: str, field_name: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _field_error(field_name, value, "Must be a list of strings.")
    return list(value)


def _bool(body: Mapping[str, Any], key: str, field_name: str, default: bool | None = None) -> bool | None:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _field_error(field_name, value, "Must be a boolean.")
    return value


def _int(body: Mapping[str, Any], key: str, field_name: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        raise _field_error(field_name, value, "Must be an integer.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _field_error(field_name, value, "Must be an integer.") from None


def _check_name(value: Any, field_name: str = "resource.name") -> str:
    if value is None or value == "":
        raise _required(field_name)
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise _field_error(field_name, value, f"Must be a match of regex '{NAME_REGEX_TEXT}'")
    return value


def _parse_cidr(value: Any, field_name: str, *, v4_only: bool = False) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(value, str):
        raise _field_error(field_name, value, "Must be a CIDR range.")
    try:
        net = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise _field_error(field_name, value, "Must be a valid CIDR range.") from None
    if v4_only and net.version != 4:
        raise _field_error(field_name, value, "Must be an IPv4 CIDR range.")
    return net


def _strip(body: dict[str, Any]) -> dict[str, Any]:
    """Google returns no null and no empty list (proto3 JSON omits them)."""
    return {k: v for k, v in body.items() if v is not None and v != []}
