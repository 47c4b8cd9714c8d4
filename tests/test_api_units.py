"""The public API without a lab: exports, lazy imports, option checks, fleet_task shape,
exception wording."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import fleetops
from fleetops.api.fleet import describe, run_options
from fleetops.errors import OptionError


def test_all_is_explicit_and_resolves():
    assert sorted(fleetops.__all__) == sorted(
        ["Fleet", "FleetResult", "FleetopsError", "HostResult", "ProgramFailed",
         "ProgramResult", "SudoFailed", "fleet_task", "load_inventory"])
    for name in fleetops.__all__:
        assert getattr(fleetops, name) is not None
    assert issubclass(fleetops.SudoFailed, fleetops.FleetopsError)
    assert issubclass(fleetops.ProgramFailed, fleetops.FleetopsError)
    with pytest.raises(AttributeError):
        fleetops.NoSuchThing  # noqa: B018


def test_import_fleetops_and_builtin_tasks_do_not_import_fabric():
    code = ("import sys, fleetops, fleetops.cli.collection as c; c.builtin(); "
            "print('fabric' in sys.modules, 'paramiko' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


@pytest.mark.parametrize("options, message", [
    ({"frks": 2}, "unknown Fleet option 'frks'"),
    ({"forks": 0}, "forks must be an integer >= 1"),
    ({"forks": True}, "forks must be an integer >= 1"),
    ({"timeout": -1}, "connect_timeout must be a number of seconds > 0"),
    ({"command_timeout": float("nan")}, "command_timeout must be"),
    ({"deadline": "5"}, "host_deadline must be"),
    ({"max_output": 0}, "max_output must be an integer >= 1"),
])
def test_bad_options_are_option_errors(options, message):
    with pytest.raises(OptionError, match=message):
        run_options(options)


def test_options_aliases_and_defaults():
    options = run_options({"timeout": 3, "deadline": 20, "forks": 5, "become": True})
    assert (options.connect_timeout, options.host_deadline, options.forks) == (3, 20, 5)
    assert options.command_timeout == 300.0 and options.become is True
    assert run_options({"command_timeout": None}).command_timeout is None


def test_describe_names_the_exception():
    from invoke.exceptions import CommandTimedOut, UnexpectedExit
    from invoke.runners import Result

    failed = Result(stdout="", stderr="first\nlast words\n", exited=4, command="make all")
    assert describe(UnexpectedExit(failed)) == \
        "UnexpectedExit: 'make all' exited with rc=4: last words"
    slow = Result(stdout="", stderr="", exited=-1, command="sleep 9")
    assert describe(CommandTimedOut(slow, 2)) == "CommandTimedOut: 'sleep 9' timed out after 2s"
    assert describe(KeyError("x")) == "KeyError: 'x'"
    assert describe(RuntimeError("two\nlines")) == "RuntimeError: two lines"


def test_fleet_task_signature_and_refusals():
    def deploy(c, version, restart=False):
        """Deploy."""

    made = fleetops.fleet_task(deploy)
    params = list(inspect.signature(made.body).parameters)
    assert params[:3] == ["c", "version", "restart"]
    options = [arg.name for arg in made.get_arguments()]
    assert options[:2] == ["version", "restart"]
    assert {"inventory", "pattern", "limit", "forks", "json", "accept_new", "become",
            "retry_file", "deadline", "command_timeout"} <= set(options)
    assert made.positional == ["version"] and made.fleet_function is deploy

    def clash(c, limit):
        pass

    with pytest.raises(TypeError, match="'limit' is a fleet option"):
        fleetops.fleet_task(clash)
    with pytest.raises(TypeError, match="takes the connection first"):
        fleetops.fleet_task(lambda: None)
    named = fleetops.fleet_task(name="ship", help={"version": "v"})(deploy)
    assert named.name == "ship" and named.help["version"] == "v"
