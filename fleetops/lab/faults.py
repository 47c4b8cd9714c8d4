"""Lab faults (stop, freeze, rekey, nopython, heal) and running commands inside a host.

A mixin of :class:`fleetops.lab.lab.Lab`: it uses the lab's ``_load``/``_save``/``_locked``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

from fleetops.lab import proc as lab_proc
from fleetops.lab import root as lab_root
from fleetops.lab.host import (
    NOPYTHON,
    LabError,
    LabHost,
    keygen,
    require_root,
    run_all,
    start_sshd,
    stop_sshd,
    write_file,
)
from fleetops.lab.sshd import sshd_config

FAULTS = ("stop", "freeze", "rekey", "nopython", "heal")
_NOPYTHON_SH = """#!/bin/sh
echo "python3: not found (hidden by the fleetops lab fault 'nopython')" >&2
exit 127
"""
#: Run in a host's namespace with $0 = the stand-in script: hide every python3[.N].
_HIDE_PY = """for f in /usr/bin/python3* /usr/local/bin/python3*; do
  case "${f##*/}" in python3|python3.[0-9]|python3.[0-9][0-9]) ;; *) continue ;; esac
  r=$(readlink -f "$f") || continue
  if [ -f "$r" ]; then echo "$r"; fi
done | sort -u | while read -r r; do mount --bind "$0" "$r" && echo "$r"; done
"""


class LabFaults:
    """Fault injection and namespace entry for a lab (mixed into ``Lab``)."""

    nopython_script = property(lambda self: self.state_dir / NOPYTHON)

    def _write_nopython_script(self) -> None:
        write_file(self.nopython_script, _NOPYTHON_SH, 0o755)

    def _nopython_mounts(self, h: LabHost) -> list[str]:
        return [point for root, point in lab_proc.mounts(h.holder_pid)
                if root.endswith("/" + NOPYTHON)]

    def fault(self, host: str, kind: str) -> None:
        """Inject ``kind`` (stop, freeze, rekey, nopython) into ``host``, or heal it.

        ``host`` may be ``all``.
        """
        require_root()
        if kind not in FAULTS:
            raise LabError(f"unknown fault {kind!r} (kinds: {', '.join(FAULTS)})")
        with self._locked():
            doc = self._load()
            if doc is None:
                raise LabError(f"no lab in {self.state_dir}: run 'invoke lab.up' first")
            targets = doc["hosts"] if host == "all" else [self._find(doc, host)]
            dead = [h.name for h in targets if not h.holder_alive()]
            if dead:
                raise LabError(f"{dead[0]}: its namespace holder is gone: recreate the lab "
                               "('invoke lab.down', then 'invoke lab.up')")
            apply = getattr(self, f"_fault_{kind}")
            try:
                run_all([lambda h=h: apply(doc, h) for h in targets], len(targets))
            finally:
                self._save(doc)

    def heal(self, host: str = "all") -> None:
        self.fault(host, "heal")

    def _find(self, doc: dict, name: str) -> LabHost:
        for h in doc["hosts"]:
            if h.name == name:
                return h
        names = [h.name for h in doc["hosts"]]
        raise LabError(f"unknown lab host {name!r} (hosts: {names[0]}..{names[-1]}, or all)")

    def _mark(self, doc: dict, h: LabHost, add: str = "", drop: tuple[str, ...] = ()) -> None:
        faults = set(doc["faults"].get(h.name, [])) - set(drop)
        if add:
            faults.add(add)
        doc["faults"][h.name] = sorted(faults)

    def _fault_stop(self, doc: dict, h: LabHost) -> None:
        stop_sshd(h)
        self._mark(doc, h, "stop", drop=("freeze",))

    def _fault_freeze(self, doc: dict, h: LabHost) -> None:
        pid = h.sshd_pid()
        if pid is None:
            raise LabError(f"{h.name}: sshd is not running, nothing to freeze")
        lab_proc.signal_pid(pid, signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while lab_proc.proc_state(pid) != "T" and time.monotonic() < deadline:
            time.sleep(0.005)
        self._mark(doc, h, "freeze")

    def _fault_rekey(self, doc: dict, h: LabHost) -> None:
        keygen(h.rekey_key, f"fleetops-lab {h.name} impostor")
        self._restart(h, rekeyed=True)
        self._mark(doc, h, "rekey", drop=("stop", "freeze"))

    def _fault_nopython(self, doc: dict, h: LabHost) -> None:
        if not self._nopython_mounts(h):
            proc = self.ns_run(h, ["sh", "-c", _HIDE_PY, str(self.nopython_script)],
                               capture_output=True, text=True, check=False)
            if not proc.stdout.strip():
                raise LabError(f"{h.name}: could not hide python3: {proc.stderr.strip()}")
        self._mark(doc, h, "nopython")

    def _fault_heal(self, doc: dict, h: LabHost) -> None:
        for point in self._nopython_mounts(h):
            self.ns_run(h, ["umount", point], capture_output=True, check=False)
        pid = h.sshd_pid()
        if pid is None or "rekey" in doc["faults"].get(h.name, []):
            self._restart(h, rekeyed=False)
        elif lab_proc.proc_state(pid) == "T":
            lab_proc.signal_pid(pid, signal.SIGCONT)
        doc["faults"].pop(h.name, None)

    def _restart(self, h: LabHost, rekeyed: bool) -> None:
        write_file(h.config, sshd_config(h, self.client_pub, rekeyed=rekeyed), 0o644)
        stop_sshd(h)
        start_sshd(h, self.startup_timeout)

    def ns_argv(self, host: str | LabHost, argv: list[str]) -> list[str]:
        """``argv`` wrapped to run inside ``host``'s mount and UTS namespaces."""
        return self.host(host).nsenter(argv)

    def _ns_env(self, host: str | LabHost, env: dict | None) -> dict:
        return dict(env if env is not None else os.environ,
                    FLEETOPS_LAB_NS=str(self.host(host).dir))

    def ns_run(self, host: str | LabHost, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        """Run ``argv`` inside ``host`` (like :func:`subprocess.run`)."""
        kwargs["env"] = self._ns_env(host, kwargs.get("env"))
        return subprocess.run(self.ns_argv(host, argv), **kwargs)

    def ns_popen(self, host: str | LabHost, argv: list[str], **kwargs) -> subprocess.Popen:
        """Start ``argv`` inside ``host`` without waiting (e.g. ``cron -f``); down kills it.

        Signals sent with ``terminate``/``kill``/``send_signal`` reach ``argv`` itself
        (nsenter forks to enter the PID namespace, and waits for it).
        """
        kwargs["env"] = self._ns_env(host, kwargs.get("env"))
        return NsPopen(self.ns_argv(host, argv), **kwargs)


class NsPopen(subprocess.Popen):
    """A Popen of ``nsenter ... -- argv`` whose signals go to argv, then nsenter follows."""

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            for child in lab_root.children(self.pid):
                lab_proc.signal_pid(child, sig)
        super().send_signal(sig)
