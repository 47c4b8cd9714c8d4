"""The actions every daemon program shares: start, stop, status, logs and run.

argv shape (the program's own options always come after ``--``)::

    PROGRAM start  [--name N] [--state-dir D] [--log-dir L] [--timeout S] -- PROGRAM-ARGS
    PROGRAM stop   [--name N] [--state-dir D] [--timeout S]
    PROGRAM status [--name N] [--state-dir D]
    PROGRAM logs   [--name N] [--state-dir D] [--lines N]
    PROGRAM run    [--foreground] [--name N] [--state-dir D] -- PROGRAM-ARGS

``start`` daemonizes (``changed`` the first time, ``ok`` when that instance already
runs); ``run --foreground`` is the same service without forking (systemd,
supervisord); plain ``run`` is one bounded pass whose results are the JSON document.
"""
import argparse
import os
import re
import signal
import time

from ops import _daemon
from ops._argspec import Arg, Command, add_to_parser, converter
from ops._contract import Outcome, Program, ProgramError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_LINES = 10000
ACTIONS = (
    ("start", "start a named instance as a daemon (idempotent)"),
    ("stop", "stop a named instance: SIGTERM, then wait for it to exit"),
    ("status", "report running, pid, uptime_s and last_event of a named instance"),
    ("logs", "the last lines of an instance's stdout and stderr logs"),
    ("run", "run in this process: --foreground for a supervisor, else one bounded pass"),
)


class _ArgParser(argparse.ArgumentParser):
    def error(self, message):
        raise ProgramError("bad program arguments: %s" % message, rc=2)


class _BadValue(argparse.ArgumentTypeError, ValueError):
    """A bad option value: argparse prints this message as is (a ValueError for the
    control side's ``fleetops.ship.programs.check_option``)."""


def _name(value):
    if not NAME.match(value):
        raise _BadValue(
            "%r is not an instance name (letters, digits, '.', '_', '-'; at most 64)" % value)
    return value


def _positive(value):
    number = float(value)
    if not number > 0:
        raise _BadValue("must be > 0, not %r" % value)
    return number


def _lines(value):
    number = int(value)
    if not 1 <= number <= MAX_LINES:
        raise _BadValue("must be 1..%d, not %r" % (MAX_LINES, value))
    return number


def _abspath(value):
    return os.path.abspath(value)


NAME_TYPE = converter(_name, "str")
SECONDS = converter(_positive, "number")
LINES = converter(_lines, "int")
ABSPATH = converter(_abspath, "str")
PROGRAM_ARGS = Arg("program_args", default=(), repeat=True, metavar="-- PROGRAM-ARGS")


def commands(program, program_args):
    """The lifecycle sub-commands of daemon ``program`` (``ops._argspec.Command``); start
    and run end with the service's own options (``program_args``, after ``--``)."""
    common = (
        Arg("--name", NAME_TYPE, default="default", help="instance name (default: default)"),
        Arg("--state-dir", ABSPATH,
            help="pidfile/state directory (default /run/fleetops/%s-NAME as root, "
                 "else $XDG_RUNTIME_DIR/fleetops/%s-NAME or /tmp/fleetops-UID/%s-NAME)"
                 % (program, program, program)),
    )
    own = {
        "start": (Arg("--log-dir", ABSPATH,
                      help="where out.log and err.log go (default: the state directory)"),
                  Arg("--timeout", SECONDS, default=15.0,
                      help="seconds to wait for the daemon's start-up answer"),
                  PROGRAM_ARGS),
        "stop": (Arg("--timeout", SECONDS, default=10.0,
                     help="seconds to wait for the daemon to exit after SIGTERM"),),
        "status": (),
        "logs": (Arg("--lines", LINES, default=20, help="lines per log (default 20)"),),
        "run": (Arg("--foreground", "flag",
                    help="run the service until stopped, logging to stdout/stderr"),
                PROGRAM_ARGS),
    }

    def epilog():
        options = _program_parser(program, lambda p: add_to_parser(p, program_args))
        return "PROGRAM-ARGS (after --):\n" + options.format_help().split("\n\n", 1)[-1]

    return tuple(Command(action, help_text, common + own[action], description=help_text,
                         epilog=epilog if action in ("start", "run") else None)
                 for action, help_text in ACTIONS)


def _program_parser(program, add_program_arguments):
    parser = _ArgParser(prog="fleetops.pyz %s ACTION [...] --" % program, add_help=False)
    add_program_arguments(parser)
    return parser


def parse_program_args(program, add_program_arguments, argv):
    """The program's own options (after ``--``); ProgramError rc 2 when they are wrong."""
    argv = list(argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    return _program_parser(program, add_program_arguments).parse_args(argv)


def make_program(name, doc, program_args, make_service):
    """A contract Program whose first argument is the lifecycle action; ``program_args``
    (a tuple of ``ops._argspec.Arg``) are the service's own options, after ``--``."""

    def add_program_arguments(parser):
        add_to_parser(parser, program_args)

    def run(args):
        state_dir = args.state_dir or _daemon.default_state_dir(name, args.name)
        instance = _daemon.Instance(name, args.name, state_dir, getattr(args, "log_dir", None))
        if args.action == "stop":
            return stop(instance, args.timeout)
        if args.action == "status":
            return status(instance)
        if args.action == "logs":
            return logs(instance, args.lines)
        program_args = list(args.program_args)
        if program_args and program_args[0] == "--":
            program_args = program_args[1:]
        service = make_service(parse_program_args(name, add_program_arguments, program_args))
        info = {"program": name, "name": args.name, "args": program_args,
                "state_dir": state_dir, "logs": instance.logs()}
        if args.action == "start":
            return start(instance, service, info, args.timeout)
        return run_here(instance, service, info, args.foreground)

    program = Program(name, doc, (), run, commands=commands(name, program_args),
                      command_metavar="ACTION")
    program.program_args = tuple(program_args)
    return program


def _identity(instance):
    return {"name": instance.name, "state_dir": instance.state_dir}


def start(instance, service, info, timeout):
    answer = _daemon.spawn(instance, service, info, timeout)
    data = dict(_identity(instance), running=True, pid=answer.get("pid"), logs=instance.logs())
    if not answer.get("already"):
        return Outcome(True, data)
    state = _daemon.read_state(instance.state_file) or {}
    data.update(already_running=True, logs=state.get("logs") or data["logs"])
    if state.get("args") is not None and state.get("args") != info["args"]:
        data["warning"] = ("already running with other arguments %s: stop it first to change them"
                           % state.get("args"))
    return Outcome(False, data)


def stop(instance, timeout):
    running, pid = _daemon.probe(instance.pidfile)
    data = _identity(instance)
    if not running:
        return Outcome(False, dict(data, running=False, pid=None, stale_pid=pid))
    if pid is None:
        raise ProgramError("pidfile %s is locked but holds no pid" % instance.pidfile, data=data)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    except PermissionError:
        raise ProgramError("not allowed to signal pid %d" % pid, data=data) from None
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not _daemon.probe(instance.pidfile, wait_pid=0)[0]:
            waited = round(time.monotonic() - started, 3)
            return Outcome(True, dict(data, running=False, pid=pid, stopped_in_s=waited))
        time.sleep(0.02)
    raise ProgramError("pid %d still running %gs after SIGTERM" % (pid, timeout),
                       data=dict(data, running=True, pid=pid))


def status(instance):
    running, pid = _daemon.probe(instance.pidfile)
    state = _daemon.read_state(instance.state_file) or {}
    uptime = None
    if running and pid is not None and state.get("pid") == pid and state.get("started"):
        uptime = round(max(0.0, time.time() - float(state["started"])), 3)
    data = dict(_identity(instance), running=running, pid=pid if running else None,
                uptime_s=uptime, last_event=state.get("last_event"), mode=state.get("mode"),
                args=state.get("args"))
    if not running and pid is not None:
        data["stale_pid"] = pid
    return Outcome(False, data)


def tail(path, count, block=65536):
    """The last ``count`` lines of a file (read backwards in blocks); [] when missing."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return []
    with handle:
        handle.seek(0, os.SEEK_END)
        pos = handle.tell()
        data = b""
        while pos > 0 and data.count(b"\n") <= count:
            step = min(block, pos)
            pos -= step
            handle.seek(pos)
            data = handle.read(step) + data
    return [line.decode("utf-8", "replace") for line in data.splitlines()[-count:]]


def logs(instance, count):
    state = _daemon.read_state(instance.state_file) or {}
    data = dict(_identity(instance), lines=count)
    if state.get("mode") == "foreground":
        data.update(stdout=[], stderr=[], logs=None,
                    note="runs in the foreground: its supervisor keeps the logs")
        return Outcome(False, data)
    paths = state.get("logs") or instance.logs()
    data["logs"] = paths
    for stream in ("stdout", "stderr"):
        try:
            data[stream] = tail(paths[stream], count)
        except OSError as exc:
            raise ProgramError("cannot read %s: %s" % (paths[stream], exc.strerror),
                               data=data) from None
    return Outcome(False, data)


def run_here(instance, service, info, foreground):
    if foreground:
        info = dict(info, logs=None)
        return Outcome(False, _daemon.run_foreground(instance, service, info))
    service.prepare()
    changed, data = service.once(_daemon.Runtime(_daemon.ListSink()))
    return Outcome(changed, data)
