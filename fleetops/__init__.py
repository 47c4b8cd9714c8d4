"""fleetops control side: inventory, SSH runner, shipping, reports and tasks."""

__version__ = "0.1.0"
