"""Manage named cron jobs: user crontabs, /etc/cron.d files and run-parts scripts.

``install`` and ``remove`` are idempotent and touch only the named entry;
``list`` shows fleetops- and Ansible-managed entries plus foreign ones. Jobs run
under ``flock -n`` (never overlapping; the lock file lives in a directory only the
job's user or root can write, see :mod:`ops._lockdir`), ``/bin/sh`` and an explicit PATH. Files
are written atomically (temp file in the same directory, fsync, rename) with
explicit modes; user crontabs go through the real ``crontab`` binary. Anything
replaced is first backed up (mode 0600) under ``--backup-dir``.
"""
import os
import pwd
import shutil
import stat

from ops import _cronfs as fs
from ops import _crontab as ct
from ops import _lockdir
from ops._argspec import SUPPRESS, Arg, Command
from ops._contract import Outcome, Program, ProgramError

_DIRS = dict((t, "/etc/" + t) for t in ct.FILE_TARGETS)
_FILE_MODES = {"cron.d": 0o644}
_SCRIPT_MODE = 0o755
_KEEP = object()  # a plan's "leave the file exactly as it is"
DIFF_MAX_CHARS = 512 * 1024  # as ops/files: over it (or binary) the diff is one line


_ROOT_HELP = "prefix for /etc/cron.*, /var/lib/fleetops/lock and /var/backups (tests)"
_BACKUP_HELP = "default <root>/var/backups/fleetops/cron"
COMMON = (
    Arg("--name", required=True),
    Arg("--target", default="user", choices=ct.TARGETS),
    Arg("--user", help="crontab owner (user) or cron.d run-as user (root)"),
    Arg("--root", default="/", help=_ROOT_HELP),
    Arg("--check", "flag", default=SUPPRESS, help="dry run: report the diff, change nothing"),
)
ARGS_INSTALL = COMMON + (
    Arg("--schedule", help="five cron fields or @daily & co (cron.* dirs: unused)"),
    Arg("--job", required=True, help="shell command (unescaped)"),
    Arg("--mailto", default="root", help="MAILTO of a cron.d file (default root; empty: no mail)"),
    Arg("--backup-dir", help=_BACKUP_HELP),
)
ARGS_REMOVE = COMMON + (Arg("--backup-dir", help=_BACKUP_HELP),)
ARGS_LIST = (
    Arg("--user", help="whose crontab (default: the current user)"),
    Arg("--root", default="/", help="prefix for /etc/cron.* (tests)"),
)
COMMANDS = (
    Command("install", "add or update the named job", ARGS_INSTALL),
    Command("remove", "delete the named job (absent is ok)", ARGS_REMOVE),
    Command("list", "managed and foreign jobs on this host", ARGS_LIST),
)


def run(args):
    try:
        if args.action == "list":
            return Outcome(False, _list(args))
        _validate(args)
        handler = {"install": _install, "remove": _remove}[args.action]
        return Outcome(*handler(args))
    except ct.CronError as exc:
        raise ProgramError(str(exc), rc=2) from None
    except OSError as exc:
        where = getattr(exc, "filename", None) or "cron"
        raise ProgramError("%s: %s" % (where, exc.strerror or exc)) from None


# -- arguments ---------------------------------------------------------------

def _validate(args):
    ct.validate_name(args.name, args.target)
    args.check = bool(getattr(args, "check", False))
    if args.user:
        ct.validate_user(args.user)
    if args.action == "install":
        ct.validate_command(args.job)
        if args.schedule is not None or args.target in ("user", "cron.d"):
            args.schedule = ct.validate_schedule(args.schedule)
        if any(c.isspace() or c in "\"'" for c in args.mailto):
            raise ct.CronError("invalid --mailto %r" % (args.mailto,))
    if args.target == "user":
        args.user = args.user or fs.current_user()
        _known_user(args.user)
    elif args.target == "cron.d":
        args.user = args.user or "root"
        _known_user(args.user)
    backup = getattr(args, "backup_dir", None)
    args.backup_dir = backup or _under(args.root, "/var/backups/fleetops/cron")


def _known_user(user):
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise ct.CronError("no such user %r on this host" % (user,)) from None


def _under(root, path):
    return path if root in ("", "/") else os.path.join(root, path.lstrip("/"))


def _flock():
    found = shutil.which("flock", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if not found:
        raise ProgramError("flock not found in /usr/bin or /bin (util-linux)")
    return found


def _runs_as(args):
    return args.user if args.target in ("user", "cron.d") else "root"


def _wrapped(args, inline_env):
    lock_dir = _lockdir.lock_dir(_runs_as(args), args.root)
    owner = None
    if args.target == "user" or (args.target == "cron.d" and args.user != "root"):
        owner = args.user
    return ct.wrap(args.job, args.name, lock_dir, _flock(), inline_env, owner)


def _diff(old, new, label):
    """The unified diff, or one line when either side is binary (NUL) or large."""
    old, new = old or "", new or ""
    if old == new:
        return ""
    if "\0" in old or "\0" in new or max(len(old), len(new)) > DIFF_MAX_CHARS:
        return "binary or large content differs: %d -> %d characters\n" % (len(old), len(new))
    return ct.diff(old, new, label)


def _data(args, path, action, old, new, extra=""):
    label = path if not path.startswith("crontab:") else "crontab." + args.user
    return {"target": args.target, "name": args.name, "path": path, "action": action,
            "diff": extra + _diff(old, new, label.lstrip("/")),
            "backup": None, "user": args.user}


# -- install / remove --------------------------------------------------------

def _install(args):
    if not args.check:  # the lock's directory: only the job's user (or root) writes there
        _lockdir.ensure(_lockdir.lock_dir(_runs_as(args), args.root), _runs_as(args), args.root)
    if args.target == "user":
        return _user_change(args, _user_install_lines)
    if args.target == "cron.d":
        return _file_change(args, _cron_d_install, _FILE_MODES["cron.d"])
    return _file_change(args, _script_install, _SCRIPT_MODE)


def _remove(args):
    if args.target == "user":
        return _user_change(args, lambda a, lines: ct.remove_entry(lines, a.name))
    if args.target == "cron.d":
        return _file_change(args, _cron_d_remove, _FILE_MODES["cron.d"])
    return _file_change(args, _script_remove, _SCRIPT_MODE)


def _user_install_lines(args, lines):
    job = ct.job_line(args.schedule, _wrapped(args, inline_env=True))
    adopt = [ct.job_line(args.schedule, args.job)]
    return ct.set_entry(lines, args.name, job, adopt)


def _cron_d_install(args, old):
    lines = ct.split_lines(old)
    rest, _ = ct.remove_entry(lines, args.name)
    if old is None or ct.only_own_header(rest):
        style = ct.find_style(lines, args.name)
        new = ct.own_cron_d(args.name, args.schedule, args.user, _wrapped(args, False),
                            args.mailto, style)
        return new, "created" if old is None else "updated"
    job = ct.job_line(args.schedule, _wrapped(args, True), args.user)
    adopt = [ct.job_line(args.schedule, args.job, args.user)]
    new, action = ct.set_entry(lines, args.name, job, adopt, with_user=True)
    if action == "created":
        raise ProgramError("%s exists and holds no entry named %r: not managed by fleetops, "
                           "refusing to change it" % (_path(args), args.name))
    return new, action


def _cron_d_remove(args, old):
    if old is None:
        return None, "none"
    new, action = ct.remove_entry(ct.split_lines(old), args.name)
    if action == "none":
        return _KEEP, action
    return (None if ct.only_own_header(new) else new), action


def _script_install(args, old):
    if old is not None and not ct.is_own_script(old, args.name):
        raise ProgramError("%s exists and is not managed by fleetops: refusing to replace it"
                           % _path(args))
    new = ct.script(args.name, _wrapped(args, inline_env=False))
    return new, "created" if old is None else "updated"


def _script_remove(args, old):
    if old is None:
        return None, "none"
    if not ct.is_own_script(old, args.name):
        raise ProgramError("%s is not managed by fleetops: refusing to delete it" % _path(args))
    return None, "removed"


def _path(args):
    return os.path.join(_under(args.root, _DIRS[args.target]), args.name)


def _file_change(args, plan, mode):
    """Read the target file, let ``plan`` compute its new lines, apply them atomically."""
    path = _path(args)
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise ProgramError("%s does not exist (is cron installed?)" % directory)
    old, info = fs.read_file(path)
    new_lines, action = plan(args, old)
    if new_lines is _KEEP:
        new, drift = old, ""
    else:
        new = None if new_lines is None else ct.render(new_lines)
        drift = _drift(info, mode) if new is not None and info is not None else ""
    if new == old and not drift:
        action = "none"
    elif action == "none":
        action = "updated"
    data = _data(args, path, action, old, new, extra=drift)
    if action == "none" or args.check:
        return action != "none", data
    if old is not None:
        data["backup"] = _backup(args, old)
    if new is None:
        fs.unlink(path)
    else:
        fs.atomic_write(path, new, mode)
    return True, data


def _backup(args, text):
    label = "user@" + args.user if args.target == "user" else args.target
    return fs.backup(args.backup_dir, "%s-%s" % (label, ct.lock_token(args.name)), text)


def _drift(info, mode):
    notes = []
    if stat.S_IMODE(info.st_mode) != mode:
        notes.append("mode %04o -> %04o" % (stat.S_IMODE(info.st_mode), mode))
    if os.geteuid() == 0 and (info.st_uid, info.st_gid) != (0, 0):
        notes.append("owner %d:%d -> 0:0" % (info.st_uid, info.st_gid))
    return "".join("# %s\n" % note for note in notes)


def _user_change(args, plan):
    old, existed = fs.read_crontab(args.user)
    lines = ct.split_lines(old)
    if ct.strip_spool_header(lines) != lines:
        lines = ct.strip_spool_header(lines)
        old = ct.render(lines)
    new_lines, action = plan(args, lines)
    new = ct.render(new_lines)
    if new == old:
        action = "none"
    elif action == "none":
        action = "updated"
    data = _data(args, "crontab:" + args.user, action, old, new)
    if action == "none" or args.check:
        return action != "none", data
    if existed and old:
        data["backup"] = _backup(args, old)
    fs.write_crontab(args.user, new)
    return True, data


# -- list --------------------------------------------------------------------

def _list(args):
    user = args.user or fs.current_user()
    _known_user(ct.validate_user(user))
    rows = []
    text, _ = fs.read_crontab(user)
    rows.extend(_rows(ct.split_lines(text), "user", "crontab:" + user, False, user))
    cron_d = _under(args.root, _DIRS["cron.d"])
    for name, path in _dir_files(cron_d):
        text, info = fs.read_file(path, follow=True)
        ignored = None
        if not ct.is_file_name(name):
            ignored = "cron skips names with dots or other characters"
        elif info.st_uid != 0 or info.st_mode & 0o022:
            ignored = "cron skips files not owned by root or writable by group/others"
        rows.extend(_rows(ct.split_lines(text), "cron.d", path, True, None, ignored))
    for target in ct.RUN_PARTS_TARGETS:
        for name, path in _dir_files(_under(args.root, _DIRS[target])):
            rows.append(_script_row(target, name, path))
    return {"user": user, "entries": rows}


def _dir_files(directory):
    if not os.path.isdir(directory):
        return []
    names = sorted(n for n in os.listdir(directory) if not n.startswith("."))
    return [(n, os.path.join(directory, n)) for n in names
            if os.path.isfile(os.path.join(directory, n))]


def _rows(lines, target, path, with_user, user, ignored=None):
    owner = dict((e.job, e) for e in ct.entries(lines) if e.job is not None)
    rows = []
    for index, line in enumerate(lines):
        entry = owner.get(index)
        if ct.classify(line) != "job" and entry is None:
            continue
        parts = ct.split_job(line.lstrip("#"), with_user)
        if parts is None:
            continue
        rows.append({
            "target": target, "path": path, "name": entry.name if entry else None,
            "managed_by": entry.style if entry else None, "foreign": entry is None,
            "schedule": parts[0], "user": parts[1] or user,
            "command": ct.unwrap(ct.unescape_command(parts[2])),
            "disabled": line.lstrip().startswith("#"), "ignored": ignored,
        })
    return rows


def _script_row(target, name, path):
    text, info = fs.read_file(path, follow=True)
    own = ct.is_own_script(text, name)
    ignored = None
    if not ct.is_file_name(name):
        ignored = "run-parts skips names with dots or other characters"
    elif not info.st_mode & 0o111:
        ignored = "not executable"
    command = None
    if own:
        execs = [line[5:] for line in ct.split_lines(text) if line.startswith("exec ")]
        command = ct.unwrap(execs[0]) if execs else None
    return {"target": target, "path": path, "name": name,
            "managed_by": "fleetops" if own else None, "foreign": not own,
            "schedule": None, "user": "root", "command": command, "disabled": False,
            "ignored": ignored}


PROGRAM = Program("cron", __doc__, (), run, supports_check=True, commands=COMMANDS,
                  command_metavar="install|remove|list")
