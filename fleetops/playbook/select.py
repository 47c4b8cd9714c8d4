"""Every play's hosts, resolved from the inventory before any host is contacted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fleetops.errors import InputError
from fleetops.playbook.load import Play, Playbook
from fleetops.playbook.templating import RenderError, templated


def play_pattern(book: Playbook, play: Play, extra_vars: dict[str, Any]) -> str:
    """A play's ``hosts``; a templated one (``"{{ target | default('all') }}"``) is rendered
    with the play's vars and the extra vars, as Ansible does (no host vars exist yet).
    InputError (exit 4, the play's line) when it renders to no pattern."""
    if not templated(play.hosts):
        return play.hosts
    try:
        pattern = book.renderer.value(play.hosts, {**play.vars, **extra_vars})
    except RenderError as exc:
        raise InputError(f"play {play.name!r}: hosts: {exc}", book.path,
                         play.hosts_line) from None
    if isinstance(pattern, list) and all(isinstance(p, str) for p in pattern):
        pattern = ":".join(pattern)
    if not isinstance(pattern, str) or not pattern.strip():
        raise InputError(f"play {play.name!r}: hosts renders to {pattern!r}, not a pattern",
                         book.path, play.hosts_line)
    return pattern


def select_hosts(book: Playbook, inventory: Any, limit: str | None,
                 extra_vars: dict[str, Any] | None = None,
                 adjust: Callable[[list], list] | None = None) -> list[tuple[Play, list]]:
    """``[(play, hosts)]`` for every play of ``book`` over a loaded ``inventory``
    (:class:`fleetops.inventory.load.Inventory`) and ``--limit``; ``adjust(hosts)`` may
    rewrite each play's hosts (the CLI's ``-u/--remote-user``). InputError (exit 4) for
    an empty inventory, a bad pattern or limit (naming the play's line), or when no play
    selects any host."""
    if not len(inventory):
        raise InputError("the inventory has no hosts", inventory.path)
    if limit:
        inventory.select("all", limit)  # a bad --limit is reported as such
    selections = []
    for play in book.plays:
        pattern = play_pattern(book, play, extra_vars or {})
        try:
            hosts = inventory.select(pattern, limit)
            selections.append((play, adjust(hosts) if adjust else hosts))
        except InputError as exc:
            raise InputError(f"play {play.name!r}: hosts {pattern!r}: {exc}", book.path,
                             play.hosts_line) from None
    if not any(hosts for _, hosts in selections):
        where = " with --limit " + repr(limit) if limit else ""
        raise InputError(f"no play selects any host of {inventory.path}{where}", book.path,
                         book.plays[0].hosts_line if book.plays else None)
    return selections
