"""fleetops tasks: `invoke --list` shows them all. The code lives in fleetops/cli/
(``fleetops.cli.collection.builtin``, which a project's own tasks.py can use too)."""

from fleetops.cli.collection import builtin

ns = builtin()  # also: option errors exit 5 with the task's usage; sane --help; quiet | head
