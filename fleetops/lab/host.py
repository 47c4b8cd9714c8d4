"""One lab host: its namespace holder, its sshd, its setup script and config.

A host is a holder process, PID 1 of its own PID, mount and UTS namespaces (and of
a lab network namespace for hosts behind the bastion); see :mod:`fleetops.lab.root`.
"""

from __future__ import annotations

import functools
import grp
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from fleetops.lab import proc as lab_proc
from fleetops.lab import root as lab_root
from fleetops.lab.proc import LabError  # noqa: F401  (re-exported: the lab's error)

SSHD = "/usr/sbin/sshd"
PORT = 2222
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DATA_MIB = 8
DATA_INODES = 512
NOPYTHON = "fleetops-lab-nopython"
HOLDER_ARGV0 = "fleetops-lab-holder"
CRON_DIRS = ("cron.d", "cron.hourly", "cron.daily", "cron.weekly", "cron.monthly", "cron.yearly")
#: (directory, tmpfs-style options) shown empty in every host; a tmpfs /srv/data comes on top.
FIXED_MASKS = (
    ("/srv", "size=16m,mode=0755"),
    ("/var/log", "size=16m,mode=0755"),
    ("/run", "size=16m,mode=0755"),
    ("/tmp", "size=64m,mode=1777"),
    ("/root", "size=16m,mode=0700"),
)


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (unshare, nsenter, mount): run it as root")


@dataclass
class LabHost:
    name: str
    index: int
    address: str
    port: int
    dir: Path
    holder_pid: int | None = None
    kind: str = ""  # "" for an ordinary host, else a kind of the mixed profile
    netns: str = ""  # a lab network namespace name, "" for the machine's

    @property
    def config(self) -> Path:
        return self.dir / "sshd_config"

    @property
    def pid_file(self) -> Path:
        return self.dir / "sshd.pid"

    @property
    def log(self) -> Path:
        return self.dir / "sshd.log"

    @property
    def host_key(self) -> Path:
        return self.dir / "ssh_host_ed25519_key"

    @property
    def rekey_key(self) -> Path:
        return self.dir / "ssh_host_ed25519_key.rekey"

    @property
    def holder_log(self) -> Path:
        return self.dir / "holder.log"

    @property
    def outer_pid_file(self) -> Path:
        """The machine's pid of the sshd (its pid file holds the host's own view)."""
        return self.dir / "sshd.machine-pid"

    def holder_alive(self) -> bool:
        pid = self.holder_pid
        return bool(pid) and lab_proc.environ(pid).get("FLEETOPS_LAB_HOLDER") == str(self.dir)

    def sshd_pid(self) -> int | None:
        """The live sshd listener of this host (verified by its marker), or None."""
        inner = lab_proc.read_pidfile(self.pid_file)
        if not inner or not self.holder_pid:
            return None
        cached = lab_proc.read_pidfile(self.outer_pid_file)
        if cached and self._is_sshd(cached, inner):
            return cached
        pid = lab_root.outer_pid(self.holder_pid, inner)
        if pid and self._is_sshd(pid, inner):
            write_file(self.outer_pid_file, f"{pid}\n", 0o644)
            return pid
        return None

    def _is_sshd(self, pid: int, inner: int) -> bool:
        return (lab_proc.alive(pid) and lab_proc.is_lab_sshd(pid, f"{self.config} ")
                and lab_root.ns_pid(pid) == inner
                and lab_root.pid_ns(pid) == lab_root.pid_ns(self.holder_pid))

    def log_tail(self, path: Path | None = None, lines: int = 3) -> str:
        try:
            text = (path or self.log).read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    def to_json(self) -> dict:
        return {"name": self.name, "index": self.index, "address": self.address,
                "port": self.port, "dir": str(self.dir), "holder_pid": self.holder_pid,
                "pid_file": str(self.pid_file), "log": str(self.log), "kind": self.kind,
                "netns": self.netns}

    @classmethod
    def from_json(cls, doc: dict) -> LabHost:
        return cls(str(doc["name"]), int(doc["index"]), str(doc["address"]), int(doc["port"]),
                   Path(doc["dir"]), doc.get("holder_pid"), str(doc.get("kind", "")),
                   str(doc.get("netns", "")))

    def nsenter(self, argv: list[str]) -> list[str]:
        """``argv`` wrapped to run inside this host (all its namespaces and its root)."""
        return ["nsenter", "--target", str(self.holder_pid), "--mount", "--uts", "--pid",
                "--net", "--", *argv]


def host_name(index: int, count: int) -> str:
    return f"lab{index:0{3 if count > 99 else 2}d}"


def host_address(prefix: str, index: int) -> str:
    """Host 1..250 on <prefix>.0.x, 251..500 on <prefix>.1.x, and so on."""
    return f"{prefix}.{(index - 1) // 250}.{(index - 1) % 250 + 1}"


def fill_percent(index: int) -> int:
    """Deterministic /srv/data fill between 5 and 97 %, distinct for hosts 1..93."""
    return 5 + (index - 1) * 41 % 93


def inode_files(index: int) -> int:
    """How many extra files host ``index`` gets in /srv/data (inode use 2..96 %)."""
    percent = 2 + (index - 1) * 29 % 95
    return max(0, percent * DATA_INODES // 100 - 3)


def write_file(path: Path, data: str | bytes, mode: int) -> None:
    """Write ``data`` with exactly ``mode`` (umask ignored), atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), mode)
        fh.write(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def mask_list() -> list[tuple[str, str]]:
    """Every directory shown empty in hosts (cron dirs only if cron is installed), with
    its mode and group as tmpfs-style options (see :func:`lab_root.make_mask`)."""
    masks = [(f"/etc/{name}", "size=1m,mode=0755") for name in CRON_DIRS
             if os.path.isdir(f"/etc/{name}")]
    if os.path.isdir("/var/spool/cron/crontabs"):
        try:
            gid = grp.getgrnam("crontab").gr_gid
        except KeyError:
            gid = 0
        masks.append(("/var/spool/cron/crontabs", f"size=1m,mode=1730,gid={gid}"))
    return masks + list(FIXED_MASKS)


@functools.cache
def python_stdlib_dirs() -> tuple[str, ...]:
    """The machine's python standard libraries (``/usr/lib/python3.N`` holding ``os.py``),
    bound read-only into every host (see :func:`lab_root.setup_script`)."""
    return tuple(sorted(str(p) for p in Path("/usr/lib").glob("python3.*")
                        if (p / "os.py").is_file()))


def lab_housekeeping_mounts() -> list[str]:
    """Mount points the lab makes for isolation or speed (not the /srv/data a report
    should show): the masked directories and the read-only python stdlib binds."""
    return [point for point, _ in mask_list()] + list(python_stdlib_dirs())


def setup_script(host: LabHost, state_dir: Path, late: list[str] | None = None) -> str:
    """The shell run by the holder inside its new namespaces (see :mod:`fleetops.lab.root`)."""
    fill = fill_percent(host.index) * DATA_MIB * 1024 * 1024 // 100 // 4096 * 4096
    # /run/sshd, /run/lock, /root/.ssh, /srv/data, empty rc files: in the mask layer
    lines = [f"mount -t tmpfs -o size={DATA_MIB}m,nr_inodes={DATA_INODES},mode=0755 "
             "fleetops-lab-data /srv/data"]
    if fill:
        lines.append(f"fallocate -l {fill} /srv/data/fill")
    lines += ["mkdir /srv/data/files", "i=0",
              f"while [ $i -lt {inode_files(host.index)} ]; do : > /srv/data/files/f$i; "
              "i=$((i+1)); done", *(late or [])]
    return lab_root.setup_script(host.name, host.address, host.dir, state_dir,
                                 lab_housekeeping_mounts(), lines, python_stdlib_dirs())


def keygen(path: Path, comment: str) -> None:
    for p in (path, path.with_name(path.name + ".pub")):
        p.unlink(missing_ok=True)
    proc = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                           "-f", str(path)], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, check=False)
    if proc.returncode:
        raise LabError(f"ssh-keygen failed for {path}: {proc.stderr.strip()}")
    os.chmod(path, 0o600)
    os.chmod(path.with_name(path.name + ".pub"), 0o644)


def start_holder(host: LabHost, state_dir: Path, timeout: float,
                 late: list[str] | None = None) -> int:
    """Start the namespace holder (detached: not our child), wait for its setup; its pid.

    ``late`` are extra shell lines run inside the host's new root (users, files).
    """
    env = {"PATH": SAFE_PATH, "LANG": "C", "FLEETOPS_LAB_HOLDER": str(host.dir)}
    (host.dir / "cow").mkdir(mode=0o700, exist_ok=True)
    if not (host.dir / lab_root.REAPER_FIFO).exists():
        os.mkfifo(host.dir / lab_root.REAPER_FIFO, 0o600)
    net = ["nsenter", f"--net=/run/netns/{host.netns}", "--"] if host.netns else []
    # no "unshare --fork": the sh forks PID 1 of the new namespace and exits at once
    argv = [*net, "setsid", "--fork", "unshare", "--mount", "--uts", "--pid",
            "--propagation", "private", "--", "sh", "-c", 'sh -c "$1" "$0" &', HOLDER_ARGV0,
            setup_script(host, state_dir, late)]
    fd = os.open(host.holder_log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=fd, env=env)
    finally:
        os.close(fd)
    with proc.stdout:
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        words = proc.stdout.readline().split() if ready else []
    proc.wait()  # setsid's parent half exits at once
    if len(words) != 2 or words[0] != b"ready" or not words[1].isdigit():
        raise LabError(f"{host.name}: namespace setup failed: {host.log_tail(host.holder_log)}")
    host.holder_pid = int(words[1])
    return host.holder_pid


def start_sshd(host: LabHost, timeout: float) -> int:
    """Start the host's sshd in the holder's namespaces; wait for its banner; return its pid."""
    host.pid_file.unlink(missing_ok=True)
    host.outer_pid_file.unlink(missing_ok=True)
    env = {"PATH": SAFE_PATH, "LANG": "C", "FLEETOPS_LAB_SSHD": str(host.dir)}
    argv = host.nsenter([SSHD, "-f", str(host.config), "-E", str(host.log)])
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout, check=False)
    if proc.returncode:
        why = proc.stderr.strip().replace("\n", " | ") or host.log_tail()
        raise LabError(f"{host.name}: sshd failed to start (rc {proc.returncode}): {why}")
    deadline = time.monotonic() + timeout
    pid = None
    while pid is None:
        pid = host.sshd_pid()
        if pid is None and time.monotonic() > deadline:
            raise LabError(f"{host.name}: sshd wrote no pid file in {timeout:.0f}s: "
                           f"{host.log_tail()}")
        if pid is None:
            time.sleep(0.01)
    if not host.netns:  # behind the bastion: unreachable from here by design
        wait_banner(host, deadline)
    return pid


def wait_banner(host: LabHost, deadline: float) -> None:
    """Wait until the host's sshd accepts TCP and sends its SSH banner."""
    while True:
        try:
            with socket.create_connection((host.address, host.port), timeout=1.0) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise LabError(f"{host.name}: no SSH banner from {host.address}:{host.port}: "
                           f"{host.log_tail()}")
        time.sleep(0.05)


def stop_sshd(host: LabHost, timeout: float = 5.0) -> None:
    """Stop the host's sshd listener (frozen or not); its sessions are left alone."""
    pid = host.sshd_pid()
    if pid:
        lab_proc.signal_pid(pid, signal.SIGTERM)
        lab_proc.signal_pid(pid, signal.SIGCONT)
        if lab_proc.wait_gone([pid], timeout):
            lab_proc.kill_all([pid])
    host.pid_file.unlink(missing_ok=True)
    host.outer_pid_file.unlink(missing_ok=True)


def port_free(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def run_all(jobs: list[Callable[[], None]], width: int) -> None:
    """Run ``jobs`` on a bounded pool; raise the first error after all have finished."""
    with ThreadPoolExecutor(max_workers=max(1, min(16, width))) as pool:
        futures = [pool.submit(job) for job in jobs]
    errors = [f.exception() for f in futures if f.exception()]
    if errors:
        raise errors[0]
