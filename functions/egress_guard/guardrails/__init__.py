"""The guardrails, by function name. Each module has a pure planner, an executor, and ``GUARDRAIL``
(what ``runner.handle`` runs). Importing them loads no google-cloud client library."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from .connector_firewalls import GUARDRAIL as REPLACE_CONNECTOR_FIREWALLS
from .ensure_nat import GUARDRAIL as ENSURE_NAT

if TYPE_CHECKING:
    from ..runner import Guardrail

GUARDRAILS: Mapping[str, "Guardrail"] = MappingProxyType({
    ENSURE_NAT.name: ENSURE_NAT,
    REPLACE_CONNECTOR_FIREWALLS.name: REPLACE_CONNECTOR_FIREWALLS,
})
