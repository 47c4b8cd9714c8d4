"""ssh_config resolution checked against OpenSSH itself: ``ssh -G -F FILE HOST``.

Every config under tests/data/ssh_config names its hosts in a ``# hosts:`` line (and
optional command-line options in ``# options:`` lines); for each host, every field
fleetops resolves must equal what ``ssh -G`` prints. ``INCDIR`` in the corpus is replaced
by the copy's directory.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fleetops.config.jump import format_jump
from fleetops.config.sshconfig import ConfigError, Resolved, option_line, resolve

CORPUS = Path(__file__).parent / "data" / "ssh_config"
FIELDS = ("hostname", "port", "user", "identityfile", "certificatefile", "userknownhostsfile",
          "globalknownhostsfile", "hostkeyalias", "stricthostkeychecking", "hashknownhosts",
          "identitiesonly", "identityagent", "connecttimeout", "connectionattempts",
          "proxycommand", "proxyjump")
HOME = pwd.getpwuid(os.getuid()).pw_dir

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs OpenSSH ssh")


def copy_corpus(dest: Path) -> Path:
    """The corpus copied to ``dest`` with INCDIR replaced by its path."""
    shutil.copytree(CORPUS, dest)
    for path in dest.rglob("*"):
        if path.is_file():
            path.write_text(path.read_text().replace("INCDIR", str(dest)))
    return dest


def cases(corpus: Path) -> list[tuple[Path, str, list[str]]]:
    """(config, host, ssh options) for every ``# hosts:`` line of the top-level files."""
    out = []
    for config in sorted(corpus.glob("*.conf")):
        hosts: list[str] = []
        options: list[str] = []
        for line in config.read_text().splitlines():
            if line.startswith("# hosts:"):
                hosts += line.split(":", 1)[1].split()
            elif line.startswith("# options:"):
                options += line.split(":", 1)[1].split()
        out += [(config, host, options) for host in hosts]
    return out


def ssh_g(config: Path | None, host: str, options: list[str],
          env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()) -> dict | str:
    """``ssh -G``'s fields (key -> list of values), or its error text."""
    argv = [*prefix, "ssh", "-G", *(["-F", str(config)] if config else []), *options, host]
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env=env or {**os.environ, "HOME": HOME}, timeout=20)
    if proc.returncode != 0:
        return proc.stderr.strip()
    fields: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key in FIELDS:
            fields.setdefault(key, []).append(value)
    return fields


def view(r: Resolved) -> dict[str, list[str]]:
    """A Resolved shown the way ``ssh -G`` prints it."""
    strict = {"yes": "true", "no": "false", None: "ask"}.get(r.strict_host_key_checking,
                                                            r.strict_host_key_checking)
    out = {
        "hostname": [r.hostname], "port": [str(r.port)], "user": [r.user],
        "identityfile": r.identity_files_raw, "certificatefile": r.certificate_files_raw,
        "userknownhostsfile": [" ".join(r.user_known_hosts)],
        "globalknownhostsfile": [" ".join(r.global_known_hosts)],
        "hostkeyalias": [r.host_key_alias] if r.host_key_alias else [],
        "stricthostkeychecking": [strict],
        "hashknownhosts": ["yes" if r.hash_known_hosts else "no"],
        "identitiesonly": ["yes" if r.identities_only else "no"],
        "identityagent": [r.identity_agent] if r.identity_agent else [],
        "connecttimeout": ["none" if r.connect_timeout is None else str(r.connect_timeout)],
        "connectionattempts": [str(r.connection_attempts or 1)],
        "proxycommand": [r.proxy_command] if r.proxy_command else [],
        "proxyjump": [format_jump(r.jump, r.jump_raw)] if r.jump and r.jump_raw else [],
    }
    return {k: v for k, v in out.items() if v}


def fleetops_g(config: Path | None, host: str, options: list[str], **kw) -> dict | str:
    flags = {"-o": "", "-l": "User=", "-p": "Port=", "-J": "ProxyJump=", "-i": "IdentityFile="}
    lines = [option_line(flags[options[i]] + options[i + 1], "command-line")
             for i in range(0, len(options), 2)]
    try:
        return view(resolve(host, lines, None if config is None else str(config), **kw))
    except ConfigError as exc:
        return f"ConfigError: {exc}"


def test_corpus_matches_ssh_G(tmp_path):
    corpus = copy_corpus(tmp_path / "corpus")
    checked = errors = 0
    for config, host, options in cases(corpus):
        want, got = ssh_g(config, host, options), fleetops_g(config, host, options)
        if isinstance(want, str):
            assert isinstance(got, str), (config.name, host, want, got)
            if error_line(want) is not None:  # ssh names no line for a token error
                assert error_line(want) == error_line(got), (config.name, host, want, got)
            errors += 1
            continue
        assert isinstance(got, dict), (config.name, host, got)
        for key in FIELDS:
            assert got.get(key, []) == want.get(key, []), (config.name, host, key)
        checked += 1
    assert checked >= 45 and errors >= 15, (checked, errors)


def error_line(text: str) -> int | None:
    """The line number in ssh's ``FILE line N:`` or fleetops's ``FILE:N:`` message."""
    m = re.search(r"(?:line |:)(\d+):", text)
    return int(m.group(1)) if m else None


def test_included_file_with_loose_permissions_is_refused_like_ssh(tmp_path):
    included = tmp_path / "loose.conf"
    included.write_text("Host *\n    Port 2222\n")
    included.chmod(0o666)
    config = tmp_path / "main.conf"
    config.write_text(f"Include {included}\n")
    want = ssh_g(config, "h", [])
    assert isinstance(want, str) and "Bad owner or permissions" in want
    got = fleetops_g(config, "h", [])
    assert got == f"ConfigError: {included}: Bad owner or permissions"
    included.chmod(0o644)
    assert fleetops_g(config, "h", [])["port"] == ssh_g(config, "h", [])["port"] == ["2222"]


def test_F_none_reads_no_file():
    want = ssh_g(Path("none"), "somehost", ["-o", "Port=2345"])
    assert fleetops_g(Path("none"), "somehost", ["-o", "Port=2345"]) == want
    assert want["port"] == ["2345"]
