"""The environment of the local processes fleetops starts (a ProxyCommand, the commands
of an ``ansible_connection=local`` host): this process's, minus the secrets fleetops
reads from it. Without this, ``invoke run 'env'`` on a local host printed
``FLEETOPS_BECOME_PASSWORD=...`` into the output, ``--json`` and any log of it.
"""

from __future__ import annotations

import os

SECRET_ENV = frozenset({"FLEETOPS_BECOME_PASSWORD", "FLEETOPS_PASSWORD",
                        "FLEETOPS_KEY_PASSPHRASE", "FLEETOPS_SMTP_PASSWORD"})


def child_env() -> dict[str, str]:
    """``os.environ`` without :data:`SECRET_ENV` (a new dict; the process keeps its own)."""
    return {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
