"""Links and references: a network, subnetwork, address or router named by full URL, partial URL
or bare name (as the discovery document allows), parsed once into a ``Ref``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from localcloud.backends.compute.common import _NAME, _PROJECT, _REGION, _field_error, _required


# ---- links --------------------------------------------------------------------------------------
_LINK_HOST = re.compile(r"^(?:[a-z][a-z0-9+.-]*://[^/]+)?/*(?:compute/(?:v1|beta|alpha)/)?")


def _relative(link: str) -> str:
    """``https://www.googleapis.com/compute/v1/projects/...``, ``http://127.0.0.1:PORT/compute/v1/...``,
    ``/compute/v1/projects/...`` and ``projects/...`` all become ``projects/...``."""
    return _LINK_HOST.sub("", link.strip(), count=1)


_NETWORK_REF = re.compile(r"(?:projects/(?P<project>[^/]+)/)?(?:global/)?networks/(?P<name>[^/]+)")
_REGIONAL_REF = {
    kind: re.compile(rf"(?:projects/(?P<project>[^/]+)/)?(?:regions/(?P<region>[^/]+)/)?{kind}/(?P<name>[^/]+)")
    for kind in ("subnetworks", "addresses", "routers")
}
_REGION_REF = re.compile(r"(?:projects/[^/]+/)?(?:global/)?regions/(?P<region>[^/]+)")


@dataclass(frozen=True)
class Ref:
    project: str
    region: str | None
    name: str


def parse_network_ref(value: Any, project: str, field_name: str) -> Ref:
    """A network named by full URL, any partial URL, or bare name (as the discovery doc allows)."""
    return _parse_ref(value, _NETWORK_REF, project, None, field_name)


def parse_regional_ref(value: Any, kind: str, project: str, region: str, field_name: str) -> Ref:
    """A subnetwork/address/router named by full URL, partial URL, or bare name (in ``region``)."""
    return _parse_ref(value, _REGIONAL_REF[kind], project, region, field_name)


def _parse_ref(value: Any, pattern: re.Pattern[str], project: str, region: str | None, field_name: str) -> Ref:
    """``pattern`` matches the relative link; what it leaves out is the caller's project and region."""
    if not isinstance(value, str) or not value.strip():
        raise _required(field_name)
    rel = _relative(value)
    m = pattern.fullmatch(rel)
    if m:
        groups = m.groupdict()
        ref = Ref(groups["project"] or project, groups.get("region") or region, groups["name"])
    elif "/" not in rel:
        ref = Ref(project, region, rel)
    else:
        raise _field_error(field_name, value, "The URL is malformed.")
    _check_ref(ref, value, field_name)
    return ref


def _check_ref(ref: Ref, value: str, field_name: str) -> None:
    if not _PROJECT.fullmatch(ref.project) or not _NAME.fullmatch(ref.name) or (
            ref.region is not None and not _REGION.fullmatch(ref.region)):
        raise _field_error(field_name, value, "The URL is malformed.")


def _region_of(value: Any, field_name: str) -> str:
    """The region a body names (``regions/R``, a URL, ``projects/P/global/regions/R`` as Terraform
    sends (REAL), or a bare name)."""
    if not isinstance(value, str) or not value.strip():
        raise _field_error(field_name, value, "The URL is malformed.")
    rel = _relative(value)
    m = _REGION_REF.fullmatch(rel)
    name = m.group("region") if m else rel
    if "/" in name or not _REGION.fullmatch(name):
        raise _field_error(field_name, value, "The URL is malformed.")
    return name


def check_body_region(body: Any, region: str) -> None:
    """A regional insert may repeat its region in the body; Compute refuses one that differs
    from the request URL's."""
    if isinstance(body, dict) and body.get("region") is not None and _region_of(body["region"], "resource.region") != region:
        raise _field_error("resource.region", body["region"],
                           f"The region must match the region of the request URL ('{region}').")
