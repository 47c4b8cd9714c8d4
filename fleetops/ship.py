"""Ship the ops zipapp to hosts and run one ops program per host under the JSON contract.

One SSH round trip per program run: a small POSIX sh bootstrap finds python3 and
answers on its first stdout line: ``READY_MARKER`` when the zipapp with this content
hash is cached on the host, ``REQUEST_MARKER`` when it is not; then the zipapp is
sent (only on a miss) and stored atomically in a 0700 cache directory. Arguments are
quoted with ``shlex.quote``; programs whose argument spec parses the same anywhere get
them checked here and sent parsed on stdin (see ``ops._contract.PARSED_ARGS_FLAG``).
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import shlex
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fleetops import schemas
from fleetops.results import HostResult, RunResult, human_bytes, truncation
from fleetops.runner import Fleet, RunOptions, Session
from fleetops.ssh import READY_MARKER, REQUEST_MARKER
from fleetops.targets import target_for
from fleetops.zipapp import Zipapp, build_zipapp
from ops._contract import PARSED_ARGS_FLAG, ProgramError

CACHE_DIR = '"${HOME:-/tmp}/.cache/fleetops"'
PYTHONS = ("python3", "/usr/bin/python3", "/usr/local/bin/python3", "/usr/libexec/platform-python",
           "python3.13", "python3.12", "python3.11", "python3.10", "python3.9", "python3.8")
RC_NO_PYTHON = 127
RC_UPLOAD_FAILED = 125
ArgsFor = Callable[[Any], Sequence[str]] | Sequence[str]


# One shell line (no newlines: login shells such as csh choke on them); \n are Python's.
LAUNCH = ("import sys; exec(\"p = sys.path[0] = sys.argv.pop(1)\\n"
          "try: from ops.__main__ import main\\n"
          "except ImportError as e: __import__('os').unlink(p); sys.exit('fleetops: cached "
          "zipapp %s is broken (%s): removed it, the next run uploads a fresh copy' % (p, e))"
          "\\nsys.exit(main())\")")


def bootstrap_command(app: Zipapp, program: str, argv: Sequence[str], python: str | None,
                      with_stdin: bool = False) -> str:
    """The remote command: find python, check-and-upload the zipapp, exec the program.

    The zipapp carries bytecode for the control machine's Python next to the sources,
    so a host with the same version compiles nothing; others compile as usual. The
    program runs with ``-S -E -c`` (no site, no PYTHON* env, no runpy): the fixed
    interpreter cost per host matters when a fleet run is CPU-bound on the hosts."""
    name = app.name
    candidates = " ".join(shlex.quote(p) for p in ([python] if python else PYTHONS))
    args = " ".join(shlex.quote(a) for a in (program, *argv))
    script = "; ".join([
        "umask 077",
        f"d={CACHE_DIR}",
        f'f="$d/{name}"',
        'py=""',
        f'for c in {candidates}; do if command -v "$c" >/dev/null 2>&1; then py=$c; break; fi; done',
        f'if [ -z "$py" ]; then echo "no python3 interpreter found (tried: {candidates})" >&2; '
        f"exit {RC_NO_PYTHON}; fi",
        'if [ ! -f "$f" ]; then '
        'mkdir -p "$d" && chmod 700 "$d" || exit 126; '
        't="$d/.upload.$$"; trap \'rm -f "$t"\' EXIT HUP INT TERM; '
        f"echo {REQUEST_MARKER.decode()}; "
        f'head -c {app.size} > "$t"; '
        f'if [ "$(wc -c < "$t")" -ne {app.size} ]; then '
        f'echo "zipapp upload incomplete" >&2; exit {RC_UPLOAD_FAILED}; fi; '
        # other versions go once a day old (a newer one may be in use by another checkout)
        f'find "$d" -maxdepth 1 -name "fleetops-*.pyz" ! -name {name} -mtime +0 '
        "-exec rm -f {} + 2>/dev/null; "
        'mv -f "$t" "$f" || exit 125; trap - EXIT HUP INT TERM; '
        f"else echo {READY_MARKER.decode()}; fi",
        # C locale: stable output, and argparse's gettext skips its .mo file search
        f'LC_ALL=C LANGUAGE= exec "$py" -S -E -c {shlex.quote(LAUNCH)} "$f" {args}'
        + ("" if with_stdin else " </dev/null"),
    ])
    return f"/bin/sh -c {shlex.quote(script)}"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


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
    """Turn one program run into a HostResult (``extra['data']`` = the program's data).

    The document is checked on arrival (:mod:`fleetops.schemas`): a result that does
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
    if (rc == RC_UPLOAD_FAILED or "fleetops: cached zipapp" in err) and not out.strip():
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
                          extra={"data": {}})
    data = doc["data"] or {}
    try:
        if data or doc["ok"]:  # a failure's empty data needs none of the required keys
            schemas.check_data(data, program)
    except schemas.SchemaError as exc:
        if doc["ok"]:
            return HostResult(name, "failed", rc, out, err, reason=f"bad result: {exc}",
                              extra={"data": {}})
        error = doc["error"] or "failed"
        return HostResult(name, "failed", rc, out, err, extra={"data": {}},
                          reason=f"{error} (its data was ignored: {exc})")
    if not doc["ok"]:
        return HostResult(name, "failed", rc, out, err, reason=doc["error"] or "failed",
                          extra={"data": data})
    status = "changed" if doc["changed"] else "ok"
    return HostResult(name, status, rc, out, err, extra={"data": data})


def program_input(program: str, argv: Sequence[str],
                  stdin: bytes | None) -> tuple[list[str], bytes | None]:
    """The argv and stdin to send: for programs whose arguments parse the same anywhere,
    check argv here with the program's own spec and send the parsed values on stdin
    (the host skips argparse); otherwise argv as given. ProgramError if argv is bad."""
    framed = _encoded_args(program, tuple(argv))
    if framed is None:
        return list(argv), stdin
    return [PARSED_ARGS_FLAG], framed + (stdin or b"")


@functools.lru_cache(maxsize=256)
def _encoded_args(program: str, argv: tuple[str, ...]) -> bytes | None:
    """Parsed-and-framed argv, once per distinct argv (not once per host); None when the
    host must parse argv itself. ProgramError (not cached) when argv is bad."""
    spec = importlib.import_module(f"ops.{program}").PROGRAM
    if not spec.parse_on_control:
        return None
    try:
        return spec.encode(list(argv))
    except ValueError:  # a value marshal cannot carry: let the host parse argv itself
        return None


def run_program(session: Session, program: str, argv: Sequence[str],
                app: Zipapp | None = None, timeout: float | None = None,
                stdin: bytes | None = None) -> HostResult:
    """Run one ops program on the session's host (uploading the zipapp if needed).

    ``stdin`` reaches the program's standard input: the way to pass secrets and large
    content, which must never travel in argv (visible in ``ps`` on the host)."""
    app = app or build_zipapp()
    try:
        argv, stdin = program_input(program, argv, stdin)
    except ProgramError as exc:
        return HostResult(session.host.name, "failed", exc.rc, reason=str(exc))
    python = getattr(session.host, "python", None)
    conn = session.connection
    sent_before = conn.bytes_sent
    command = bootstrap_command(app, program, argv, python, with_stdin=stdin is not None)
    result = session.exec(command, timeout=timeout, stdin_on_request=app.data,
                          stdin_after=stdin or b"")
    host = classify(session.host.name, result.rc, result.stdout, result.stderr, program,
                    result.discarded)
    sent = conn.bytes_sent - sent_before
    host.extra["uploaded_bytes"] = sent - len(stdin) if stdin and sent >= len(stdin) else sent
    return host


def fleet_program(hosts: Iterable[Any], program: str, args_for: ArgsFor,
                  options: RunOptions | Fleet, on_result=None,
                  timeout: float | None = None, on_tick=None) -> RunResult:
    """Run ``program`` on every host in parallel; ``args_for(host)`` gives per-host argv.

    ``options`` is either RunOptions (a Fleet is made and closed here) or an open Fleet
    whose connections are reused (playbooks)."""
    app = build_zipapp()

    def work(session: Session) -> HostResult:
        argv = args_for(session.host) if callable(args_for) else args_for
        return run_program(session, program, list(argv), app, timeout)

    if isinstance(options, Fleet):
        return options.run(hosts, work, on_result=on_result, on_tick=on_tick)
    with Fleet(options, target_for) as fleet:
        return fleet.run(hosts, work, on_result=on_result, on_tick=on_tick)
