"""A user's own tasks.py: the built-in fleetops tasks plus the example fleet tasks."""

import fleet_examples

from fleetops.cli.collection import builtin

ns = builtin()
ns.add_task(fleet_examples.deploy)
ns.add_task(fleet_examples.uptime)
ns.add_task(fleet_examples.disk_usage, name="disk-usage")
