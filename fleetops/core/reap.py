"""A command that times out is ended on the host too, not just abandoned.

Without a pty no signal reaches a remote command when its channel closes (sshd only
closes its pipes; ``sleep 300`` never notices). So every command sent over SSH with a
timeout carries a per-run nonce in its environment (:func:`tag`: ``FLEETOPS_RUN=NONCE;
export FLEETOPS_RUN;`` in front of the command, inside sudo's shell when it runs with
become, so sudo's ``env_reset`` cannot drop it). Environments are inherited through
fork and exec, so every process the command started carries it. On timeout
:func:`kill_script` runs over the same connection (through sudo when the command did):
it finds the processes whose ``/proc/PID/environ`` holds the nonce (Linux proc(5)),
sends SIGTERM to each and to its process group (the shell waiting for it, its
pipeline), waits up to :data:`GRACE_S` for them to go, then SIGKILLs what is left.
Nothing is added to the normal path: the nonce rides in the one exec request.
A process that clears its own environment (``env -i``) is not found.
"""

from __future__ import annotations

import secrets
import shlex

#: The environment variable that marks a command's processes.
ENV = "FLEETOPS_RUN"
#: Seconds between SIGTERM and SIGKILL.
GRACE_S = 2.0
#: Seconds the kill command may take (grace, a second of SIGKILLs, scans of /proc on a
#: busy host, sudo, round trips).
KILL_TIMEOUT_S = GRACE_S + 8.0


def nonce() -> str:
    """A fresh random marker for one command (16 hex digits)."""
    return secrets.token_hex(8)


def tag(command: str, mark: str) -> str:
    """``command`` run with ``FLEETOPS_RUN=mark`` in its environment.

    fleetops's own commands (``/bin/sh -c ...``: the shipped programs' bootstrap) get
    ``exec env FLEETOPS_RUN=mark`` in front, which every login shell reads alike (sh,
    bash, zsh, csh/tcsh, fish). A user's ad-hoc command is in the login shell's own
    syntax, so it gets POSIX sh's ``FLEETOPS_RUN=mark; export FLEETOPS_RUN;``: a csh or
    tcsh login shell answers that with two "Command not found" lines on stderr and the
    command is not found again on timeout (README "Timeouts")."""
    if command.startswith("/bin/sh -c "):
        return f"exec env {ENV}={mark} {command}"
    return f"{ENV}={mark}; export {ENV}; {command}"


def kill_script(mark: str, grace: float = GRACE_S) -> str:
    """``/bin/sh -c`` of :func:`kill_posix` (any login shell, csh included, runs it)."""
    return f"/bin/sh -c {shlex.quote(kill_posix(mark, grace))}"


def kill_posix(mark: str, grace: float = GRACE_S) -> str:
    """A POSIX sh script that ends every process marked ``mark`` (see the module
    docstring): each marked process and its process group get one SIGTERM (the groups
    are remembered: a shell that ignores SIGTERM keeps its group alive between its
    children); every 0.1 s it checks what is left (and looks for new marked processes
    every 0.5 s); after ``grace`` seconds SIGKILL until none is left. Exit status 0:
    none left; 1: some survived a second of SIGKILLs, or the host has no /proc."""
    ticks = max(1, round(grace * 10))
    return (
        f"n={mark}; i=0; gs=; seen=; t=; l=; "
        # found: "PID -PGID" of every process whose environment holds the mark
        "found() { for e in $(grep -lsF " + ENV + "=$n /proc/[0-9]*/environ); do "
        "p=${e#/proc/}; p=${p%/environ}; "
        "{ read -r s < /proc/$p/stat; } 2>/dev/null || continue; "
        "s=${s##*) }; set -- $s; echo \"$p -$3\"; done; }; "
        # scan: t = what is marked now; groups remembered; SIGTERM once to each newcomer
        "scan() { t=$(found); for x in $t; do case \" $seen \" in *\" $x \"*) ;; *) "
        "seen=\"$seen $x\"; [ $i -ge " + str(ticks) + " ] || kill -s TERM -- $x 2>/dev/null; "
        "case $x in -*) gs=\"$gs $x\";; esac;; esac; done; }; "
        # live: l = what of t and the groups still exists; false when nothing
        "live() { l=; for x in $t $gs; do kill -s 0 -- $x 2>/dev/null && l=\"$l $x\"; done; "
        "[ -n \"$l\" ]; }; "
        "[ -d /proc/self ] || exit 1; scan; "
        "while :; do "
        "[ $i -gt 0 ] && [ $((i % 5)) = 0 ] && scan; "
        "live || exit 0; "
        f"[ $i -ge {ticks} ] && for x in $l; do kill -s KILL -- $x 2>/dev/null; done; "
        f"[ $i -ge {ticks + 10} ] && exit 1; "
        "i=$((i + 1)); sleep 0.1 2>/dev/null || sleep 1; done"
    )
