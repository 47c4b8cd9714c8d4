"""A ProxyCommand that adds a fixed one-way delay: ``delayrelay.py HOST PORT MS``.

Bytes from stdin go to HOST:PORT and bytes from there go to stdout, each chunk held
for MS milliseconds, order kept: a round trip through it costs 2*MS more. Used by
``invoke bench.disk-rtt`` to count round trips per host (time difference / RTT) on
the lab, where ``tc netem`` on the shared loopback would slow everyone's traffic.
Stdlib only, no shell; only for 127.0.0.0/8 targets.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections import deque


def _pump(read, write, delay: float, done: threading.Event) -> None:
    """Forward chunks from ``read()`` to ``write(data)`` ``delay`` seconds after arrival."""
    queue: deque[tuple[float, bytes]] = deque()
    ready = threading.Condition()

    def sender() -> None:
        while True:
            with ready:
                while not queue:
                    ready.wait()
                due, data = queue[0]
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            with ready:
                queue.popleft()
            if not data:
                done.set()
                return
            try:
                write(data)
            except OSError:
                done.set()
                return

    threading.Thread(target=sender, daemon=True).start()
    while True:
        try:
            data = read()
        except OSError:
            data = b""
        with ready:
            queue.append((time.monotonic() + delay, data))
            ready.notify()
        if not data:
            return


def main(argv: list[str]) -> int:
    host, port, millis = argv[1], int(argv[2]), float(argv[3])
    if not host.startswith("127."):
        print("delayrelay: only 127.0.0.0/8 targets", file=sys.stderr)
        return 2
    sock = socket.create_connection((host, port), timeout=10)
    sock.settimeout(None)
    delay = millis / 1000
    done = threading.Event()

    def to_stdout(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(1, view):]

    def close_remote_write(data: bytes) -> None:
        sock.sendall(data)

    up = threading.Thread(target=_pump, args=(lambda: os.read(0, 65536), close_remote_write,
                                              delay, threading.Event()), daemon=True)
    up.start()
    _pump(lambda: sock.recv(65536), to_stdout, delay, done)
    done.wait(delay + 5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
