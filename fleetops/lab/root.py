"""A lab host's private world: a copy-on-write root, its own PID namespace, its own names.

The holder (``unshare --mount --uts --pid``, whose ``sh`` forks it and exits) runs
:func:`setup_script` as PID 1 of a new PID namespace (behind the bastion: inside the
lab's network namespace too). The script builds the host's root and pivots into it::

    /            overlay: lowers = <state>/mask (a tmpfs made once a lab: opaque empty
                 cron dirs, /srv, /var/log, /run, /tmp, /root, that hide the machine's
                 content) over this machine's /; upper = a tmpfs private to the host
    /dev         overlay: lower = <state>/dev (null, zero, full, random, urandom, tty,
                 fd links), plus a new devpts instance: no machine device is reachable
    /proc        a new procfs of the host's PID namespace (/proc/sys read-only)
    /sys         a read-only sysfs
    /usr/lib/python3.N  the machine's python standard library, bound read-only: every
                 python start-up looks up dozens of files there, and a lookup through
                 the overlay costs three layers (see ``host.python_stdlib_dirs``)
    <state>      the lab state dir, read-only; the host's own dir read-write (pid file, log)

so every write lands in the host's tmpfs and nothing it runs can see, or signal,
a process of the machine or of another host. It prints ``ready <pid>``, its pid as
the machine sees it, then becomes the host's reaper (:data:`REAPER`). Processes of a
host write their own view of their pid (sshd's pid file): :func:`outer_pid` maps it.
Reads are not isolated: a host sees the machine's files (read-only, under its upper
layer) and, unless behind the bastion, shares the machine's network namespace.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path

from fleetops.lab import proc as lab_proc

#: Upper limit of a host's copy-on-write root (tmpfs: memory is used only by what is written).
COW_SIZE = "512m"
#: Device nodes of the host's /dev: (name, mode, major, minor).
DEVICES = (("null", 0o666, 1, 3), ("zero", 0o666, 1, 5), ("full", 0o666, 1, 7),
           ("random", 0o666, 1, 8), ("urandom", 0o666, 1, 9), ("tty", 0o666, 5, 0))
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
             ("ptmx", "pts/ptmx"))
#: Made once in the mask layer (no per-host exec): (path, mode, is a dir).
MASK_EXTRAS = ((".fleetops-old", 0o755, True), ("run/sshd", 0o755, True),
               ("run/lock", 0o1777, True), ("root/.ssh", 0o700, True),
               ("srv/data", 0o755, True), ("root/.bashrc", 0o644, False),
               ("root/.profile", 0o644, False))
#: PID 1 of every host: reaps orphans (bash's SIGCHLD handler waits for any child) while
#: it blocks reading its own FIFO (opened read-write: never at end of file).
REAPER = "trap '' TERM INT HUP; exec 3<>\"$0\"; while :; do read -r -u 3 _ || :; done"
REAPER_FIFO = "reaper.fifo"


def make_dev(state_dir: Path) -> Path:
    """Create ``<state>/dev``, the lower layer of every host's /dev."""
    dev = state_dir / "dev"
    dev.mkdir(mode=0o755, exist_ok=True)
    for name, mode, major, minor in DEVICES:
        path = dev / name
        if not path.exists():
            os.mknod(path, stat.S_IFCHR | mode, os.makedev(major, minor))
            os.chmod(path, mode)
    for name, target in DEV_LINKS:
        if not (dev / name).is_symlink():
            os.symlink(target, dev / name)
    for name, mode in (("pts", 0o755), ("shm", 0o1777), ("mqueue", 0o1777)):
        (dev / name).mkdir(exist_ok=True)
        os.chmod(dev / name, mode)
    return dev


def _opts(options: str) -> dict[str, str]:
    return dict(item.partition("=")[::2] for item in options.split(","))


def make_mask(state_dir: Path, masks: list[tuple[str, str]]) -> Path:
    """Mount ``<state>/mask``: the hosts' shared lower layer of empty, opaque dirs.

    ``masks`` are (directory, tmpfs-style options ``mode=0755,gid=N``); each becomes an
    empty dir (the cron dirs keep Debian's ``.placeholder``) hiding the machine's one.
    Parent dirs copy the machine's owner and mode. A tmpfs, so that overlayfs does not
    see the layer inside its ``/`` lower layer ("overlapping lowerdir path").
    """
    mask = state_dir / "mask"
    mask.mkdir(mode=0o755, exist_ok=True)
    if not os.path.ismount(mask):
        _run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "fleetops-lab-mask",
              str(mask)])
    for point, options in masks:
        rel = Path(point).relative_to("/")
        for depth in range(1, len(rel.parts)):
            parent = Path(*rel.parts[:depth])
            if not (mask / parent).is_dir():
                real = os.stat(Path("/") / parent)
                (mask / parent).mkdir()
                os.chmod(mask / parent, stat.S_IMODE(real.st_mode))
                os.chown(mask / parent, real.st_uid, real.st_gid)
        opts = _opts(options)
        target = mask / rel
        target.mkdir(exist_ok=True)
        os.chmod(target, int(opts.get("mode", "0755"), 8))
        os.chown(target, 0, int(opts.get("gid", "0")))
        os.setxattr(target, "trusted.overlay.opaque", b"y")
        placeholder = Path(point) / ".placeholder"
        if point.startswith("/etc/cron") and placeholder.is_file():
            (target / ".placeholder").write_bytes(placeholder.read_bytes())
            os.chmod(target / ".placeholder", 0o644)
    for rel, mode, is_dir in MASK_EXTRAS:
        path = mask / rel
        if path.parent.is_dir() and not path.exists():
            if is_dir:
                path.mkdir()
            else:
                path.touch()
            os.chmod(path, mode)
    return mask


def unmount_mask(state_dir: Path) -> None:
    """Detach ``<state>/mask`` (hosts still running keep their own reference)."""
    if os.path.ismount(state_dir / "mask"):
        _run(["umount", "-l", str(state_dir / "mask")])


def _run(argv: list[str]) -> None:
    from fleetops.lab.proc import LabError

    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30,
                          stdin=subprocess.DEVNULL)
    if proc.returncode:
        raise LabError(f"{' '.join(argv)}: {proc.stderr.strip()}")


def hosts_file(name: str, address: str) -> str:
    """The host's /etc/hosts: its own name resolves (sudo, hostname -f)."""
    return (f"127.0.0.1\tlocalhost\n{address}\t{name}\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n")


def setup_script(name: str, address: str, host_dir: Path, state_dir: Path,
                 masked: list[str], late: list[str], binds: tuple[str, ...] = ()) -> str:
    """The holder's shell (run as PID 1 of the host's new namespaces).

    ``masked`` are the directories the mask layer empties; ``late`` (trusted lab
    shell lines) runs inside the new root (files, users) before the host is ready;
    ``binds`` are machine directories bound read-only at the same path (lookups then
    skip the overlay's layers; the host can still write only to its own upper layer).
    """
    q = shlex.quote
    cow = q(str(host_dir / "cow"))
    state, own = q(str(state_dir)), q(str(host_dir))
    lines = ["set -eu", "umask 022", "read -r outer _ < /proc/self/stat",
             f"echo {q(name)} > /proc/sys/kernel/hostname",  # our new UTS namespace
             f"mount -t tmpfs -o size={COW_SIZE},mode=0755 fleetops-lab-cow {cow}",
             f"cd {cow}", "mkdir u w r du dw", f"R={cow}/r",
             f"mount -t overlay -o lowerdir={state}/mask:/,upperdir=u,workdir=w "
             "fleetops-lab-root r",
             f"mount -t overlay -o lowerdir={state}/dev,upperdir=du,workdir=dw "
             'fleetops-lab-dev "$R/dev"',
             'mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 fleetops-lab-pts '
             '"$R/dev/pts"',
             'mount -t proc fleetops-lab-proc "$R/proc"',
             'mount --bind -o ro "$R/proc/sys" "$R/proc/sys"',
             'mount -t sysfs -o ro fleetops-lab-sys "$R/sys"']
    if any(str(state_dir).startswith(point.rstrip("/") + "/") for point in masked):
        lines.append(f'mkdir -p "$R"{state}')  # under a dir the mask layer empties
    lines += [f'mount --bind -o ro {q(d)} "$R"{q(d)}' for d in binds]
    lines += [f'mount --bind -o ro {state} "$R"{state}',
              f'mount --bind {own} "$R"{own}',
              'cd "$R"', "pivot_root . .fleetops-old",
              "cd /", "umount -l /.fleetops-old", "rmdir /.fleetops-old",
              f"printf %s {q(hosts_file(name, address))} > /etc/hosts",
              f"echo {q(name)} > /etc/hostname", *late,
              "echo ready $outer",
              f"exec bash -c {q(REAPER)} {q(str(host_dir / REAPER_FIFO))} "
              "</dev/null >/dev/null 2>&1"]
    return "\n".join(lines) + "\n"


def ns_pid(pid: int) -> int | None:
    """The pid of ``pid`` inside its own (innermost) PID namespace, from /proc NSpid."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    except (OSError, ValueError):
        return None
    return None


def pid_ns(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def outer_pid(holder_pid: int, inner: int) -> int | None:
    """The machine's pid of process ``inner`` of the PID namespace whose init is ``holder_pid``."""
    if inner == 1:
        return holder_pid
    wanted = pid_ns(holder_pid)
    if wanted is None:
        return None
    # forked after its holder: look from the holder's pid up first (then any wrap-around)
    for pid in sorted(lab_proc.all_pids(), key=lambda p: (p < holder_pid, p)):
        if pid_ns(pid) == wanted and ns_pid(pid) == inner:
            return pid
    return None


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (scan of /proc/*/stat)."""
    found = []
    for other in lab_proc.all_pids():
        try:
            data = Path(f"/proc/{other}/stat").read_text()
        except OSError:
            continue
        fields = data.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(other)
    return found
