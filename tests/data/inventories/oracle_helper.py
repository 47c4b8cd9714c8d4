"""Ask ansible-core about one inventory: run by tests/test_ansible_oracle.py, never imported.

Usage: ``python oracle_helper.py`` with a JSON request on stdin:
``{"source": PATH, "cases": [[PATTERN, LIMIT_OR_NULL], ...], "vault_password_file": P}``.

Runs ansible-core's own command-line classes in this one process (much faster than one
``ansible`` process per pattern): ``ansible-inventory -i SOURCE --list`` once, and
``ansible -i SOURCE PATTERN --list-hosts [--limit LIMIT]`` for each case, three times:
as installed, then with the group walk visiting each level's groups sorted by name,
then reverse-sorted. ansible-core walks a level of nested groups by iterating a Python
set (an order that changes from run to run), so when the two sorted walks disagree,
or the real run matches neither, the case is reported with ``"ordered": false``
(compare as a set). Prints one JSON object on stdout.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys


def _reset() -> None:
    from ansible.parsing.vault import VaultSecretsContext
    from ansible.utils.context_objects import GlobalCLIArgs
    from ansible.utils.display import Display

    VaultSecretsContext._current = None  # one CLI run per process is all ansible expects
    GlobalCLIArgs._Singleton__instance = None
    Display()._warns.clear()  # each run warns as a fresh process would


def _run(cls, argv: list[str]) -> tuple[int, str, str]:
    _reset()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cls(argv).run()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception as exc:  # an AnsibleError is the CLI's exit with a message
            print(f"ERROR: {exc}", file=err)
            code = 1
    return code or 0, out.getvalue(), err.getvalue()


def _sorted_walk(reverse: bool):
    """Group._walk_relationship visiting each level of the DAG in name order."""

    def walk(self, rel, include_self=False, preserve_ordering=False):
        first = list(getattr(self, rel))
        ordered = ([self] if include_self else []) + first
        level = ([self] if include_self else []) + first
        seen: set = set()
        while level:
            seen.update(level)
            following: list = []
            for group in sorted(set(level), key=lambda g: g.name, reverse=reverse):
                for item in getattr(group, rel):
                    following.append(item)
                    if item not in seen:
                        ordered.append(item)
            level = [g for g in dict.fromkeys(following) if g not in seen]
        return ordered if preserve_ordering else seen

    return walk


def _three_ways(argv: list[str]) -> tuple[tuple[int, str, str], bool]:
    """The real run, and whether its host order does not depend on set order."""
    from ansible.inventory.group import Group

    real = Group._walk_relationship
    try:
        runs = [_run_adhoc(argv)]
        for reverse in (False, True):
            Group._walk_relationship = _sorted_walk(reverse)
            runs.append(_run_adhoc(argv))
    finally:
        Group._walk_relationship = real
    return runs[0], runs[1][1] == runs[2][1] == runs[0][1]


def _run_adhoc(argv: list[str]) -> tuple[int, str, str]:
    from ansible.cli.adhoc import AdHocCLI

    return _run(AdHocCLI, argv)


def _hosts(text: str) -> list[str]:
    lines = text.splitlines()
    return [line.strip() for line in lines[1:] if line.strip()] if lines else []


def main() -> None:
    import warnings

    warnings.simplefilter("ignore")
    from ansible.cli.inventory import InventoryCLI

    real_stdout = os.dup(1)
    request = json.load(sys.stdin)
    source = request["source"]
    extra = []
    if request.get("vault_password_file"):
        extra = ["--vault-password-file", request["vault_password_file"]]
    code, out, err = _run(InventoryCLI, ["ansible-inventory", "-i", source, "--list", *extra])
    answer = {"list": json.loads(out) if code == 0 else None, "list_error": err if code else ""}
    cases = []
    for pattern, limit in request["cases"]:
        argv = ["ansible", "-i", source, pattern, "--list-hosts", *extra]
        if limit is not None:
            argv += ["--limit", limit]
        (code, out, err), ordered = _three_ways(argv)
        cases.append({
            "hosts": _hosts(out) if code == 0 else [],
            "ordered": ordered,
            "warnings": [w for w in err.splitlines() if "WARNING" in w],
            "error": err.strip().splitlines()[-1] if code else "",
        })
    answer["cases"] = cases
    os.write(real_stdout, json.dumps(answer).encode())


if __name__ == "__main__":
    main()
