"""invoke lab.*: a local fleet of real OpenSSH hosts to test and demo against."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

from invoke import Exit, task

REPO = Path(__file__).resolve().parents[2]
EXIT_NOT_RUNNING = 3

_HELP = {
    "root": "lab state dir (env FLEETOPS_LAB_DIR; default <repo>/.lab)",
    "inventory": "inventory to write (env FLEETOPS_LAB_INVENTORY; default inventory/lab.ini)",
    "prefix": "address prefix 127.N (env FLEETOPS_LAB_PREFIX; default 127.77)",
}


def _lab(root: str | None = None, inventory: str | None = None, prefix: str | None = None):
    from fleetops.lab.lab import Lab

    state = root or os.environ.get("FLEETOPS_LAB_DIR") or REPO / ".lab"
    inv = inventory or os.environ.get("FLEETOPS_LAB_INVENTORY") or REPO / "inventory" / "lab.ini"
    return Lab(state, inv, prefix or os.environ.get("FLEETOPS_LAB_PREFIX") or "127.77")


def _one_line_errors(func):
    """Turn lab errors (and not being root) into one line on stderr and the error's exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from fleetops.errors import FleetopsError
        from fleetops.lab.lab import require_root

        try:
            require_root()
            return func(*args, **kwargs)
        except FleetopsError as exc:
            raise Exit(f"lab: {exc}", code=exc.exit_code) from None

    return wrapper


def _short(path: str | Path) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@task(auto_shortflags=False, help={"hosts": "number of ordinary hosts (1..999, default 16)",
            "reuse": "keep an already running healthy lab with the same hosts and profile",
            "profile": "default | mixed (adds a bastion, sudo, certificate, password... "
                       "hosts: see docs/lab.md)",
            "hidden": "mixed profile: hosts behind the bastion (1..250, default 2)",
            **_HELP})
@_one_line_errors
def up(c, hosts=16, reuse=False, root=None, inventory=None, prefix=None, profile="default",
       hidden=2):
    """Start the lab: N sshd hosts on 127.N.0.x:2222, each with its own root and namespaces."""
    lab = _lab(root, inventory, prefix)
    seconds = lab.up(int(hosts), reuse=reuse, profile=profile, hidden=int(hidden))
    done = "already running (reused)" if reuse and seconds == 0.0 else f"up in {seconds:.1f}s"
    extra = f" + {len(lab.hosts) - int(hosts)} mixed" if profile == "mixed" else ""
    print(f"lab: {hosts} hosts{extra} {done}; inventory {_short(lab.inventory_path)}, "
          f"key {_short(lab.client_key)}")
    if profile == "mixed":
        print(f"lab: ssh -F {_short(lab.mixed().ssh_config)} HOST (docs/lab.md)")


@task(auto_shortflags=False, help={"root": _HELP["root"], "inventory": "inventory to remove if lab.json is broken"})
@_one_line_errors
def down(c, root=None, inventory=None):
    """Stop the lab: kill its processes, drop its namespaces, remove its files. Safe to repeat."""
    lab = _lab(root, inventory)
    result = lab.down()
    what = ", ".join(_short(p) for p in result["removed"]) or "no files"
    print(f"lab: down ({result['processes']} processes killed; removed {what})")


@task(name="status", auto_shortflags=False, help={"json": "print the status as JSON", "root": _HELP["root"]})
@_one_line_errors
def status(c, json_=False, root=None):
    """Show each lab host: up / stopped / frozen / rekeyed / gone, and its sshd pid."""
    lab = _lab(root)
    st = lab.status()
    if json_:
        print(json.dumps(st, indent=2))
    else:
        for name, h in st["hosts"].items():
            extra = "  nopython" if h["nopython"] else ""
            pid = f"pid {h['pid']}" if h["pid"] else "-"
            print(f"{name}  {h['address']}:{h['port']}  {h['state']:<8} {pid}{extra}")
    if not st["running"]:
        raise Exit(f"lab: not running (no live lab in {_short(lab.state_dir)})",
                   code=EXIT_NOT_RUNNING)
    if not json_:
        print(f"lab: {len(st['hosts'])} hosts, {st['up']} up; inventory "
              f"{_short(st['inventory'])}")


@task(auto_shortflags=False, help={"host": "a host name (lab01...) or 'all'",
            "kind": "stop | freeze | rekey | nopython | heal", "root": _HELP["root"]})
@_one_line_errors
def fault(c, host, kind, root=None):
    """Inject a fault into a lab host (stop, freeze, rekey, nopython) or heal it."""
    lab = _lab(root)
    lab.fault(host, kind)
    states = lab.status()["hosts"]
    names = list(states) if host == "all" else [host]
    shown = ", ".join(f"{n} {states[n]['state']}" for n in names[:4])
    more = f" (+{len(names) - 4} more)" if len(names) > 4 else ""
    print(f"lab: {kind} {host}: {shown}{more}")
