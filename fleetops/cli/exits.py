"""User mistakes become one line on stderr and the documented exit code (light: no
paramiko, imported by every task module)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from invoke.exceptions import Exit

from fleetops.errors import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, FleetopsError


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """User mistakes become one line on stderr and the documented exit code."""
    try:
        yield
    except FleetopsError as exc:
        from fleetops.sanitize import clean

        raise Exit(f"fleetops: {clean(str(exc))}", code=exc.exit_code) from None
    except KeyboardInterrupt:
        raise Exit("fleetops: interrupted", code=EXIT_INTERRUPTED) from None
    except BrokenPipeError:  # stdout closed by its reader (``| head``): end quietly
        from fleetops.cli.program import quiet_broken_pipe

        quiet_broken_pipe()
        raise Exit(code=EXIT_BROKEN_PIPE) from None
