"""known_hosts checking: strict by default, explicit accept-new, never silent auto-add."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import paramiko
from paramiko.hostkeys import HostKeyEntry


class HostKeyError(Exception):
    """The server's key is unknown (strict mode) or differs from the recorded one."""


def lookup_name(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


class KnownHosts:
    """One known_hosts file, loaded once per run and shared by every worker thread."""

    def __init__(self, path: Path, accept_new: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.accept_new = accept_new
        self._keys = paramiko.HostKeys()
        self._lock = threading.Lock()
        if self.path.exists():
            self._keys.load(str(self.path))

    def known_types(self, address: str, port: int) -> list[str]:
        with self._lock:
            entry = self._keys.lookup(lookup_name(address, port))
            return list(entry.keys()) if entry else []

    def verify(self, address: str, port: int, key: paramiko.PKey) -> bool:
        """Return True when the key was newly recorded; raise HostKeyError when refused."""
        name = lookup_name(address, port)
        with self._lock:
            entry = self._keys.lookup(name)
            if entry:
                known = entry.get(key.get_name())
                if known is not None and known == key:
                    return False
                raise HostKeyError(
                    f"HOST KEY CHANGED for {name} ({key.get_name()} "
                    f"{key.fingerprint}): refusing to connect (possible man-in-the-middle); "
                    f"check and update {self.path}"
                )
            if not self.accept_new:
                raise HostKeyError(
                    f"unknown host key for {name} ({key.get_name()} {key.fingerprint}): "
                    f"not in {self.path} (use --accept-new to record new hosts)"
                )
            self._keys.add(name, key.get_name(), key)
            self._append(name, key)
            return True

    def _append(self, name: str, key: paramiko.PKey) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        line = HostKeyEntry([name], key).to_line()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
