"""What a deployment made by ``infra/`` looks like: the names, identities and filter doctor expects.

Written once here for the product (doctor cannot read Terraform at a user's site) and checked
against ``infra/`` by tests/infra/test_doctor_expected.py, so the two cannot drift: the sink filter
rendered here equals the one ``localcloud/infra_sink.py`` evaluates from the Terraform, and the
function table equals ``local.functions`` of ``infra/examples/single-project/functions.tf``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..events import TRIGGER_METHODS

NAME_PREFIX = "egress-guard"  # var.name_prefix's default
ACTIVITY_LOG_CLAUSE = 'logName:"cloudaudit.googleapis.com%2Factivity"'
DEAD_LETTER_MAX_ATTEMPTS = 10  # var.dead_letter_max_delivery_attempts' default


@dataclass(frozen=True)
class FunctionSpec:
    key: str  # the entry point and functions/<key>
    service_account_id: str
    trigger: str  # "audit" or "findings": the topic that pushes to it

    def name(self, prefix: str = NAME_PREFIX) -> str:
        """The deployed function's name (module "functions": ``{prefix}-{key with hyphens}``)."""
        return f"{prefix}-{self.key.replace('_', '-')}"

    def role_id(self, prefix: str = NAME_PREFIX) -> str:
        """Its custom role's id (serviceaccount.tf: the name with underscores)."""
        return self.name(prefix).replace("-", "_")

    def service_account(self, project: str) -> str:
        return f"{self.service_account_id}@{project}.iam.gserviceaccount.com"


FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("ensure_nat", "egress-guard-nat", "audit"),
    FunctionSpec("replace_connector_firewalls", "egress-guard-firewalls", "audit"),
    FunctionSpec("notify_slack", "egress-guard-slack", "findings"),
)


@dataclass(frozen=True)
class Names:
    """The deployment's resource names for one name prefix (infra's modules)."""

    prefix: str = NAME_PREFIX

    @property
    def sink(self) -> str:
        return f"{self.prefix}-audit"

    @property
    def audit_topic(self) -> str:
        return f"{self.prefix}-audit"

    @property
    def findings_topic(self) -> str:
        return f"{self.prefix}-findings"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.prefix}-dead-letter"

    @property
    def dead_letter_subscription(self) -> str:
        return f"{self.prefix}-dead-letter-inbox"

    @property
    def slack_secret(self) -> str:
        return f"{self.prefix}-slack-webhook"

    def trigger_topic(self, function: FunctionSpec) -> str:
        return self.audit_topic if function.trigger == "audit" else self.findings_topic


def self_principals(project: str) -> list[str]:
    """egress-guard's own service accounts, sorted by function (main.tf ``local.self_principals``)."""
    return [f.service_account(project) for f in sorted(FUNCTIONS, key=lambda f: f.key)]


def sink_filter(methods: Sequence[str] = TRIGGER_METHODS, excluded_principals: Iterable[str] = ()) -> str:
    """The sink filter, built as infra/modules/log-routing/main.tf builds it (``local.filter``)."""
    clauses = [ACTIVITY_LOG_CLAUSE, "protoPayload.methodName=(" + " OR ".join(f'"{m}"' for m in methods) + ")"]
    excluded = [f'"{p}"' for p in excluded_principals]
    if excluded:
        clauses.append("NOT protoPayload.authenticationInfo.principalEmail=(" + " OR ".join(excluded) + ")")
    return " AND ".join(clauses)


# ---- the permission table -----------------------------------------------------------------------
# infra/permissions.yaml maps each API method to its IAM permissions; infra/function-methods.yaml
# lists the methods each function's code calls. A function's custom role must hold exactly the
# role-granted permissions of its methods (tests/infra/test_iam.py checks the Terraform the same way).
DEFAULT_INFRA = Path(__file__).resolve().parents[3] / "infra"


class PermissionTableMissing(Exception):
    """The permission table is not where it was looked for."""


def role_permissions(infra_dir: Path = DEFAULT_INFRA) -> dict[str, frozenset[str]]:
    """Function key -> the permissions its custom role must hold (the role-granted ones)."""
    table_file, methods_file = infra_dir / "permissions.yaml", infra_dir / "function-methods.yaml"
    if not table_file.is_file() or not methods_file.is_file():
        raise PermissionTableMissing(f"no permission table in {infra_dir} (permissions.yaml, function-methods.yaml); "
                                     "pass --infra with the repository's infra/ directory")
    table = yaml.safe_load(table_file.read_text(encoding="utf-8"))["methods"]
    declared = yaml.safe_load(methods_file.read_text(encoding="utf-8"))["functions"]
    out: dict[str, frozenset[str]] = {}
    for function, methods in declared.items():
        unknown = sorted(set(methods or []) - set(table))
        if unknown:
            raise PermissionTableMissing(f"{methods_file}: methods of {function} missing from {table_file.name}: {unknown}")
        out[function] = frozenset(p for m in methods or [] if table[m].get("grant", "role") == "role"
                                  for p in table[m]["permissions"])
    return out
