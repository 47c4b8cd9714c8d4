"""The zipapp handshake as a stdin dialog (``fleetops.core.transport.Dialog``), apart from
any transport.

The bootstrap's loader (``fleetops.ship.run``) answers on a line of its own:
``REQUEST_MARKER`` asks for the zipapp, ``READY_MARKER`` says the cached copy passed its
check, ``ABORT_MARKER`` says it refused (its reason follows on stderr). The transport
keeps stdin open until :meth:`Handshake.reply` returns what to send; then it sends that
and closes stdin. The transport knows nothing of markers: it only calls ``reply`` with
the stdout seen so far (which ``reply`` may cut) until it answers.

Shell start-up files (``.bashrc``, ``/etc/bash.bashrc``, ``.cshrc``, ``.profile``) run
before the command and may print anything: everything before the first line that is
exactly a marker is their noise and is dropped. The remote prints each marker after a
newline, so a half line of noise cannot hide it. No marker within ``HANDSHAKE_LIMIT``
bytes is a :class:`FramingError` (the host ``failed``).
"""

from __future__ import annotations

import re

REQUEST_MARKER = b"FLEETOPS-SEND-STDIN"
READY_MARKER = b"FLEETOPS-READY"
ABORT_MARKER = b"FLEETOPS-ABORT"
HANDSHAKE_LIMIT = 64 * 1024
HANDSHAKE_ROOM = 65536  # stdout kept beyond the cap until the handshake line is seen
_MARKER_LINE = re.compile(rb"^(%s|%s|%s)\r?\n" % (REQUEST_MARKER, READY_MARKER, ABORT_MARKER),
                          re.M)


class FramingError(Exception):
    """The remote never printed the shipping handshake line (too much start-up noise)."""


def take_handshake(out: bytearray) -> bytes | None:
    """The first marker line in ``out`` (noise before it and the line itself are removed
    from ``out``); None while none has arrived; FramingError past ``HANDSHAKE_LIMIT``."""
    found = _MARKER_LINE.search(out)
    if found is None:
        if len(out) <= HANDSHAKE_LIMIT:
            return None
        raise FramingError(f"no fleetops handshake in the first {HANDSHAKE_LIMIT // 1024} "
                           "KiB of output: shell start-up files (.bashrc, .cshrc, "
                           f"/etc/bash.bashrc) print too much? first bytes: {bytes(out[:60])!r}")
    marker = bytes(found.group(1))  # before the del: a match reads its buffer lazily
    del out[: found.end()]
    return marker


class Handshake:
    """``payload`` (the zipapp) only when asked, ``after`` (the program's stdin) unless
    the loader refused.

    ``room``: stdout bytes a transport keeps beyond its ``max_output`` cap until the
    handshake line is seen (the line and the noise before it are not the program's)."""

    room = HANDSHAKE_ROOM

    def __init__(self, payload: bytes, after: bytes = b"") -> None:
        self.payload = payload
        self.after = after

    def reply(self, out: bytearray) -> bytes | None:
        """None while no marker line has arrived; else the bytes to send before EOF
        (the marker line and the noise before it are removed from ``out``)."""
        if b"\n" not in out:
            return None
        marker = take_handshake(out)
        if marker is None:
            return None
        answer = self.payload if marker == REQUEST_MARKER else b""
        return answer if marker == ABORT_MARKER else answer + self.after
