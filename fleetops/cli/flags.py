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
(its old ``-u`` is now the login user, as in Ansible). A task's own options keep invoke's
automatic letters (first free letter of the name, skipping the reserved ones above and
``-p``, the pattern's), or the one given in ``@task(letters={...})``. The shared fleet
options (:mod:`fleetops.cli.options`) come after them: ``-p`` for ``--pattern`` always, and
``-j --json``, ``-a --accept-new``, ``-r --retry-file``, ``-c --command-timeout``,
``-d --deadline``, ``-x --max-output`` where the task's own options left that letter free;
the others are long-only.

``-u/--remote-user`` is added to every task that takes ``--inventory``: it is the login user
of hosts whose inventory gives none (``ansible_user``/``fleetops_user`` win, as in Ansible,
and it wins over ``~/.ssh/config``'s ``User`` like ``ssh -o User=``). It is spelled long that
way because ``cron.*`` already has ``--user`` (the crontab owner, as in Ansible's cron
module). :func:`remote_user` gives the value to :func:`fleetops.cli.common.targets`.
"""

from __future__ import annotations

import inspect
from typing import Any

from invoke.parser import Argument
from invoke.tasks import Task

from fleetops.cli.checks import _REMOTE_USER, remote_user  # noqa: F401  (remote_user: for tasks)
from fleetops.cli.exits import cli_errors
from fleetops.cli.options import BY_NAME, option_set

ANSIBLE_SHORT: dict[str, str] = {
    "inventory": "i", "limit": "l", "forks": "f", "extra_vars": "e", "become": "b",
    "ask_become_pass": "K", "ask_pass": "k", "check": "C", "diff": "D",
    "remote_user": "u", "timeout": "T",
}
BOOLEAN = frozenset({"become", "ask_become_pass", "ask_pass", "check", "diff"})
LONG_ONLY = frozenset({"format", "user"})  # "user": cron.*'s crontab owner; -u is the login user
RESERVED = frozenset(ANSIBLE_SHORT.values())
# what a task that reads an inventory but declares no fleet options still gets
_CONNECTS = ("remote_user", "vault_password_file", "ask_vault_pass")



class AnsibleFlagsTask(Task):
    """A task whose short flags follow :data:`ANSIBLE_SHORT` (see the module doc) and that
    takes the shared fleet options its body declares with
    :func:`fleetops.cli.options.fleet_options` (handed to the body as ``opts``)."""

    def __init__(self, body: Any, *args: Any, letters: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        # own option -> its one-letter flag ("" none), where the automatic one would differ
        # from the letter it had before the shared options moved after the task's own
        self.letters = dict(letters or {})
        self.shared = getattr(body, "__fleet_options__", None)
        self.gives_opts = self.shared is not None
        if self.shared is None and _reads_inventory(body):
            self.shared = option_set(exclude=[o for o in BY_NAME if o not in _CONNECTS])
        super().__init__(body, *args, **kwargs)

    def argspec(self, body: Any) -> inspect.Signature:
        """The body's parameters without ``c`` and, for a fleet task, without ``opts``."""
        sig = super().argspec(body)
        if not getattr(self, "gives_opts", False):
            return sig
        return sig.replace(parameters=[p for p in sig.parameters.values() if p.name != "opts"])

    def reserved(self) -> frozenset[str]:
        """Letters the task's own options never get automatically: Ansible's and the
        fixed ones of its shared options (``-p``)."""
        shared = self.shared.options() if self.shared is not None else ()
        return RESERVED | {o.short for o in shared if o.short}

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
        elif name in self.letters:
            names.extend([self.letters[name]] if self.letters[name] else [])
        elif auto and name not in LONG_ONLY and name not in ANSIBLE_SHORT:
            letter = _free_letter(names[0], taken_names | set(self.letters.values()),
                                  self.reserved())
            if letter:
                names.append(letter)
        return opts

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        """The body's own options, then the shared ones: each with its fixed letter, or its
        usual letter unless one of the task's own options has it (never another meaning)."""
        args = super().get_arguments(ignore_unknown_help)
        if self.shared is None:
            return args
        taken = {name for arg in args for name in arg.names}
        for option in self.shared.options():
            names = [option.long]
            if option.short:
                names.append(option.short)
            elif option.letter and option.letter not in taken and self.auto_shortflags:
                names.append(option.letter)
            taken.update(names)
            attr = option.name if option.name != option.long else None
            args.append(Argument(names=tuple(names), attr_name=attr, kind=option.kind,
                                 default=self.shared.default(option.name),
                                 help=self.shared.help(option.name)))
        return args

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.shared is None:
            return super().__call__(*args, **kwargs)
        with cli_errors():
            opts = self.shared.resolve(kwargs)  # a bad value: one line, exit 5
        _vault_options(opts.vault_password_file, opts.ask_vault_pass)
        if self.gives_opts:
            kwargs["opts"] = opts
        token = _REMOTE_USER.set(opts.remote_user or None)
        try:
            return super().__call__(*args, **kwargs)
        finally:
            _REMOTE_USER.reset(token)


def _free_letter(long_name: str, taken: set[str], reserved: frozenset[str]) -> str:
    """Invoke's automatic short flag: the first letter of the name not taken or reserved."""
    for char in long_name:
        if char != long_name and char not in taken and char not in reserved and char.isalpha():
            return char
    return ""


def _reads_inventory(body: Any) -> bool:
    params = inspect.signature(body).parameters
    return "inventory" in params and "remote_user" not in params


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
