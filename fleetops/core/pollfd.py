"""Wait for readable file descriptors with poll(2), not select(2).

``select.select`` refuses descriptors numbered 1024 and above (FD_SETSIZE), which a run
with many hosts at once reaches (a socket and a channel pipe per host).
"""

from __future__ import annotations

import select
from typing import Any


def _fd(item: Any) -> int:
    return item if isinstance(item, int) else item.fileno()


def readable(items: list[Any], timeout: float | None) -> list[Any]:
    """The ``items`` (ints or objects with ``fileno()``) that are readable, at EOF or in
    error within ``timeout`` seconds (None: wait forever); [] on timeout."""
    poller = select.poll()
    by_fd = {}
    for item in items:
        fd = _fd(item)
        by_fd[fd] = item
        poller.register(fd, select.POLLIN | select.POLLPRI)
    wait = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
    return [by_fd[fd] for fd, _ in poller.poll(wait) if fd in by_fd]
