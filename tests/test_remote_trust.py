"""The remote side trusts nothing it did not check: the zipapp cache and its handshake.

Run locally through ``/bin/sh`` (the same command fleetops sends), with the handshake
driven like ``fleetops.core.ssh.Connection`` drives it; ``test_remote_trust_lab.py`` does the
same over real sshd with shell start-up files that print text.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from fleetops.ship import run as ship
from fleetops.ship.handshake import _MARKER_LINE, ABORT_MARKER, READY_MARKER, REQUEST_MARKER
from fleetops.ship.zipapp import build_zipapp

NOBODY = 65534
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown to nobody)")


@pytest.fixture()
def home():
    """A home directory on a path whose every component is root's and 0755/0700."""
    path = Path("/root") / f".fleetops-trust-{uuid.uuid4().hex[:8]}"
    path.mkdir(mode=0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def drive(home_value: str | None, prefix: str = "", payload: bytes | None = None,
          program: str = "diskreport", argv: tuple[str, ...] = ("--include", "/"),
          shell: str = "sh"):
    """(marker, rc, stdout after the marker, stderr) of one bootstrap run."""
    app = build_zipapp()
    args, first, after = ship.split_input(program, list(argv), None)
    command = ship.bootstrap_command(app, program, args, None, with_stdin=after is not None)
    env = {"PATH": "/usr/bin:/bin"} if home_value is None else {"PATH": "/usr/bin:/bin",
                                                                  "HOME": home_value}
    proc = subprocess.Popen([shell, "-c", prefix + command], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if first:  # the argument document goes first, before any marker (Handshake.first)
        proc.stdin.write(first)
        proc.stdin.flush()
    out, found = b"", None
    while found is None:
        chunk = os.read(proc.stdout.fileno(), 65536)
        out += chunk
        found = _MARKER_LINE.search(out)
        if not chunk:
            break
    marker = found.group(1) if found else None
    if found:
        out = out[found.end():]
    try:
        if marker == REQUEST_MARKER:
            proc.stdin.write(app.data if payload is None else payload)
        if marker in (REQUEST_MARKER, READY_MARKER):
            proc.stdin.write(after or b"")
        proc.stdin.close()
    except BrokenPipeError:
        pass
    proc.stdin = None
    rest, err = proc.communicate(timeout=60)
    return marker, proc.returncode, out + rest, err.decode()


def ok_doc(out: bytes) -> dict:
    doc = json.loads(out)
    assert doc["ok"] is True, doc
    return doc


def cache(home: Path) -> Path:
    return home / ".cache" / "fleetops"


def test_cache_is_created_private_and_used_after_its_hash_is_checked(home: Path):
    marker, rc, out, err = drive(str(home))
    assert (marker, rc) == (REQUEST_MARKER, 0), err
    assert ok_doc(out)["data"]["mounts"][0]["mountpoint"] == "/"
    app = build_zipapp()
    cached = cache(home) / app.name
    assert stat.S_IMODE(cache(home).stat().st_mode) == 0o700
    assert stat.S_IMODE((home / ".cache").stat().st_mode) == 0o700
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600
    assert cached.read_bytes() == app.data
    assert sorted(p.name for p in cache(home).iterdir()) == [app.name, app.name + ".ok"]
    # (no temp file left; the .ok stamp spares the next runs the hash)
    marker, rc, out, err = drive(str(home))
    assert (marker, rc) == (READY_MARKER, 0), err
    ok_doc(out)


@pytest.mark.parametrize("value, words", [(None, "unset"), ("", "unset"),
                                          ("relative/home", "'relative/home'")])
def test_no_usable_home_is_refused_never_a_tmp_fallback(value, words):
    before = set(Path("/tmp").iterdir())
    marker, rc, out, err = drive(value)
    assert (marker, rc, out) == (ABORT_MARKER, ship.RC_CACHE_UNSAFE, b"")
    assert err.startswith("fleetops: HOME is ") and words in err and "no /tmp" in err
    assert not Path("/tmp/.cache/fleetops").exists() or Path("/tmp/.cache") in before


def test_world_writable_ancestor_is_refused(tmp_path: Path):
    home = tmp_path / "home"  # under the sticky, world-writable /tmp
    home.mkdir(mode=0o700)
    marker, rc, out, err = drive(str(home))
    assert (marker, rc) == (ABORT_MARKER, ship.RC_CACHE_UNSAFE)
    assert "/tmp is owned by uid" in err or "writable by group/others (mode 1777)" in err
    assert not (home / ".cache").exists()


@pytest.mark.parametrize("mode", [0o755, 0o770, 0o701])
def test_cache_dir_with_a_wrong_mode_is_refused(home: Path, mode: int):
    cache(home).mkdir(parents=True, mode=0o700)
    cache(home).chmod(mode)
    marker, rc, out, err = drive(str(home))
    assert (marker, rc) == (ABORT_MARKER, ship.RC_CACHE_UNSAFE), err
    assert "must be owned by uid 0 with mode 0700" in err and f"mode {mode:o}" in err
    assert list(cache(home).iterdir()) == []


def test_cache_dir_of_another_user_is_refused(home: Path):
    cache(home).mkdir(parents=True, mode=0o700)
    os.chown(cache(home), NOBODY, NOBODY)
    marker, rc, _, err = drive(str(home))
    assert (marker, rc) == (ABORT_MARKER, ship.RC_CACHE_UNSAFE)
    assert f"it is uid {NOBODY}" in err


def test_cache_dir_symlink_is_refused_and_its_target_untouched(home: Path):
    elsewhere = home / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (home / ".cache").mkdir(mode=0o700)
    cache(home).symlink_to(elsewhere)
    marker, rc, _, err = drive(str(home))
    assert (marker, rc) == (ABORT_MARKER, ship.RC_CACHE_UNSAFE)
    assert "a symlink or not a directory" in err
    assert list(elsewhere.iterdir()) == []


def test_group_writable_dot_cache_is_refused(home: Path):
    (home / ".cache").mkdir(mode=0o700)
    (home / ".cache").chmod(0o775)
    marker, rc, _, err = drive(str(home))
    assert (marker, rc) == (ABORT_MARKER, ship.RC_CACHE_UNSAFE)
    assert "/.cache is owned by uid 0 or writable by group/others (mode 775)" in err


def forged_zipapp(path: Path) -> None:
    """A planted file under the real zipapp's name whose program reports a forged ok."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ops/__init__.py", "")
        archive.writestr("ops/__main__.py", (
            "def main():\n    print('{\"ok\": true, \"changed\": false, \"data\": "
            "{\"forged\": true}, \"error\": null}')\n    return 0\n"))


def test_planted_zipapp_with_the_right_name_never_runs(home: Path):
    cache(home).mkdir(parents=True, mode=0o700)
    planted = cache(home) / build_zipapp().name
    forged_zipapp(planted)
    planted.chmod(0o600)
    marker, rc, out, err = drive(str(home))
    assert (marker, rc) == (REQUEST_MARKER, 0), err  # removed, then the real one uploaded
    assert "forged" not in ok_doc(out)["data"]
    assert "failed its check: removed it" in err
    assert planted.read_bytes() == build_zipapp().data


def test_zipapp_of_another_user_is_refused_not_run_not_removed(home: Path):
    cache(home).mkdir(parents=True, mode=0o700)
    planted = cache(home) / build_zipapp().name
    planted.write_bytes(build_zipapp().data)
    os.chown(planted, NOBODY, NOBODY)
    marker, rc, out, err = drive(str(home))
    assert (marker, rc, out) == (ABORT_MARKER, ship.RC_CACHE_UNSAFE, b"")
    assert f"belongs to uid {NOBODY}" in err and planted.exists()


def test_zipapp_symlink_in_the_cache_is_replaced_not_followed(home: Path):
    cache(home).mkdir(parents=True, mode=0o700)
    victim = home / "victim"
    victim.write_bytes(b"keep me")
    (cache(home) / build_zipapp().name).symlink_to(victim)
    marker, rc, out, err = drive(str(home))
    assert (marker, rc) == (REQUEST_MARKER, 0), err
    ok_doc(out)
    assert victim.read_bytes() == b"keep me"
    assert not (cache(home) / build_zipapp().name).is_symlink()


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_cache_entry_that_is_not_a_file_is_refused_at_once(home: Path, kind: str):
    """A directory or FIFO at the zipapp's name: one clear line and the cache-unsafe exit
    at once (no traceback, no wait on the FIFO), and it is left where it is."""
    cache(home).mkdir(parents=True, mode=0o700)
    entry = cache(home) / build_zipapp().name
    entry.mkdir() if kind == "directory" else os.mkfifo(entry)
    started = time.monotonic()
    marker, rc, out, err = drive(str(home))
    assert time.monotonic() - started < 10
    assert (marker, rc, out) == (ABORT_MARKER, ship.RC_CACHE_UNSAFE, b""), err
    assert "is not a regular file" in err and "Traceback" not in err and entry.exists()


def test_short_or_corrupt_upload_is_never_installed(home: Path):
    data = build_zipapp().data
    marker, rc, out, err = drive(str(home), payload=data[:1000])
    assert (marker, rc) == (REQUEST_MARKER, ship.RC_UPLOAD_FAILED)
    assert "zipapp upload incomplete: got " in err and f" of {len(data)} bytes" in err
    corrupt = bytes([data[0] ^ 1]) + data[1:]
    marker, rc, out, err = drive(str(home), payload=corrupt)
    assert (marker, rc) == (REQUEST_MARKER, ship.RC_UPLOAD_FAILED)
    assert "zipapp upload corrupted" in err
    assert list(cache(home).iterdir()) == []


@pytest.mark.parametrize("noise", [
    "echo 'Welcome!'; echo FLEETOPS-READY-ish; ",     # text, and a near-miss of a marker
    "printf 'half a line'; ",                          # no newline: the marker still stands alone
    "printf '\\033]0;title\\007\\377\\376 binary\\n'; ",  # escapes and non-UTF-8 bytes
])
def test_start_up_noise_before_the_handshake_is_dropped(home: Path, noise: str):
    for expected in (REQUEST_MARKER, READY_MARKER):
        marker, rc, out, err = drive(str(home), prefix=noise)
        assert (marker, rc) == (expected, 0), err
        ok_doc(out)


def test_no_python_says_so_after_its_marker():
    app = build_zipapp()
    command = ship.bootstrap_command(app, "diskreport", [], "/nonexistent/python3")
    proc = subprocess.run(["sh", "-c", "echo noise; " + command], capture_output=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/root"})
    assert proc.returncode == ship.RC_NO_PYTHON
    found = _MARKER_LINE.search(proc.stdout)
    assert found and found.group(1) == ABORT_MARKER and proc.stdout[found.end():] == b""
    assert "no python3 interpreter found" in proc.stderr.decode()


@pytest.mark.parametrize("shape", ["$(touch {flag})", "`touch {flag}`", '"; touch {flag}; "'])
def test_an_interpreter_path_is_never_run_by_the_shell(tmp_path, shape):
    """ansible_python_interpreter is host data: its text is shown, never expanded."""
    flag = tmp_path / "pwned"
    python = "/nope/py" + shape.format(flag=flag)
    command = ship.bootstrap_command(build_zipapp(), "diskreport", [], python)
    proc = subprocess.run(["sh", "-c", command], capture_output=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/root"})
    assert proc.returncode == ship.RC_NO_PYTHON and not flag.exists()
    assert python in proc.stderr.decode()


CSH = [path for path in ("/usr/bin/tcsh", "/bin/bsd-csh") if os.path.exists(path)]


def test_command_is_one_line_of_words_under_bsd_cshs_limit():
    import shlex

    command = ship.bootstrap_command(build_zipapp(), "diskreport", ["--include", "/"], None)
    assert "\n" not in command and "!" not in command  # csh: newlines, history expansion
    assert max(len(word) for word in shlex.split(command)) < 8000  # BSD csh: "Word too long."


def test_hosts_with_another_python_version_run_the_loaders_source(home: Path):
    tag = repr(sys.implementation.cache_tag)
    assert tag in ship.LAUNCH
    other = ship.LAUNCH.replace(tag, "'other-0'")
    app = build_zipapp()
    for launch in (ship.LAUNCH, other):
        argv = ["python3", "-S", "-E", "-c", launch, app.name, app.blake2b, str(app.size),
                "diskreport", "--include", "/"]
        proc = subprocess.run(argv, input=app.data, capture_output=True,
                              env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
        assert proc.returncode == 0, proc.stderr
        found = _MARKER_LINE.search(proc.stdout)
        assert found.group(1) == (REQUEST_MARKER if launch is ship.LAUNCH else READY_MARKER)
        ok_doc(proc.stdout[found.end():])


@pytest.mark.skipif(not CSH, reason="no csh installed (apt-get install tcsh csh)")
@pytest.mark.parametrize("shell", CSH)
def test_csh_login_shell_with_a_noisy_cshrc(home: Path, shell: str):
    """sshd runs ``$SHELL -c COMMAND``; csh reads ~/.cshrc first, which prints here."""
    (home / ".cshrc").write_text('echo "hello from .cshrc"\necho -n "no newline"\n')
    for expected in (REQUEST_MARKER, READY_MARKER):
        marker, rc, out, err = drive(str(home), shell=shell)
        assert (marker, rc) == (expected, 0), err
        ok_doc(out)


# -- the stamp: a cached zipapp is hashed once, then trusted while its inode is unchanged ----

def stamp_of(home: Path) -> Path:
    return cache(home) / (build_zipapp().name + ".ok")


def stamp_line(home: Path) -> str:
    app = build_zipapp()
    st = os.stat(cache(home) / app.name)
    return f"{app.blake2b} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}\n"


def test_an_upload_writes_the_stamp_the_next_runs_use_it(home: Path):
    assert drive(str(home))[:2] == (REQUEST_MARKER, 0)
    assert stamp_of(home).read_text() == stamp_line(home)  # hashed from stdin, then stamped
    stamp_of(home).unlink()
    assert drive(str(home))[:2] == (READY_MARKER, 0)  # no stamp: hashed, stamped again
    info = os.lstat(stamp_of(home))
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    assert stamp_of(home).read_text() == stamp_line(home)
    marker, rc, out, err = drive(str(home))
    assert (marker, rc, err) == (READY_MARKER, 0, "")
    ok_doc(out)


def test_a_file_changed_in_place_after_its_stamp_is_hashed_again(home: Path):
    drive(str(home))  # uploaded and stamped
    target = cache(home) / build_zipapp().name
    before = os.stat(target)
    data = bytearray(target.read_bytes())
    data[-30] ^= 1  # same size, mtime put back: only the ctime tells
    target.write_bytes(bytes(data))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    marker, rc, out, err = drive(str(home))
    assert (marker, rc) == (REQUEST_MARKER, 0), err
    assert "failed its check: removed it" in err
    ok_doc(out)
    assert target.read_bytes() == build_zipapp().data


@pytest.mark.parametrize("kind", ["symlink", "group-writable", "other-user"])
def test_a_stamp_that_is_not_the_users_own_file_is_ignored(home: Path, kind: str):
    """A forged stamp naming a planted file's inode never spares it the hash."""
    cache(home).mkdir(parents=True, mode=0o700)
    planted = cache(home) / build_zipapp().name
    forged_zipapp(planted)
    planted.chmod(0o600)
    st = os.stat(planted)
    line = (f"{build_zipapp().blake2b} {st.st_ino} {st.st_size} {st.st_mtime_ns} "
            f"{st.st_ctime_ns}\n")
    if kind == "symlink":
        (home / "elsewhere").write_text(line)
        stamp_of(home).symlink_to(home / "elsewhere")
    else:
        stamp_of(home).write_text(line)
        stamp_of(home).chmod(0o620 if kind == "group-writable" else 0o600)
        if kind == "other-user":
            os.chown(stamp_of(home), NOBODY, NOBODY)
    assert os.stat(planted).st_ctime_ns == st.st_ctime_ns
    marker, rc, out, err = drive(str(home))
    assert (marker, rc) == (REQUEST_MARKER, 0), err
    assert "forged" not in ok_doc(out)["data"] and "failed its check: removed it" in err
    assert stamp_of(home).read_text() == stamp_line(home)  # the upload's own stamp
