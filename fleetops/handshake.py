"""The zipapp handshake as a stdin dialog (``fleetops.transport.Dialog``), apart from
any transport.

A bootstrap command (``fleetops.ship``) answers on its first stdout line:
``REQUEST_MARKER`` asks for the zipapp, ``READY_MARKER`` says it is cached. The
transport keeps stdin open until :meth:`Handshake.reply` returns what to send; then it
sends that and closes stdin. The transport knows nothing of markers: it only calls
``reply`` with the stdout seen so far (which ``reply`` may cut) until it answers.
"""

from __future__ import annotations

REQUEST_MARKER = b"FLEETOPS-SEND-STDIN"
READY_MARKER = b"FLEETOPS-READY"
HANDSHAKE_ROOM = 65536  # stdout kept beyond the cap until the handshake line is seen


class Handshake:
    """``payload`` (the zipapp) only when asked, ``after`` (the program's stdin) always.

    ``room``: stdout bytes a transport keeps beyond its ``max_output`` cap until the
    handshake line is seen (the line itself is not the program's output)."""

    room = HANDSHAKE_ROOM

    def __init__(self, payload: bytes, after: bytes = b"") -> None:
        self.payload = payload
        self.after = after

    def reply(self, out: bytearray) -> bytes | None:
        """None while the first line has not arrived; else the bytes to send before EOF
        (the marker line is removed from ``out``; any other first line is the program's
        own output, left as it is, and stdin is closed with nothing sent)."""
        if b"\n" not in out:
            return None
        line = bytes(out).partition(b"\n")[0]
        if line not in (REQUEST_MARKER, READY_MARKER):
            return b""
        del out[: len(line) + 1]
        return (self.payload if line == REQUEST_MARKER else b"") + self.after
