"""Pure crontab text handling for the ``cron`` program: no I/O here.

Schedules are validated (and compared by meaning) in :mod:`ops._cronsched`, the way
Debian's cron reads them. Entries are
named by a marker comment directly above the job line: ``# fleetops: NAME``
(written by fleetops) or ``#Ansible: NAME`` (found, updated and removed in place,
keeping Ansible's marker so Ansible still recognises its entry).

Commands are escaped for cron's own pass over the line: Debian's cron turns
``\\%`` into ``%`` and ``\\\\`` into ``\\``, and an unescaped ``%`` ends the
command (the rest becomes stdin), so both ``\\`` and ``%`` are escaped.
"""
import difflib
import hashlib
import re
import shlex

from ops._cronsched import (  # noqa: F401  (re-exported: the schedule API)
    SPECIALS,
    CronError,
    schedule_key,
    validate_schedule,
)

FLEETOPS_MARKER = "# fleetops: "
ANSIBLE_MARKER = "#Ansible: "
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin"
SHELL = "/bin/sh"
ENV_PREFIX = "/usr/bin/env SHELL=%s PATH=%s " % (SHELL, SAFE_PATH)
HEADER = "# Managed by fleetops (cron install): local edits are replaced."
FILE_TARGETS = ("cron.d", "cron.daily", "cron.hourly", "cron.weekly", "cron.monthly")
RUN_PARTS_TARGETS = FILE_TARGETS[1:]
TARGETS = ("user",) + FILE_TARGETS

_FILE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
MAX_NAME = 500
# Debian's cron (entry.c) reads a job's command into MAX_COMMAND (1000) bytes: a command of
# 999 bytes or more is "command too long"; crontab(1) refuses the file and cron ignores a
# whole /etc/cron.d file with such a line ("Syntax error, this crontab file will be ignored").
MAX_COMMAND_BYTES = 998
_MARKERS = (
    ("fleetops", re.compile(r"^#\s*fleetops:\s*(\S.*?)\s*$")),
    ("ansible", re.compile(r"^#\s*Ansible:\s*(\S.*?)\s*$")),
)
_WRAPPED = re.compile(r"^(?:/usr/bin/env SHELL=\S+ PATH=\S+ )?\S*flock -n (\S+) /bin/sh -c (.+)$")


# -- validation ---------------------------------------------------------------

def validate_name(name, target):
    """A crontab entry name is any one-line text Ansible's cron module takes (its marker
    comment holds it); file targets keep run-parts' names (Debian's run-parts and cron
    silently skip other file names)."""
    if target not in TARGETS:
        raise CronError("unknown target %r (use one of %s)" % (target, ", ".join(TARGETS)))
    if not name:
        raise CronError("empty name")
    if name.endswith(("\n", "\r")):
        raise CronError("name %r ends in a line break (YAML's 'name: >' adds one: use '>-' "
                        "or a plain string)" % (name,))
    bad = [c for c in name if c in "\n\r\t\x7f" or ord(c) < 32 or 0x80 <= ord(c) < 0xa0
           or c in "\u2028\u2029"]
    if bad:
        raise CronError("invalid name %r: control character %r (a name is one line of "
                        "text)" % (name, bad[0]))
    if name != name.strip():
        raise CronError("invalid name %r: leading or trailing blanks (the marker comment "
                        "would not keep them)" % (name,))
    if len(name) > MAX_NAME:
        raise CronError("invalid name: %d characters, at most %d" % (len(name), MAX_NAME))
    if target != "user" and not _FILE_NAME.match(name):
        raise CronError("invalid name %r for %s: only ASCII letters, digits, '_' and '-' "
                        "(run-parts and cron silently skip files like 'job.py')"
                        % (name, target))
    return name


def is_file_name(name):
    """Debian's run-parts (and cron for /etc/cron.d) only run names like this."""
    return bool(_FILE_NAME.match(name))


def validate_command(command):
    if not command or not command.strip():
        raise CronError("empty job command")
    if "\n" in command or "\r" in command or "\0" in command:
        raise CronError("job command must be one line (no newline or NUL)")
    return command


def validate_user(user):
    if not user or not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$", user):
        raise CronError("invalid user name %r" % (user,))
    return user


# -- commands -----------------------------------------------------------------

def escape_command(command):
    """Escape for cron's pass over a crontab/cron.d line (not for run-parts scripts)."""
    return command.replace("\\", "\\\\").replace("%", "\\%")


def unescape_command(text):
    out, escaped = [], False
    for ch in text:
        if escaped:
            if ch not in "%\\":
                out.append("\\")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            break
        else:
            out.append(ch)
    if escaped:
        out.append("\\")
    return "".join(out)


def lock_token(name):
    """A file-name-safe token for ``name`` (distinct names, distinct tokens)."""
    if _FILE_NAME.match(name) and len(name) <= 100:
        return name
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    return "%s-%s" % (re.sub(r"[^A-Za-z0-9_-]", "_", name)[:100], digest)


def lock_path(name, lock_dir, owner=None):
    """``fleetops-NAME.lock`` for root's system jobs, ``fleetops-NAME@USER.lock`` otherwise.

    Crontab entries (and cron.d entries run as another user) get the user in the name:
    with fs.protected_regular, one user cannot reopen another user's lock file in the
    same directory, and root's crontab entry is not the cron.d job of the same name
    (the directories themselves: ops._lockdir).
    """
    suffix = "@" + lock_token(owner) if owner else ""
    return "%s/fleetops-%s%s.lock" % (lock_dir.rstrip("/"), lock_token(name), suffix)


def wrap(command, name, lock_dir, flock, inline_env=False, owner=None):
    """The job as run: never overlapping itself, always under /bin/sh."""
    lock = lock_path(name, lock_dir, owner)
    body = "%s -n %s /bin/sh -c %s" % (flock, lock, shlex.quote(command))
    return ENV_PREFIX + body if inline_env else body


def unwrap(command):
    """The user's command inside a fleetops wrapper (or the command itself)."""
    match = _WRAPPED.match(command)
    if not match:
        return command
    try:
        words = shlex.split(match.group(2))
    except ValueError:
        return command
    return words[0] if len(words) == 1 else command


def job_line(schedule, wrapped, user=None):
    """The crontab/cron.d line; CronError when cron would find its command too long."""
    command = escape_command(wrapped)
    size = len(command.encode("utf-8"))
    if size > MAX_COMMAND_BYTES:
        raise CronError("job too long for cron: the command cron reads would be %d bytes "
                        "(with fleetops' flock/env wrapper and escapes), cron's limit is %d "
                        "(crontab says 'command too long'; cron ignores a cron.d file with "
                        "such a line): put the command in a script" % (size, MAX_COMMAND_BYTES))
    fields = [schedule] + ([user] if user else []) + [command]
    return " ".join(fields)


# -- parsing ------------------------------------------------------------------

def classify(line):
    """One of blank, marker, comment, job, env."""
    text = line.strip()
    if not text:
        return "blank"
    if text.startswith("#"):
        return "marker" if marker_of(text) else "comment"
    if text[0] in "0123456789*@":
        return "job"
    return "env"


def marker_of(line):
    """(style, name) for a marker line, else None."""
    for style, pattern in _MARKERS:
        match = pattern.match(line.strip())
        if match:
            return style, match.group(1)
    return None


def marker_line(name, style="fleetops"):
    return (ANSIBLE_MARKER if style == "ansible" else FLEETOPS_MARKER) + name


def _is_disabled_job(line):
    text = line.strip()
    return text.startswith("#") and classify(text.lstrip("#")) == "job"


def split_job(line, with_user=False):
    """(schedule, user, command) of a job line; command still cron-escaped."""
    text = line.strip()
    count = 1 if text.startswith("@") else 5
    parts = text.split(None, count + 1 if with_user else count)
    if len(parts) <= count + (1 if with_user else 0):
        return None
    user = parts[count] if with_user else None
    return " ".join(parts[:count]), user, parts[-1]


class Entry(object):
    __slots__ = ("name", "style", "marker", "job")

    def __init__(self, name, style, marker, job):
        self.name, self.style, self.marker, self.job = name, style, marker, job

    def indexes(self):
        return [i for i in (self.marker, self.job) if i is not None]


def entries(lines):
    """Marked entries, in order: the job is the line right after the marker."""
    found = []
    for index, line in enumerate(lines):
        mark = marker_of(line) if line.lstrip().startswith("#") else None
        if not mark:
            continue
        job = None
        if index + 1 < len(lines):
            nxt = lines[index + 1]
            if classify(nxt) == "job" or (mark[0] == "ansible" and _is_disabled_job(nxt)):
                job = index + 1
        found.append(Entry(mark[1], mark[0], index, job))
    return found


def unmarked_jobs(lines):
    owned = set(e.job for e in entries(lines) if e.job is not None)
    return [i for i, line in enumerate(lines) if classify(line) == "job" and i not in owned]


def _squash(line):
    return " ".join(line.split())


def _identity(line, with_user):
    """(schedule meaning, user, command) of a job line, or None: two lines with the same
    identity are the same job to cron, however their schedules are spelled."""
    parts = split_job(line, with_user)
    if parts is None:
        return None
    try:
        key = schedule_key(parts[0])
    except CronError:
        return None
    return key, parts[1], _squash(parts[2])


def set_entry(lines, name, job, adopt=(), with_user=False):
    """Install ``job`` under ``name``; return (new_lines, action).

    An existing entry (fleetops or Ansible marker) is updated in place, keeping its
    marker; twins under the same name are dropped. Otherwise an unmarked job line that
    is one of ``adopt`` (or ``job``) to cron (same schedule values, user and command:
    ``00 02 * * *`` is ``0 2 * * *``) is taken over under the marker rather than
    duplicated; else the entry is appended. ``with_user``: cron.d lines (a user field).
    """
    lines = list(lines)
    mine = [e for e in entries(lines) if e.name == name]
    if mine:
        first = mine[0]
        new = list(lines)
        if first.job is None:
            new.insert(first.marker + 1, job)
        else:
            new[first.job] = job
        drop = set(i for e in mine[1:] for i in e.indexes())
        if first.job is None:
            drop = set(i + 1 if i > first.marker else i for i in drop)
        new = [line for i, line in enumerate(new) if i not in drop]
        return new, ("none" if new == lines else "updated")
    wanted = set(_identity(a, with_user) for a in tuple(adopt) + (job,)) - set([None])
    for index in unmarked_jobs(lines):
        if _identity(lines[index], with_user) in wanted:
            new = lines[:index] + [marker_line(name), job] + lines[index + 1:]
            return new, "updated"
    return lines + [marker_line(name), job], "created"


def remove_entry(lines, name):
    """Drop every entry named ``name``; return (new_lines, action)."""
    drop = set(i for e in entries(lines) if e.name == name for i in e.indexes())
    if not drop:
        return list(lines), "none"
    return [line for i, line in enumerate(lines) if i not in drop], "removed"


def find_style(lines, name):
    mine = [e for e in entries(lines) if e.name == name]
    return mine[0].style if mine else "fleetops"


# -- whole files --------------------------------------------------------------

def split_lines(text):
    return text.splitlines() if text else []


def strip_spool_header(lines):
    """Drop the "DO NOT EDIT" lines Debian's crontab writes if a ``-l`` ever shows them."""
    head = 0
    while head < min(3, len(lines)) and re.match(
            r"^# (DO NOT EDIT THIS FILE|\(.* installed on |\(Cron version )", lines[head]):
        head += 1
    return lines[head:]


def render(lines):
    """Text with exactly one newline after every line (cron ignores an unterminated last line)."""
    return "".join(line + "\n" for line in lines)


def own_cron_d(name, schedule, user, wrapped, mailto, style="fleetops"):
    # An empty unquoted "MAILTO=" makes Debian's cron skip the whole file: quote it.
    return [HEADER, "SHELL=" + SHELL, "PATH=" + SAFE_PATH, "MAILTO=" + (mailto or '""'),
            marker_line(name, style), job_line(schedule, wrapped, user)]


def only_own_header(lines):
    """True when nothing but fleetops' own header/environment lines remain."""
    for line in lines:
        text = line.strip()
        if text and text != HEADER and not re.match(r"^(SHELL|PATH|MAILTO)=", text):
            return False
    return True


def script(name, wrapped):
    return [
        "#!/bin/sh",
        marker_line(name),
        HEADER,
        "SHELL=%s" % SHELL,
        "PATH=%s" % SAFE_PATH,
        "export SHELL PATH",
        "exec " + wrapped,
    ]


def is_own_script(text, name):
    return marker_line(name) in split_lines(text)[:3]


def diff(old, new, label):
    return "".join(difflib.unified_diff(
        old.splitlines(True), new.splitlines(True), "a/" + label, "b/" + label))
