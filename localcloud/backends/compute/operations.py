"""Compute operations as Compute shows them: the Operations registry holds every operation; this
names their paths and hides the ones ``operations.delete`` removed.
"""

from __future__ import annotations

from typing import Any

from localcloud.backends.compute.base import ComputeBase
from localcloud.backends.compute.common import DELETED_OPERATIONS
from localcloud.backends.compute.listing import ListQuery


class OperationViews(ComputeBase):
    def operation_scope(self, project: str, region: str | None) -> str:
        self._scope(project, region)
        return f"projects/{project}/regions/{region}" if region else f"projects/{project}/global"

    def operation_path(self, project: str, region: str | None, operation: str) -> str:
        self.check_resource_param(operation)
        return f"{self.operation_scope(project, region)}/operations/{operation}"

    def operation_visible(self, path: str) -> bool:
        return path not in self._table(DELETED_OPERATIONS)

    def forget_operation(self, path: str) -> None:
        self._table(DELETED_OPERATIONS)[path] = True

    def operation_list_body(self, project: str, region: str | None, bodies: list[dict[str, Any]],
                            query: ListQuery) -> dict[str, Any]:
        scope = f"projects/{project}/regions/{region}" if region else f"projects/{project}/global"
        return self._list_body("compute#operationList", f"{scope}/operations", bodies, query)
