"""fleetops control side: inventory, SSH runner, shipping, reports and tasks.

The public API (docs/api.md) is what ``__all__`` names; it is imported on first use,
so ``import fleetops`` (and every built-in task) pays nothing for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fleetops.errors import FleetopsError

__version__ = "0.1.0"

__all__ = [
    "Fleet",
    "FleetResult",
    "FleetopsError",
    "HostResult",
    "ProgramFailed",
    "ProgramResult",
    "SudoFailed",
    "fleet_task",
    "load_inventory",
]

_LAZY = {
    "Fleet": "fleetops.api.fleet",
    "FleetResult": "fleetops.api.fleet",
    "HostResult": "fleetops.results",
    "ProgramFailed": "fleetops.api.fabric_conn",
    "ProgramResult": "fleetops.api.fabric_conn",
    "SudoFailed": "fleetops.api.fabric_conn",
    "fleet_task": "fleetops.cli.usertask",
    "load_inventory": "fleetops.inventory.load",
}

if TYPE_CHECKING:
    from fleetops.api.fabric_conn import ProgramFailed, ProgramResult, SudoFailed
    from fleetops.api.fleet import Fleet, FleetResult
    from fleetops.cli.usertask import fleet_task
    from fleetops.inventory.load import load_inventory
    from fleetops.results import HostResult


def __getattr__(name: str) -> Any:
    """PEP 562: the public names are imported when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fleetops' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
