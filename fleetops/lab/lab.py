"""The lab: a local fleet of real OpenSSH hosts, each in its own root and namespaces.

Host ``i`` is ``labNN`` at ``<prefix>.0.i:2222`` (loopback only). Each host is a
*holder* process, PID 1 of its own PID, mount and UTS namespaces, in a copy-on-write
root whose writes stay in a private tmpfs (:mod:`fleetops.lab.root`), with an 8 MiB
``/srv/data`` filled to a per-host level; its sshd runs inside. The ``mixed`` profile
adds one host of each kind of :mod:`fleetops.lab.mixed` (bastion, sudo, certificates...).
``<state>/lab.json`` records everything; processes also carry an environment
marker (``FLEETOPS_LAB_*=<state>/hNN``) so :meth:`Lab.down` finds them anyway.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from fleetops.lab import facts as lab_facts
from fleetops.lab import mixed as lab_mixed
from fleetops.lab import proc as lab_proc
from fleetops.lab import root as lab_root
from fleetops.lab.faults import FAULTS, LabFaults
from fleetops.lab.host import (
    PORT,
    LabError,
    LabHost,
    host_address,
    host_name,
    keygen,
    lab_housekeeping_mounts,
    mask_list,
    port_free,
    require_root,
    run_all,
    start_holder,
    start_sshd,
    write_file,
)
from fleetops.lab.sshd import sshd_config

__all__ = ["FAULTS", "MAX_HOSTS", "PROFILES", "Lab", "LabError", "LabHost", "MixedFacts",
           "require_root"]

MixedFacts = lab_facts.MixedFacts
#: default: N ordinary hosts; mixed: the same plus one host of each kind (lab_mixed).
PROFILES = ("default", "mixed")

MAX_HOSTS = 999
MARKER_FILE = ".fleetops-lab"
INVENTORY_HEADER = "# fleetops lab inventory"
SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+@,=-]*$")


class Lab(LabFaults):
    """A lab rooted at ``state_dir`` with its inventory at ``inventory_path``."""

    startup_timeout = 30.0  # seconds for one host's setup, and for its sshd banner

    def __init__(self, state_dir: str | os.PathLike, inventory_path: str | os.PathLike,
                 prefix: str = "127.77"):
        self.state_dir = Path(os.path.abspath(state_dir))
        self.inventory_path = Path(os.path.abspath(inventory_path))
        if not re.fullmatch(r"127\.(\d{1,3})", prefix) or not 0 < int(prefix[4:]) < 256:
            raise LabError(f"lab prefix {prefix!r} must be 127.N with N in 1..255")
        self.prefix = prefix
        for path in (self.state_dir, self.inventory_path):
            if not SAFE_PATH.match(str(path)):
                raise LabError(f"lab path {str(path)!r}: only letters, digits and ._/+@,=- "
                               "are supported (it goes into sshd_config)")

    client_key = property(lambda self: self.state_dir / "id_ed25519")
    client_pub = property(lambda self: self.state_dir / "id_ed25519.pub")
    known_hosts = property(lambda self: self.state_dir / "known_hosts")
    json_path = property(lambda self: self.state_dir / "lab.json")

    # -- state -----------------------------------------------------------------------------
    def _load(self) -> dict | None:
        try:
            doc = json.loads(self.json_path.read_text())
            doc["hosts"] = [LabHost.from_json(h) for h in doc["hosts"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        doc.setdefault("faults", {})
        return doc

    def _save(self, doc: dict) -> None:
        out = dict(doc, hosts=[h.to_json() for h in doc["hosts"]])
        write_file(self.json_path, json.dumps(out, indent=2) + "\n", 0o644)

    @property
    def hosts(self) -> list[LabHost]:
        doc = self._load()
        return doc["hosts"] if doc else []

    def host(self, name: str | LabHost) -> LabHost:
        if isinstance(name, LabHost):
            return name
        for h in self.hosts:
            if h.name == name:
                return h
        names = [h.name for h in self.hosts]
        known = f"{names[0]}..{names[-1]}" if names else "none: the lab is not running"
        raise LabError(f"unknown lab host {name!r} (hosts: {known})")

    @contextlib.contextmanager
    def _locked(self, create: bool = False) -> Iterator[None]:
        """Serialise lab changes with a flock on the state dir itself."""
        if create:
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.state_dir.is_dir():
            yield
            return
        fd = os.open(self.state_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def running(self) -> bool:
        """True if this lab has a live namespace holder."""
        doc = self._load()
        return bool(doc) and any(h.holder_alive() for h in doc["hosts"])

    def healthy(self) -> bool:
        st = self.status()
        return st["running"] and all(
            h["state"] == "up" and not h["nopython"] for h in st["hosts"].values())

    # -- up ----------------------------------------------------------------------------------
    def up(self, hosts: int, reuse: bool = False, profile: str = "default",
           hidden: int = 2) -> float:
        """Start a lab of ``hosts`` ordinary hosts (plus the ``mixed`` profile's kinds,
        with ``hidden`` hosts behind its bastion); return the seconds it took (0.0 when
        reused)."""
        require_root()
        if not 1 <= hosts <= MAX_HOSTS:
            raise LabError(f"the lab takes 1..{MAX_HOSTS} hosts, not {hosts}")
        if profile not in PROFILES:
            raise LabError(f"unknown lab profile {profile!r} (profiles: {', '.join(PROFILES)})")
        self._check_dir_is_ours()
        with self._locked(create=True):
            if self._reusable(hosts, reuse, profile, hidden):
                return 0.0
            started = time.monotonic()
            try:
                self._build(hosts, profile, hidden)
            except BaseException as exc:
                self._kill_processes(self._load())
                with contextlib.suppress(OSError):
                    self.state_dir.rmdir()  # only if nothing was written yet
                if isinstance(exc, LabError) and self.state_dir.exists():
                    raise LabError(f"{exc} (logs kept in {self.state_dir}; "
                                   "'invoke lab.down' removes them)") from None
                raise
            return time.monotonic() - started

    def _check_dir_is_ours(self) -> None:
        d = self.state_dir
        if d.is_dir() and any(d.iterdir()) and not (d / MARKER_FILE).exists():
            raise LabError(f"{d} exists and is not a lab state dir: refusing to use it")
        inv = self.inventory_path
        if inv.exists() and not _is_lab_inventory(inv):
            raise LabError(f"{inv} exists and was not written by the lab: refusing to replace it")

    def _reusable(self, hosts: int, reuse: bool, profile: str = "default",
                  hidden: int = 2) -> bool:
        """Deal with an existing lab: True to keep it, False to build (stale state removed)."""
        doc = self._load()
        if self.running():
            count = sum(not h.kind for h in doc["hosts"])
            same = count == hosts and doc.get("profile", "default") == profile and (
                profile == "default" or doc.get("hidden") == hidden)
            if not (reuse and same):
                hint = " or --reuse" if same else ""
                what = "" if doc.get("profile", "default") == "default" else " mixed"
                raise LabError(f"a {count}-host{what} lab is already running in "
                               f"{self.state_dir}: run 'invoke lab.down' first{hint}")
            with contextlib.suppress(LabError):  # not healable: rebuilt below
                run_all([lambda h=h: self._fault_heal(doc, h) for h in doc["hosts"]],
                        len(doc["hosts"]))
                self._save(doc)
                if self.healthy():
                    return True
        self._kill_processes(doc)
        self._remove_files(doc, keep_dir=True)
        return False

    def _plan(self, count: int) -> list[LabHost]:
        width = len(host_name(count, count)) - 3
        return [LabHost(host_name(i, count), i, host_address(self.prefix, i), PORT,
                        self.state_dir / f"h{i:0{width}d}") for i in range(1, count + 1)]

    def _build(self, count: int, profile: str = "default", hidden: int = 2) -> None:
        hosts = self._plan(count)
        if profile == "mixed":
            hosts += lab_mixed.plan(self.prefix, self.state_dir, count + 1, hidden)
        busy = [h for h in hosts if not h.netns and not port_free(h.address, h.port)]
        if busy:
            raise LabError(f"{busy[0].address}:{busy[0].port} is already in use "
                           f"({len(busy)} lab address(es) busy): another lab on prefix "
                           f"{self.prefix}? pick another prefix or stop it")
        write_file(self.state_dir / MARKER_FILE, "fleetops lab state; 'invoke lab.down' "
                   "removes this directory\n", 0o644)
        lab_root.make_mask(self.state_dir, mask_list())
        lab_root.make_dev(self.state_dir)
        self._write_nopython_script()
        for h in hosts:
            h.dir.mkdir(mode=0o700, exist_ok=True)
        keys = [(self.client_key, "fleetops-lab client")]
        keys += [(h.host_key, f"fleetops-lab {h.name}") for h in hosts]
        if profile == "mixed":
            keys += lab_mixed.key_jobs(self.state_dir)
        run_all([lambda k=k: keygen(*k) for k in keys], len(keys))
        special = [h for h in hosts if h.kind]
        late = lab_mixed.prepare(self.state_dir, self.prefix, special) if special else {}
        for h in hosts:
            write_file(h.config, sshd_config(h, self.client_pub), 0o644)
        doc = {"version": 1, "prefix": self.prefix, "port": PORT, "created": time.time(),
               "state_dir": str(self.state_dir), "inventory": str(self.inventory_path),
               "client_key": str(self.client_key), "known_hosts": str(self.known_hosts),
               "profile": profile, "netns": lab_mixed.netns_name(self.prefix) if special else "",
               "hidden": hidden if special else 0,
               "hosts": hosts, "faults": {}}
        self._save(doc)
        run_all([lambda h=h: self._start_host(h, late.get(h.name)) for h in hosts], len(hosts))
        self._save(doc)
        ca = lab_mixed.Paths(self.state_dir).host_ca if special else None
        write_file(self.known_hosts, "".join(lab_facts.known_hosts_lines(
            hosts, Path(f"{ca}.pub") if ca else None)), 0o644)
        facts = None
        if special:
            facts = lab_facts.facts(self.state_dir, self.prefix, hosts, self.client_key,
                                    self.known_hosts,
                                    lab_mixed.read_secrets(lab_mixed.Paths(self.state_dir)))
            lab_facts.write_facts(facts)
            write_file(Path(facts.ssh_config), lab_facts.ssh_config_text(facts), 0o644)
        self._write_inventory([h for h in hosts if not h.kind], facts, special)

    def _start_host(self, host: LabHost, late: list[str] | None = None) -> None:
        start_holder(host, self.state_dir, self.startup_timeout, late)
        start_sshd(host, self.startup_timeout)

    def _write_inventory(self, hosts: list[LabHost], facts: MixedFacts | None = None,
                         special: list[LabHost] | None = None) -> None:
        out = [f"{INVENTORY_HEADER}: written by 'invoke lab.up', removed by 'invoke lab.down'",
               "[lab]"]
        out += [f"{h.name} ansible_host={h.address} ansible_port={h.port} ansible_user=root"
                for h in hosts]
        for group, parity in (("even", 0), ("odd", 1)):
            out += ["", f"[{group}]"] + [h.name for h in hosts if h.index % 2 == parity]
        out += ["", "[lab:vars]", f"ansible_ssh_private_key_file={self.client_key}",
                f"fleetops_known_hosts={self.known_hosts}",
                "# the lab's own housekeeping mounts, left out of disk reports",
                f"fleetops_disk_exclude={','.join(self._disk_exclude())}"]
        if facts is not None:  # its last section is [mixed:vars]
            out += lab_facts.inventory_sections(facts, special or [])
            out.append(f"fleetops_disk_exclude={','.join(self._disk_exclude())}")
        self.inventory_path.parent.mkdir(parents=True, exist_ok=True)
        write_file(self.inventory_path, "\n".join(out) + "\n", 0o600 if facts else 0o644)

    def _disk_exclude(self) -> list[str]:
        """The lab's housekeeping mounts and its state dir (bound into every host)."""
        return [*lab_housekeeping_mounts(), str(self.state_dir), f"{self.state_dir}/*"]

    def mixed(self) -> MixedFacts:
        """Paths, passwords and addresses of a running mixed lab (see docs/lab.md)."""
        path = lab_mixed.Paths(self.state_dir).facts
        try:
            return MixedFacts.load(path)
        except (OSError, ValueError, TypeError) as exc:
            raise LabError(f"no mixed lab in {self.state_dir}: run "
                           "'invoke lab.up --profile mixed' first") from exc

    # -- down --------------------------------------------------------------------------------
    def down(self) -> dict:
        """Remove every process, namespace and file of this lab. Safe to repeat."""
        require_root()
        with self._locked():
            doc = self._load()
            killed = self._kill_processes(doc)
            prefix = doc["prefix"] if doc else self.prefix
            if lab_mixed.netns_down(prefix):
                removed = [f"netns {lab_mixed.netns_name(prefix)}"]
            else:
                removed = []
            removed += self._remove_files(doc, keep_dir=False)
        return {"processes": killed, "removed": removed}

    def _kill_processes(self, doc: dict | None) -> int:
        state = str(self.state_dir)
        marked = lab_proc.marked_pids(state)
        holders = {p for p, key in marked.items() if key == "FLEETOPS_LAB_HOLDER"}
        for h in doc["hosts"] if doc else []:
            if h.holder_alive():
                holders.add(h.holder_pid)
        namespaces = {lab_proc.mnt_ns(p) for p in holders} - {None}
        others = (set(lab_proc.pids_in_namespaces(namespaces)) | set(marked)) - holders
        survivors = lab_proc.kill_all(others) + lab_proc.kill_all(holders)
        if survivors:
            raise LabError(f"lab processes survived SIGKILL: {sorted(survivors)[:5]}")
        return len(others | holders)

    def _remove_files(self, doc: dict | None, keep_dir: bool) -> list[str]:
        removed = []
        inventories = {self.inventory_path}
        if doc and doc.get("inventory"):
            inventories.add(Path(doc["inventory"]))
        for inv in inventories:
            if inv.is_file() and _is_lab_inventory(inv):
                inv.unlink()
                removed.append(str(inv))
        d = self.state_dir
        if d.is_dir() and (d / MARKER_FILE).exists():
            lab_root.unmount_mask(d)
            if keep_dir:
                for child in d.iterdir():
                    _remove(child)
            else:
                shutil.rmtree(d)
            removed.append(str(d))
        elif d.is_dir() and not any(d.iterdir()) and not keep_dir:
            d.rmdir()
        return removed

    # -- status ------------------------------------------------------------------------------
    def status(self) -> dict:
        doc = self._load()
        out = {"running": False, "state_dir": str(self.state_dir),
               "inventory": str(self.inventory_path), "prefix": self.prefix, "up": 0,
               "hosts": {}}
        if doc is None:
            return out
        out.update(inventory=doc.get("inventory", out["inventory"]), prefix=doc["prefix"])
        for h in doc["hosts"]:
            out["hosts"][h.name] = self._host_status(h, doc["faults"].get(h.name, []))
        out["running"] = any(h["holder_pid"] for h in out["hosts"].values())
        out["up"] = sum(h["state"] == "up" for h in out["hosts"].values())
        return out

    def _host_status(self, h: LabHost, faults: list[str]) -> dict:
        holder = h.holder_alive()
        pid = h.sshd_pid() if holder else None
        if not holder:
            state = "gone"
        elif pid is None:
            state = "stopped"
        elif lab_proc.proc_state(pid) == "T":
            state = "frozen"
        elif "rekey" in faults:
            state = "rekeyed"
        else:
            state = "up"
        return {"address": h.address, "port": h.port, "state": state, "pid": pid,
                "holder_pid": h.holder_pid if holder else None,
                "nopython": holder and bool(self._nopython_mounts(h)), "faults": faults,
                "kind": h.kind}


def _is_lab_inventory(path: Path) -> bool:
    try:
        with path.open() as fh:
            return fh.readline().startswith(INVENTORY_HEADER)
    except OSError:
        return False


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
