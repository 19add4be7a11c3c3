"""The services localcloud emulates: their route modules, and the backends built once for them.

This registry is the one place that knows the list of services. The HTTP layer (``server.py``)
asks it for the API routes, the control API (``control.py``) for the services' own control
routes; route modules receive the built ``Services`` and never construct a backend, so no two of
these modules need to import each other.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

from localcloud.auditlog.sinks import Sinks
from localcloud.auditlog.writer import AuditLog
from localcloud.backends.appengine import AppEngineBackend
from localcloud.backends.cloudasset import CloudAssetBackend
from localcloud.backends.compute import ComputeBackend
from localcloud.backends.functions import FunctionsBackend
from localcloud.backends.iam import IamBackend
from localcloud.backends.resourcemanager import ResourceManagerBackend
from localcloud.backends.run import RunBackend
from localcloud.backends.secretmanager import SecretManagerBackend
from localcloud.backends.vpcaccess import VpcAccessBackend
from localcloud.faults import CallLog, Faults
from localcloud.operations import Operations
from localcloud.quotas import RateQuotas
from localcloud.routing import Route
from localcloud.world import World

# The services localcloud emulates, in the order their routes are tried; each is a module
# ``localcloud.routes.NAME`` with ``routes(services) -> list[Route]`` and, optionally,
# ``control_routes(services) -> list[Route]`` under /_localcloud/.
SERVICE_MODULES = ("compute", "vpcaccess", "run", "functions", "appengine", "platform", "logging", "iam",
                   "secretmanager", "cloudasset")


@dataclass
class LoggingState:
    """Cloud Logging: the audit writer (``world.audit``) and the sinks listening to it. Not a world
    backend: ``World.reset`` would reset the writer twice, and the sinks must survive a reset."""

    audit: AuditLog
    sinks: Sinks


@dataclass
class Services:
    """Everything the routes of every service share: the world, operations, faults, the call log
    and one backend per service (also registered in ``world.backends``, where backends find each
    other and ``World.reset`` resets them)."""

    world: World
    operations: Operations
    calls: CallLog
    faults: Faults
    compute: ComputeBackend
    vpcaccess: VpcAccessBackend
    run: RunBackend
    functions: FunctionsBackend
    appengine: AppEngineBackend
    logging: LoggingState
    iam: IamBackend
    secretmanager: SecretManagerBackend
    resourcemanager: ResourceManagerBackend
    cloudasset: CloudAssetBackend
    modules: tuple[ModuleType, ...] = field(default=(), repr=False)
    quotas: RateQuotas = field(default_factory=RateQuotas)  # Compute's rate quota, off unless switched on

    @classmethod
    def build(cls, world: World) -> "Services":
        operations = Operations(world)
        world.backends["operations"] = operations
        compute = world.backends["compute"] = ComputeBackend(world)
        vpcaccess = world.backends["vpcaccess"] = VpcAccessBackend(world, operations)
        run = world.backends["run"] = RunBackend(world, operations)
        functions = world.backends["functions"] = FunctionsBackend(world, operations)
        appengine = world.backends["appengine"] = AppEngineBackend(world, operations)
        iam = world.backends["iam"] = IamBackend(world)
        secretmanager = world.backends["secretmanager"] = SecretManagerBackend(world)
        resourcemanager = world.backends["resourcemanager"] = ResourceManagerBackend(world)
        cloudasset = world.backends["cloudasset"] = CloudAssetBackend(world, resourcemanager)
        audit = AuditLog(default_principal=lambda: world.config.default_principal)
        sinks = Sinks()
        audit.add_listener(sinks.offer)
        world.audit = audit
        modules = tuple(importlib.import_module(f"localcloud.routes.{name}") for name in SERVICE_MODULES)
        return cls(world, operations, CallLog(), Faults(), compute, vpcaccess, run, functions, appengine,
                   LoggingState(audit, sinks), iam, secretmanager, resourcemanager, cloudasset, modules)

    def api_routes(self) -> list[Route]:
        return [route for module in self.modules for route in module.routes(self)]

    def control_routes(self) -> list[Route]:
        out: list[Route] = []
        for module in self.modules:
            extra = getattr(module, "control_routes", None)
            if extra:
                out.extend(extra(self))
        return out
