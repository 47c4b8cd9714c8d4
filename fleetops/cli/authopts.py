"""Options shared by every task that changes hosts: sudo and passwords (no heavy imports).

A task declares them with ``help={..., **AUTH_HELP}`` and passes them to
``common.runner_options``. Secrets come from the environment or are asked once per run
on the terminal; without a terminal, asking is a one-line error (exit 5)."""

AUTH_HELP = {
    "become": "run with sudo (per host: ansible_become, ansible_become_user, ...)",
    "become-user": "sudo to this user (default root)",
    "ask-become-pass": "prompt once for the sudo password (or FLEETOPS_BECOME_PASSWORD)",
    "ask-pass": "prompt once for the SSH login password (or FLEETOPS_PASSWORD)",
}
# for tasks that word their own --become help
ASK_HELP = {key: AUTH_HELP[key] for key in ("ask-become-pass", "ask-pass")}
