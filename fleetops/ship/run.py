"""Ship the ops zipapp to hosts and run one ops program per host under the JSON contract.

One SSH round trip per program run: the bootstrap (:mod:`fleetops.ship.loader`) finds
python3, whose loader checks the cache and answers on a line of its own (whatever shell
start-up files printed before it is dropped): ``READY_MARKER`` when the zipapp with
this content hash is cached on the host, ``REQUEST_MARKER`` when it is not; then the
zipapp is sent (only on a miss) and stored atomically in a 0700 cache directory.
Programs whose argument spec parses the same anywhere get their arguments checked here
and sent as one JSON document (in argv when small, else framed first on stdin: see
``ops._argspec`` and :func:`split_input`); the others get argv, ``shlex.quote``-d.
"""

from __future__ import annotations

import base64
import functools
import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fleetops.config.targets import target_for
from fleetops.core.runner import Fleet, RunOptions, Session
from fleetops.results import HostResult, RunResult, build_data, human_bytes, truncation
from fleetops.ship import data as _typed  # noqa: F401  (registers each program's data class)
from fleetops.ship import schemas
from fleetops.ship.handshake import Handshake
from fleetops.ship.loader import (  # noqa: F401  (also this module's names, for callers)
    CACHE_DIR,
    LAUNCH,
    PYTHONS,
    RC_CACHE_UNSAFE,
    RC_NO_PYTHON,
    RC_UPLOAD_FAILED,
    bootstrap_command,
)
from fleetops.ship.zipapp import Zipapp, build_zipapp
from ops._argspec import ARGS_FLAG
from ops._contract import ProgramError

ARGV_FRAME_LIMIT = 4000  # characters: one shell word, under BSD csh's 8 KiB
ArgsFor = Callable[[Any], Sequence[str]] | Sequence[str]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    """An integer of at most 64 digits (no result field needs more; Python's own limit
    would answer with a hint about its interpreter settings)."""
    if len(text.lstrip("-")) > 64:
        raise ValueError(f"number {text[:40]}... has {len(text)} digits")
    return int(text)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float,
                            parse_int=_bounded_int)


def parse_document(stdout: bytes) -> dict[str, Any]:
    """Exactly one JSON object with the contract keys, else ValueError with a short reason.

    Strict JSON: NaN, Infinity and numbers that overflow a float (``1e999``) are refused;
    so is nesting deeper than Python's recursion limit."""
    text = stdout.decode("utf-8", "surrogateescape").strip()
    if not text:
        raise ValueError("program printed nothing")
    try:
        doc = _DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        why = "" if isinstance(exc, json.JSONDecodeError | RecursionError) else str(exc)
        raise ValueError(f"program printed invalid output{f' ({why})' if why else ''}: "
                         f"{text[:200]!r}") from None
    if not isinstance(doc, dict) or not {"ok", "changed", "data", "error"} <= doc.keys():
        raise ValueError(f"program output is not a fleetops result: {text[:200]!r}")
    return doc


def _stderr_reason(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def classify(name: str, rc: int | None, stdout: bytes, stderr: bytes,
             program: str | None = None, discarded: dict[str, int] | None = None) -> HostResult:
    """Turn one program run into a HostResult (``data``: the program's typed
    :class:`~fleetops.results.ProgramData`, built once here from the checked document).

    The document is checked on arrival (:mod:`fleetops.ship.schemas`): a result that does
    not fit the contract or ``program``'s schema makes the host ``failed`` with the
    field named. Stdout cut at ``--max-output`` (``discarded``) is a failure too: the
    JSON document would be incomplete; a cut stderr is only noted (``truncated``)."""
    err = stderr.decode("utf-8", "surrogateescape")
    out = stdout.decode("utf-8", "surrogateescape")
    if discarded and discarded.get("stdout"):
        return truncation(HostResult(name, "failed", rc, out, err,
                                     reason="program output is over --max-output "
                                            f"({human_bytes(len(stdout))} kept)"), discarded)
    result = _judge(name, rc, stdout, out, err, program)
    return truncation(result, discarded) if discarded else result


def _judge(name: str, rc: int | None, stdout: bytes, out: str, err: str,
           program: str | None) -> HostResult:
    """The host's status from its exit code, stderr and checked JSON document."""
    if rc == RC_NO_PYTHON and not out.strip():
        reason = f"no usable python3 on the host: {_stderr_reason(err)}"
        return HostResult(name, "failed", rc, out, err, reason=reason)
    if (rc in (RC_UPLOAD_FAILED, RC_CACHE_UNSAFE) or "fleetops: cached zipapp" in err) \
            and not out.strip():
        return HostResult(name, "failed", rc, out, err, reason=_stderr_reason(err))
    try:
        doc = parse_document(stdout)
    except ValueError as exc:
        hint = f"{exc}; rc={rc}; stderr: {_stderr_reason(err)}"
        if "/.cache/fleetops/" in err and "cached zipapp" not in err:
            hint = (f"the cached copy of fleetops on this host is broken ({_stderr_reason(err)}); "
                    "remove ~/.cache/fleetops there and rerun")
        return HostResult(name, "failed", rc, out, err, reason=hint)
    try:
        schemas.check_contract(doc)
    except schemas.SchemaError as exc:
        return HostResult(name, "failed", rc, out, err, reason=f"bad result: {exc}",
                          data=build_data(None, {}))
    data = doc["data"] or {}
    try:
        if data or doc["ok"]:  # a failure's empty data needs none of the required keys
            schemas.check_data(data, program)
    except schemas.SchemaError as exc:
        if doc["ok"]:
            return HostResult(name, "failed", rc, out, err, reason=f"bad result: {exc}",
                              data=build_data(None, {}))
        error = doc["error"] or "failed"
        return HostResult(name, "failed", rc, out, err, data=build_data(None, {}),
                          reason=f"{error} (its data was ignored: {exc})")
    if not doc["ok"]:
        return HostResult(name, "failed", rc, out, err, reason=doc["error"] or "failed",
                          data=build_data(program, data))
    status = "changed" if doc["changed"] else "ok"
    return HostResult(name, status, rc, out, err, data=build_data(program, data))


def program_input(program: str, argv: Sequence[str],
                  stdin: bytes | None) -> tuple[list[str], bytes | None]:
    """The argv and stdin the program sees: for programs whose arguments parse the same
    anywhere, argv is checked here against the program's spec and sent as the framed JSON
    document first on stdin (argv then is ``ARGS_FLAG``); otherwise argv as given.
    ProgramError (rc 2, one line) if argv is bad. See :func:`split_input`."""
    argv2, first, after = split_input(program, argv, stdin)
    return argv2, (first + (after or b"")) if first else after


def split_input(program: str, argv: Sequence[str],
                stdin: bytes | None) -> tuple[list[str], bytes, bytes | None]:
    """(argv, document frame, stdin after it). A document up to :data:`ARGV_FRAME_LIMIT`
    base64 characters travels in argv (``FLAG=BASE64``) with the exec request; a larger
    one is sent first on stdin (``Handshake.first``), read by the loader before the
    handshake. Not always stdin: OpenSSH's sshd opens a session channel with a window of
    0 bytes and grants it only once it has started the command, with its reply to the
    exec request (serverloop.c ``server_request_session``), so stdin data costs a round
    trip whatever the client does (~0.9 RTT per warm run, ``invoke bench.disk-rtt``;
    ``tests/test_exec_window.py`` pins it). The document carries argv's own values: no
    secret."""
    framed = _encoded_args(program, tuple(argv))
    if framed is None:
        return list(argv), b"", stdin
    text = base64.b64encode(framed).decode("ascii")
    if len(text) <= ARGV_FRAME_LIMIT and not _has_private(program):  # no wait at all
        return [f"{ARGS_FLAG}={text}"], b"", stdin
    return [ARGS_FLAG], framed, stdin


@functools.lru_cache(maxsize=64)
def _has_private(program: str) -> bool:
    """The program declares an argument derived from possibly secret content (a size,
    a digest: ``Arg(private=True)``): its documents never go in argv, which every
    user of the host can read (``ps``, /proc/PID/cmdline)."""
    from fleetops.ship import programs

    return any(getattr(item, "private", False) for item in programs.spec(program))


@functools.lru_cache(maxsize=256)
def _encoded_args(program: str, argv: tuple[str, ...]) -> bytes | None:
    """The framed JSON document of argv, once per distinct argv (not once per host);
    None when the host must parse argv itself. ProgramError (not cached) when bad."""
    from fleetops.ship import programs

    return programs.frame_of_argv(program, list(argv))


def run_program(session: Session, program: str, argv: Sequence[str],
                app: Zipapp | None = None, timeout: float | None = None,
                stdin: bytes | None = None) -> HostResult:
    """Run one ops program on the session's host (uploading the zipapp if needed).

    ``stdin`` reaches the program's standard input: the way to pass secrets and large
    content, which must never travel in argv (visible in ``ps`` on the host)."""
    app = app or build_zipapp()
    try:
        argv, first, stdin = split_input(program, argv, stdin)
    except ProgramError as exc:
        return HostResult(session.host.name, "failed", exc.rc, reason=str(exc))
    python = getattr(session.host, "python", None)
    conn = session.connection
    sent_before = conn.bytes_sent
    command = bootstrap_command(app, program, argv, python, with_stdin=stdin is not None)
    result = session.exec(command, Handshake(app.data, stdin or b"", first), timeout)
    host = classify(session.host.name, result.rc, result.stdout, result.stderr, program,
                    result.discarded)
    sent = conn.bytes_sent - sent_before
    sent -= len(first) if sent >= len(first) else 0  # sent at once: the arguments
    host.uploaded_bytes = sent - len(stdin) if stdin and sent >= len(stdin) else sent
    return host


def fleet_program(hosts: Iterable[Any], program: str, args_for: ArgsFor,
                  options: RunOptions | Fleet, on_result=None,
                  timeout: float | None = None, on_tick=None, events=None) -> RunResult:
    """Run ``program`` on every host in parallel; ``args_for(host)`` gives per-host argv;
    ``events``: a :class:`fleetops.core.events.Reporter` (instead of the callbacks).

    ``options`` is either RunOptions (a Fleet is made and closed here) or an open Fleet
    whose connections are reused (playbooks)."""
    app = build_zipapp()

    def work(session: Session) -> HostResult:
        argv = args_for(session.host) if callable(args_for) else args_for
        return run_program(session, program, list(argv), app, timeout)

    if isinstance(options, Fleet):
        return options.run(hosts, work, on_result=on_result, on_tick=on_tick, events=events)
    with Fleet(options, target_for) as fleet:
        return fleet.run(hosts, work, on_result=on_result, on_tick=on_tick, events=events)
