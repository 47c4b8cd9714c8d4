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
    "Fleet": "fleetops.api",
    "FleetResult": "fleetops.api",
    "HostResult": "fleetops.results",
    "ProgramFailed": "fleetops.fabric_conn",
    "ProgramResult": "fleetops.fabric_conn",
    "SudoFailed": "fleetops.fabric_conn",
    "fleet_task": "fleetops.usertask",
    "load_inventory": "fleetops.inventory",
}

if TYPE_CHECKING:
    from fleetops.api import Fleet, FleetResult
    from fleetops.fabric_conn import ProgramFailed, ProgramResult, SudoFailed
    from fleetops.inventory import load_inventory
    from fleetops.results import HostResult
    from fleetops.usertask import fleet_task


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
