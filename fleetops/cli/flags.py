"""Ansible's short flags, the same on every task (``ansible``/``ansible-playbook`` spellings).

Invoke gives each option the first free letter of its name, so short flags used to
depend on the order of a task's parameters (``-e`` was ``--deadline`` in ``play``,
``-f`` the output format in ``disk-report``). :func:`task` is invoke's ``@task`` with
these letters fixed wherever the option exists, and never given to another option:

=====  ===================  ==================================
flag   option               Ansible
=====  ===================  ==================================
``-i``  ``--inventory``      ``-i, --inventory``
``-l``  ``--limit``          ``-l, --limit``
``-f``  ``--forks``          ``-f, --forks``
``-e``  ``--extra-vars``     ``-e, --extra-vars``
``-b``  ``--become``         ``-b, --become``
``-K``  ``--ask-become-pass``  ``-K, --ask-become-pass``
``-k``  ``--ask-pass``       ``-k, --ask-pass``
``-C``  ``--check``          ``-C, --check``
``-D``  ``--diff``           ``-D, --diff``
``-u``  ``--remote-user``    ``-u, --user`` (login user)
``-T``  ``--timeout``        ``-T, --timeout`` (connect timeout)
=====  ===================  ==================================

Other options keep invoke's automatic letters (first free letter of the name, skipping
the reserved ones above), so ``run -p PATTERN`` stays. ``--remote-user`` is spelled
long that way because ``cron.*`` already has ``--user`` (the crontab owner, as in
Ansible's cron module).
"""

from __future__ import annotations

from typing import Any

from invoke.tasks import Task

ANSIBLE_SHORT: dict[str, str] = {
    "inventory": "i", "limit": "l", "forks": "f", "extra_vars": "e", "become": "b",
    "ask_become_pass": "K", "ask_pass": "k", "check": "C", "diff": "D",
    "remote_user": "u", "timeout": "T",
}
RESERVED = frozenset(ANSIBLE_SHORT.values())


class AnsibleFlagsTask(Task):
    """A task whose short flags follow :data:`ANSIBLE_SHORT` (see the module doc)."""

    def arg_opts(self, name: str, default: Any, taken_names: set[str]) -> dict[str, Any]:
        auto = self.auto_shortflags
        try:
            self.auto_shortflags = False
            opts = super().arg_opts(name, default, taken_names)
        finally:
            self.auto_shortflags = auto
        names = opts["names"]
        if name in ANSIBLE_SHORT:
            names.append(ANSIBLE_SHORT[name])
        elif auto:
            long_name = names[0]
            for char in long_name:
                if char != long_name and char not in taken_names and char not in RESERVED \
                        and char.isalpha():
                    names.append(char)
                    break
        return opts


def task(*args: Any, **kwargs: Any) -> Any:
    """invoke's ``@task`` (with or without arguments) using :class:`AnsibleFlagsTask`."""
    from invoke import task as invoke_task

    kwargs.setdefault("klass", AnsibleFlagsTask)
    return invoke_task(*args, **kwargs)
