"""Example user tasks: plain Fabric-style functions made fleet tasks (docs/api.md).

Import them from your own ``tasks.py`` (see ``examples/tasks.py``)::

    from invoke import Collection
    from fleetops.cli.collection import builtin
    import fleet_examples

    ns = builtin()                                  # every built-in fleetops task
    ns.add_task(fleet_examples.deploy)
    ns.add_task(fleet_examples.uptime)

Then: ``invoke deploy -i inventory/lab.ini 1.2.3 --restart``.
"""

from __future__ import annotations

import io
import shlex

from fleetops import fleet_task


@fleet_task(help={"version": "the version to install", "restart": "restart after install",
                  "dest": "where the release goes (default /srv/app)"})
def deploy(c, version, restart=False, dest="/srv/app"):
    """Install VERSION under DEST on every host (idempotent: changed only when new)."""
    current = c.run(f"cat {shlex.quote(dest)}/VERSION 2>/dev/null", warn=True, hide=True)
    if current.ok and current.stdout.strip() == version:
        return {"version": version, "changed": False}
    c.sudo(f"mkdir -p {shlex.quote(dest)}", hide=True)
    c.put(io.BytesIO(f"{version}\n".encode()), f"/tmp/fleetops-example-{version}")
    with c.cd(dest):
        c.sudo(f"install -m 0644 /tmp/fleetops-example-{shlex.quote(version)} VERSION",
               hide=True)
    if restart:
        c.run("true", hide=True)  # your service manager here
    c.changed = True
    return {"version": version, "changed": True}


@fleet_task
def uptime(c):
    """Seconds since boot of every host, from /proc/uptime."""
    return float(c.run("cat /proc/uptime", hide=True).stdout.split()[0])


@fleet_task(help={"warn": "warn level in percent (default 80)"})
def disk_usage(c, warn=80):
    """The shipped diskreport program through the handle: mounts over WARN %."""
    report = c.program("diskreport", f"--warn={warn}")
    return report.data["over"]
