"""Compute Engine v1: networks, subnetworks, firewalls, routers (Cloud NAT), addresses.

State and Google's rules only, no HTTP (``localcloud/routes/compute.py`` turns requests into calls
here). Resources are kept as the JSON Google returns, in ``world`` tables. A write is *planned*
at the call (checked against the current state, refused synchronously with Google's 400/404/409)
and *applied* when its operation completes (checked again there, as the state may have changed
meanwhile; a failure then ends the operation DONE with ``error``, as Google's network delete
does when a firewall still uses the network; reference/gcp-http-logs/NOTES.md §2).

Shapes follow the REAL recordings in reference/gcp-http-logs (its NOTES.md §4): only the
fields Google returns, no empty lists, links in Google's https://www.googleapis.com/compute/v1/
form whatever form the request used. Where Google's behaviour is not documented or recorded the
choice is one constant with a comment saying so (UNCONFIRMED).

One module per resource kind (``networks``, ``subnetworks``, ``firewalls``, ``routers``,
``addresses``, ``operations``), each a mixin over ``base.ComputeBase``; ``common`` holds the name
rules, tables and field readers they share, ``refs`` the resource references, ``listing`` the
list parameters and ``list_filter`` the filter language.

Used by other backends (VPC Access):
``network``, ``subnetwork``, ``subnetworks_of_network``, ``register_hidden_subnet``,
``unregister_hidden_subnet``, ``firewall_insert_internal``, ``firewall_delete_internal``.
"""

from __future__ import annotations

from localcloud.backends.compute.addresses import Addresses
from localcloud.backends.compute.base import Mutation
from localcloud.backends.compute.common import KNOWN_REGIONS, merge_patch
from localcloud.backends.compute.firewalls import Firewalls
from localcloud.backends.compute.list_filter import compile_filter
from localcloud.backends.compute.listing import ListQuery
from localcloud.backends.compute.networks import AUTO_MODE_SUBNET_RANGES, Networks
from localcloud.backends.compute.operations import OperationViews
from localcloud.backends.compute.refs import parse_network_ref
from localcloud.backends.compute.routers import Routers
from localcloud.backends.compute.subnetworks import Subnetworks

__all__ = ["AUTO_MODE_SUBNET_RANGES", "KNOWN_REGIONS", "ComputeBackend", "ListQuery", "Mutation", "compile_filter",
           "merge_patch", "parse_network_ref"]


class ComputeBackend(Networks, Subnetworks, Firewalls, Routers, Addresses, OperationViews):
    """All Compute state of the world. Registered as ``world.backends["compute"]``."""
