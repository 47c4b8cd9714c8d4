"""Shipping logic on the fake transport: the REQUEST/READY handshake, upload accounting,
the program's stdin after the zipapp, the output cap, failures. The real bootstrap on
real hosts is tested in test_zipapp.py and the lab tests."""

from __future__ import annotations

import json

import pytest

from fleetops.core.runner import Fleet, RunOptions
from fleetops.core.testing import FakeHost, FakeNetwork, hosts
from fleetops.ship import run as ship
from fleetops.ship.handshake import (
    ABORT_MARKER,
    READY_MARKER,
    REQUEST_MARKER,
    FramingError,
    Handshake,
)
from fleetops.ship.zipapp import build_zipapp
from ops._argspec import ARGS_FLAG, read_frame

ARGV = ["--dest", "/etc/motd", "--size", "5", "--sha256", "ab" * 32]


def bootstrap(app, seen):
    """A host's side of ``ship.bootstrap_command``: the cache, the handshake, a program
    that reports how much stdin it got."""
    def program(proc):
        assert proc.command.startswith("/bin/sh -c ")
        if proc.command.endswith(" " + ARGS_FLAG):  # the loader reads the arguments first
            seen.setdefault("args", []).append(read_frame(proc.read))
        if seen.get("cached") == app.data:
            proc.write(b"\n" + READY_MARKER + b"\n")  # on a line of its own, like the loader
            rest = proc.read()
        else:
            proc.write(b"\n" + REQUEST_MARKER + b"\n")
            data = proc.read()
            seen["cached"], rest = data[: app.size], data[app.size:]
        seen.setdefault("stdin", []).append(rest)
        doc = {"ok": True, "changed": True, "error": None,
               "data": {"path": "/etc/motd", "size": len(rest)}}
        proc.write(json.dumps(doc).encode())
    return program


def run_files(net, names, content=b"hello", **options):
    app = build_zipapp()
    options.setdefault("command_timeout", 10)

    def work(session):
        return ship.run_program(session, "files", ARGV, app, stdin=content)

    with Fleet(RunOptions(**options), net.target_for, connect=net.connect) as fleet:
        return fleet.run(hosts(*names), work)


def test_zipapp_sent_once_then_cached(monkeypatch):
    monkeypatch.setattr(ship, "ARGV_FRAME_LIMIT", 0)  # the document first on stdin
    app = build_zipapp()
    seen: dict = {}
    net = FakeNetwork({"a": FakeHost(bootstrap(app, seen))})
    first = run_files(net, ["a"]).hosts["a"]
    assert first.status == "changed", first.reason
    assert seen["cached"] == app.data
    assert first.uploaded_bytes == app.size
    second = run_files(net, ["a"]).hosts["a"]
    assert second.status == "changed" and second.uploaded_bytes == 0
    # the argument document came first, before the handshake; then the content, whole
    assert seen["args"][0] == seen["args"][1] and b'"dest":"/etc/motd"' in seen["args"][0]
    assert seen["stdin"][0] == seen["stdin"][1] == b"hello"
    assert first.data["size"] == len(seen["stdin"][0])


def test_marker_line_is_not_the_programs_output():
    app = build_zipapp()
    net = FakeNetwork({"a": FakeHost(bootstrap(app, {}))})
    result = run_files(net, ["a"]).hosts["a"]
    assert not result.stdout.startswith(REQUEST_MARKER.decode())
    assert json.loads(result.stdout)["ok"] is True


def test_no_handshake_line_then_exit_reports_the_output():
    def no_python(proc):
        proc.write(b"\n" + ABORT_MARKER + b"\n")
        proc.write(b"no python3 interpreter found (tried: python3)\n", "stderr")
        return ship.RC_NO_PYTHON

    def early_exit(proc):
        proc.write(b"not json\n")  # no marker: the program's own words
        return 3

    net = FakeNetwork({"np": FakeHost(no_python), "odd": FakeHost(early_exit)})
    result = run_files(net, ["np", "odd"])
    assert result.hosts["np"].status == "failed"
    assert result.hosts["np"].reason.startswith("no usable python3 on the host: no python3")
    assert result.hosts["np"].uploaded_bytes == 0  # an abort gets nothing
    odd = result.hosts["odd"]
    assert odd.status == "failed" and "rc=3" in odd.reason
    assert odd.uploaded_bytes == 0


def test_start_up_noise_before_the_marker_is_dropped():
    app = build_zipapp()
    seen: dict = {}
    program = bootstrap(app, seen)

    def noisy(proc):
        proc.write(b"Welcome to host a\nhalf a line")  # .bashrc noise, no newline at the end
        program(proc)

    net = FakeNetwork({"a": FakeHost(noisy)})
    result = run_files(net, ["a"]).hosts["a"]
    assert result.status == "changed", result.reason
    assert "Welcome" not in result.stdout and json.loads(result.stdout)["ok"] is True


def test_too_much_noise_fails_the_host_with_a_framing_error():
    def chatty(proc):
        for _ in range(100):
            proc.write(b"motd line\n" * 100)
        proc.read()

    net = FakeNetwork({"a": FakeHost(chatty)})
    result = run_files(net, ["a"], command_timeout=10).hosts["a"]
    assert result.status == "failed"
    assert result.reason.startswith("FramingError: no fleetops handshake in the first 64 KiB")


def test_program_output_over_max_output_fails_the_host():
    app = build_zipapp()

    def floods(proc):
        proc.write(READY_MARKER + b"\n")
        proc.read()
        proc.write(b"{" + b" " * 50000)

    net = FakeNetwork({"a": FakeHost(floods)})
    result = run_files(net, ["a"], max_output=1000).hosts["a"]
    assert result.status == "failed"
    assert result.reason.startswith("program output is over --max-output")
    assert len(result.stdout) == 1000 and result.discarded_bytes == {"stdout": 49001}
    assert app.size > 1000  # the upload itself is not capped


def test_timeout_while_uploading_fails_only_that_host():
    app = build_zipapp()

    def stuck(proc):
        proc.write(REQUEST_MARKER + b"\n")
        proc.sleep(float("inf"))

    net = FakeNetwork({"stuck": FakeHost(stuck), "ok": FakeHost(bootstrap(app, {}))})
    result = run_files(net, ["stuck", "ok"], command_timeout=0.3)
    assert result.hosts["ok"].status == "changed"
    assert result.hosts["stuck"].status == "failed"
    assert result.hosts["stuck"].reason.startswith("command timed out after 0.")


def test_handshake_dialog_alone():
    dialog = Handshake(b"ZIPAPP", b"ARGS")
    out = bytearray(REQUEST_MARKER[:5])
    assert dialog.reply(out) is None  # half a line: not yet
    out = bytearray(b"noise\n" + REQUEST_MARKER + b"\n{")
    assert dialog.reply(out) == b"ZIPAPPARGS" and out == b"{"
    out = bytearray(READY_MARKER + b"\r\n")
    assert dialog.reply(out) == b"ARGS" and out == b""
    out = bytearray(b"\n" + ABORT_MARKER + b"\n")
    assert dialog.reply(out) == b"" and out == b""
    out = bytearray(b"python3: not found\n")
    assert dialog.reply(out) is None and out == b"python3: not found\n"
    with pytest.raises(FramingError):
        dialog.reply(bytearray(b"x\n" * 40000))
