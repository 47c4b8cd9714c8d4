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

The boolean ones (``-b -K -k -C -D``) are given only to boolean options (``watcher.start
--check`` is a check spec, not check mode, and gets no ``-C``). ``--format`` (``disk-report``,
``scan``) is long-only: its old ``-f`` is Ansible's forks; so is ``cron.*``'s ``--user``
(its old ``-u`` is now the login user, as in Ansible). Other options keep invoke's
automatic letters (first free letter of the name, skipping the reserved ones above), so
``run -p PATTERN`` stays.

``-u/--remote-user`` is added to every task that takes ``--inventory``: it is the login user
of hosts whose inventory gives none (``ansible_user``/``fleetops_user`` win, as in Ansible,
and it wins over ``~/.ssh/config``'s ``User`` like ``ssh -o User=``). It is spelled long that
way because ``cron.*`` already has ``--user`` (the crontab owner, as in Ansible's cron
module). :func:`remote_user` gives the value to :func:`fleetops.cli.common.targets`.
"""

from __future__ import annotations

import contextvars
import inspect
from typing import Any

from invoke.parser import Argument
from invoke.tasks import Task

from fleetops.cli.exits import cli_errors

ANSIBLE_SHORT: dict[str, str] = {
    "inventory": "i", "limit": "l", "forks": "f", "extra_vars": "e", "become": "b",
    "ask_become_pass": "K", "ask_pass": "k", "check": "C", "diff": "D",
    "remote_user": "u", "timeout": "T",
}
BOOLEAN = frozenset({"become", "ask_become_pass", "ask_pass", "check", "diff"})
LONG_ONLY = frozenset({"format", "user"})  # "user": cron.*'s crontab owner; -u is the login user
RESERVED = frozenset(ANSIBLE_SHORT.values())
REMOTE_USER_HELP = ("login user for hosts whose inventory sets none (ansible_user wins; "
                    "default: ~/.ssh/config, else the local user)")


_REMOTE_USER: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fleetops_remote_user", default=None)


def remote_user() -> str | None:
    """The ``-u/--remote-user`` of the running task (None: not given)."""
    return _REMOTE_USER.get()


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
        letter = ANSIBLE_SHORT.get(name)
        if letter and (name not in BOOLEAN or isinstance(default, bool)):
            names.append(letter)
        elif auto and name not in LONG_ONLY and name not in ANSIBLE_SHORT:
            long_name = names[0]
            for char in long_name:
                if char != long_name and char not in taken_names and char not in RESERVED \
                        and char.isalpha():
                    names.append(char)
                    break
        return opts

    def _connects(self) -> bool:
        params = inspect.signature(self.body).parameters
        return "inventory" in params and "remote_user" not in params

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        args = super().get_arguments(ignore_unknown_help)
        if self._connects():
            args.append(Argument(names=("remote-user", "u"), attr_name="remote_user",
                                 kind=str, default=None, help=REMOTE_USER_HELP))
            args.append(Argument(names=("vault-password-file",),
                                 attr_name="vault_password_file", kind=str, default=None,
                                 help=VAULT_FILE_HELP))
            args.append(Argument(names=("ask-vault-pass",), attr_name="ask_vault_pass",
                                 kind=bool, default=False, help=ASK_VAULT_HELP))
        return args

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self._connects():
            return super().__call__(*args, **kwargs)
        _vault_options(kwargs.pop("vault_password_file", None),
                       kwargs.pop("ask_vault_pass", False))
        token = _REMOTE_USER.set(kwargs.pop("remote_user", None) or None)
        try:
            return super().__call__(*args, **kwargs)
        finally:
            _REMOTE_USER.reset(token)


VAULT_FILE_HELP = ("file holding the vault password for !vault values and encrypted files "
                   "(read, never run; or ANSIBLE_VAULT_PASSWORD_FILE)")
ASK_VAULT_HELP = "ask once for the vault password (needs a terminal)"


def _vault_options(password_file: str | None, ask: bool) -> None:
    """``--vault-password-file``/``--ask-vault-pass`` before the inventory is read; a bad
    file is exit 4, asking without a terminal exit 5 (one line, like every option)."""
    if not password_file and not ask:
        return
    import os

    from fleetops.errors import OptionError
    from fleetops.inventory import vault

    with cli_errors():
        if ask:
            try:
                os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
            except OSError:
                raise OptionError("--ask-vault-pass needs a terminal to ask on (or use "
                                  "--vault-password-file)") from None
        vault.configure(password_file, ask)


def task(*args: Any, **kwargs: Any) -> Any:
    """invoke's ``@task`` (with or without arguments) using :class:`AnsibleFlagsTask`."""
    from invoke import task as invoke_task

    kwargs.setdefault("klass", AnsibleFlagsTask)
    return invoke_task(*args, **kwargs)
