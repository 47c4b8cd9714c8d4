"""Report space and inode use of every real filesystem, with df -P figures and thresholds.

Reads the mount table, skips pseudo filesystems (node_exporter's defaults), counts
bind mounts of one device once, stats each mount that may hang (network, FUSE, unknown
types, or under such a mount) in an abandonable child with a per-mount timeout, the
local ones directly, and flags mounts over the warn/crit thresholds. Optionally mails
the report (cron use).
"""
import os
import stat
import time

from ops import _diskstat, _mounts
from ops._argspec import Arg, add_to_parser, converter
from ops._contract import Outcome, Program, ProgramError

EPILOG = """\
figures are those of `df -P`: size = blocks*frsize, used = (blocks-bfree)*frsize,
avail = bavail*frsize, use% = ceil(used*100/(used+avail)); inodes likewise.
A mount is over a threshold when its percentage is >= that threshold. Mounts with
zero size are skipped (as df does); tmpfs mounts are reported. Impossible counters
(free above total, a count with its top bit set) give "-" figures and level unknown.
The mount table is /proc/self/mountinfo: a bind of a subdirectory never names a
filesystem (df's rule). Per-pod/per-container mounts (kubelet, containerd, CRI-O, k3s)
are left out unless --include-containers; mounts whose statvfs is refused are skipped
(as df does). No mount selected at all is a failure: "no file systems processed".

exit codes: 0 ok and no mount critical; 3 ok but at least one mount critical
(the document still says "ok": true); 1 failed (e.g. the mail could not be sent:
the report is then saved under --spool-dir, path in data.saved_report); 2 bad arguments.

mail settings: --mail-config FILE (INI with an [smtp] section, or a JSON object;
mode 0600 or stricter, owned by you) with keys host, port, security
(starttls|tls|none), username, password, from, timeout, cafile. Keys the file lacks
come from FLEETOPS_SMTP_HOST/PORT/USER/PASSWORD/FROM/SECURITY/TIMEOUT/CAFILE.
There is deliberately no option to pass a password on the command line.
"""
_ADDRESS = r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+$"
_RANK = {level: rank for rank, level in enumerate(_mounts.LEVELS)}
_COLOURS = {"ok": "#2e7d32", "unknown": "#6d6d6d", "warn": "#b26a00", "crit": "#c62828"}


def _valid_address(address):
    import re  # only when mailing: re costs start-up time on every plain run

    return re.match(_ADDRESS, address) is not None


def percent(text):
    value = float(text)
    if value - value != 0:  # nan, inf: no JSON number, no threshold
        raise ValueError(text)
    return _mounts.tidy_number(value)


def seconds(text):
    value = float(text)
    if not 0 < value < float("inf"):  # nan and inf too
        raise ValueError(text)
    return value


percent = converter(percent, "number")
seconds = converter(seconds, "number")
_LIMITS, _SELECT, _MAIL = "thresholds (percent)", "mount selection", "email"
ARGS = (
    Arg("--warn", percent, 80, group=_LIMITS, help="space warning (default 80)"),
    Arg("--crit", percent, 90, group=_LIMITS, help="space critical (default 90)"),
    Arg("--inode-warn", percent, 80, group=_LIMITS, help="inode warning (80)"),
    Arg("--inode-crit", percent, 90, group=_LIMITS, help="inode critical (90)"),
    Arg("--threshold", repeat=True, default=(), metavar="MOUNT=WARN:CRIT", group=_LIMITS,
        help="space thresholds for one mountpoint (or glob); repeatable"),
    Arg("--local", "flag", group=_SELECT, help="skip network filesystems"),
    Arg("--include", "glob", repeat=True, default=(), metavar="GLOB", group=_SELECT,
        help="only mountpoints matching GLOB (repeatable)"),
    Arg("--exclude", "glob", repeat=True, default=(), metavar="GLOB", group=_SELECT,
        help="skip mountpoints matching GLOB (repeatable)"),
    Arg("--include-containers", "flag", group=_SELECT,
        help="keep per-pod/per-container mounts (kubelet, containerd, CRI-O)"),
    Arg("--skip-fstype", repeat=True, default=(), metavar="TYPE", group=_SELECT,
        help="skip this filesystem type (repeatable, or comma separated)"),
    Arg("--stat-timeout", seconds, 5.0, metavar="SECONDS", group=_SELECT,
        help="give up on a mount after this long (default 5)"),
    Arg("--mounts-file", "path", metavar="PATH", group=_SELECT,
        help="mount table to read (default /proc/self/mountinfo, else /proc/self/mounts; "
             "a mounts(5)-format file, or mountinfo)"),
    Arg("--email", repeat=True, default=(), metavar="TO", group=_MAIL,
        help="mail the report to TO (repeatable)"),
    Arg("--mail-config", "path", metavar="PATH", group=_MAIL,
        help="SMTP settings file (mode 0600)"),
    Arg("--email-when", choices=("always", "warn", "crit"), default="always", group=_MAIL,
        help="mail only at or above this level (default always)"),
    Arg("--spool-dir", "path", "/var/tmp/fleetops", metavar="DIR", group=_MAIL,
        help="where a report that could not be mailed is saved"),
)


def add_arguments(parser):
    """The host parser's arguments (also used by the control side's df fallback)."""
    import argparse

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    add_to_parser(parser, ARGS)


class Limits(object):
    __slots__ = ("space", "inodes", "overrides")

    def __init__(self, space, inodes, overrides):
        self.space, self.inodes, self.overrides = space, inodes, overrides

    def as_data(self):
        return {
            "space": {"warn": self.space[0], "crit": self.space[1]},
            "inodes": {"warn": self.inodes[0], "crit": self.inodes[1]},
            "overrides": [{"mountpoint": p, "warn": w, "crit": c} for p, w, c in self.overrides],
        }


def _bad(message):
    return ProgramError("bad arguments: %s" % message, rc=2)


def validate(args):
    """Check thresholds, recipients and mail settings before anything runs."""
    try:
        space = _mounts.validate_pair(args.warn, args.crit, "space")
        inodes = _mounts.validate_pair(args.inode_warn, args.inode_crit, "inode")
        overrides = [_mounts.parse_override(text) for text in args.threshold]
    except ValueError as exc:
        raise _bad(exc) from None
    for address in args.email:
        if not _valid_address(address):
            raise _bad("--email %r is not a mail address" % address)
    settings = None
    if args.email or args.mail_config:
        from ops import _mail  # smtplib/ssl/email cost ~20 ms: only when mailing

        try:
            settings = _mail.load_settings(args.mail_config)
        except _mail.MailError as exc:
            raise _bad("mail settings: %s" % exc) from None
    return Limits(space, inodes, overrides), settings


def collect(args, limits):
    """The report data: every selected mount with figures, level and thresholds over."""
    mounts = read_mount_table(args.mounts_file)
    fstypes = [t for item in args.skip_fstype for t in item.split(",") if t]
    selected, skipped = _mounts.select_mounts(
        mounts, args.local, args.include, args.exclude, fstypes, args.include_containers)
    skipped = [_skip(m, reason) for m, reason in skipped if reason not in _SILENT]
    unsafe = _mounts.unsafe_points(mounts)
    stats = _diskstat.stat_mounts([m.mountpoint for m in selected], args.stat_timeout,
                                  in_process=[not _mounts.can_hang(m, unsafe) for m in selected])
    records = []
    for index, mount in enumerate(selected):
        if stats[index].get("hidden"):
            skipped.append(_skip(mount, "hidden under a later mount"))
            continue
        if stats[index].get("denied"):
            skipped.append(_skip(mount, "permission denied"))
            continue
        record = _record(mount, stats[index], limits)
        if record is None:
            skipped.append(_skip(mount, "zero size"))
        else:
            records.append(record)
    kept, dropped = _mounts.dedup_by_device(records)
    owner = {r["dev"]: r["mountpoint"] for r in kept if r["dev"] is not None}
    skipped.extend(_skip(r, "same device as %s" % owner[r["dev"]]) for r in dropped)
    for record in kept:
        del record["dev"], record["root"], record["network"]
    if not kept:
        raise ProgramError("no file systems processed")  # as df says, exit status 1
    return {
        "hostname": os.uname()[1],
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "mounts": kept,
        "over": [r["mountpoint"] for r in kept if r["level"] in ("warn", "crit")],
        "worst_level": _mounts.worst(r["level"] for r in kept),
        "thresholds": limits.as_data(),
        "skipped": skipped,
    }


_SILENT = ("pseudo", "container")  # never listed: hundreds on a container host


def read_mount_table(path):
    """Mounts from ``path``; by default /proc/self/mountinfo (it names the root of each
    bind mount) or, where absent, /proc/self/mounts. ProgramError if unreadable."""
    candidates = [path] if path else ["/proc/self/mountinfo", "/proc/self/mounts"]
    for index, name in enumerate(candidates):
        try:
            with open(name, "rb") as handle:
                text = os.fsdecode(handle.read())
        except OSError as exc:
            if index + 1 < len(candidates):
                continue
            raise ProgramError("cannot read %s: %s" % (name, exc.strerror or exc)) from None
        if name.endswith("mountinfo") or _looks_like_mountinfo(text):
            return _mounts.parse_mountinfo(text)
        return _mounts.parse_mounts(text)
    return []


def _looks_like_mountinfo(text):
    first = text.split("\n", 1)[0].split(" ")
    return len(first) > 7 and first[0].isdigit() and first[1].isdigit() and " - " in text


def _skip(mount, reason):
    if isinstance(mount, dict):
        return {"mountpoint": mount["mountpoint"], "fstype": mount["fstype"], "reason": reason}
    return {"mountpoint": mount.mountpoint, "fstype": mount.fstype, "reason": reason}


class _Statvfs(object):
    """The ``f_*`` fields of a stat record as attributes (``types`` costs an import)."""

    def __init__(self, record):
        self.__dict__.update((k, v) for k, v in record.items() if k.startswith("f_"))


def _record(mount, result, limits):
    record = {
        "mountpoint": mount.mountpoint, "device": mount.device, "fstype": mount.fstype,
        "size_bytes": None, "used_bytes": None, "avail_bytes": None, "use_pct": None,
        "inodes_total": None, "inodes_used": None, "inodes_pct": None,
        "level": "unknown", "over": [], "error": None, "dev": None, "root": mount.root,
        "network": _mounts.is_network(mount),
    }
    if "error" in result:
        record["error"] = result["error"]
        return record
    numbers = _mounts.df_numbers(_Statvfs(result))
    if numbers["size_bytes"] == 0:
        return None
    record.update(numbers)
    record["dev"] = result["dev"]
    if numbers["use_pct"] is None:
        record["error"] = "impossible statvfs counters (free above total): figures withheld"
        return record
    space = _mounts.space_limits(mount.mountpoint, limits.space, limits.overrides)
    record["level"], record["over"] = _mounts.classify(numbers, space, limits.inodes)
    return record


def sort_worst_first(mounts):
    return sorted(mounts, key=lambda m: (-_RANK[m["level"]], -(m["use_pct"] or 0),
                                         -(m["inodes_pct"] or 0), m["mountpoint"]))


def _pct(value):
    return "-" if value is None else "%d%%" % value


def _row(m):
    """One table row; names go through ``_mounts.shown`` (one row per mount, any bytes)."""
    shown = _mounts.shown
    return (m["level"].upper(), shown(m["mountpoint"]), shown(m["fstype"]),
            _mounts.human_size(m["size_bytes"]), _mounts.human_size(m["used_bytes"]),
            _mounts.human_size(m["avail_bytes"]), _pct(m["use_pct"]), _pct(m["inodes_pct"]),
            shown(m["error"] or m["device"]))


HEADER = ("LEVEL", "MOUNT", "FSTYPE", "SIZE", "USED", "AVAIL", "USE%", "INODE%", "DEVICE")


def subject(data):
    text = "[fleetops] disk report %s: %s" % (_mounts.shown(data["hostname"]),
                                               data["worst_level"].upper())
    if data["over"]:
        text += " (%s)" % ", ".join(_mounts.shown(m) for m in data["over"][:5])
    return text


def render_text(data):
    """The plain-text mail body: a header and an aligned table, worst mount first."""
    limits = data["thresholds"]
    rows = [HEADER] + [_row(m) for m in sort_worst_first(data["mounts"])]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = [
        "Disk report for %s at %s: %s" % (_mounts.shown(data["hostname"]), data["generated"],
                                          data["worst_level"].upper()),
        "Thresholds: space warn %s%% crit %s%%, inodes warn %s%% crit %s%%." % (
            limits["space"]["warn"], limits["space"]["crit"],
            limits["inodes"]["warn"], limits["inodes"]["crit"]),
        "Over threshold: %s" % (", ".join(_mounts.shown(m) for m in data["over"]) or "none"),
        "",
    ]
    for row in rows:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(lines) + "\n"


def render_html(data):
    """A small self-contained HTML alternative (inline styles only)."""
    import html

    esc = html.escape
    cells = "".join("<th style=\"text-align:left;padding:2px 8px\">%s</th>" % esc(h)
                    for h in HEADER)
    body = ["<tr>%s</tr>" % cells]
    for mount in sort_worst_first(data["mounts"]):
        colour = _COLOURS[mount["level"]]
        tds = "".join("<td style=\"padding:2px 8px\">%s</td>" % esc(c) for c in _row(mount))
        body.append("<tr style=\"color:%s\">%s</tr>" % (colour, tds))
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title></head>"
        "<body style=\"font-family:sans-serif\"><h2>%s</h2><p>Over threshold: %s</p>"
        "<table style=\"border-collapse:collapse;font-family:monospace\">%s</table>"
        "</body></html>\n" % (esc(subject(data)), esc(subject(data)),
                              esc(", ".join(_mounts.shown(m) for m in data["over"]) or "none"),
                              "".join(body)))


def save_report(spool_dir, text):
    """Write ``text`` to a new 0600 file in ``spool_dir`` (0700, ours); return its path."""
    created = not os.path.isdir(spool_dir)
    os.makedirs(spool_dir, mode=0o700, exist_ok=True)
    if created:
        os.chmod(spool_dir, 0o700)
    info = os.lstat(spool_dir)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise OSError("%s must be a directory of yours, not group/world writable" % spool_dir)
    name = "diskreport-%s-%d.txt" % (time.strftime("%Y%m%dT%H%M%S"), os.getpid())
    path = os.path.join(spool_dir, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as handle:
        handle.write(text)
    return path


def mail_report(args, settings, data):
    """Send the report; on failure save it and raise ProgramError (rc 1) saying where."""
    from ops import _mail

    text = render_text(data)
    try:
        message_id = _mail.send_mail(settings, args.email, subject(data), text,
                                     render_html(data))
    except _mail.MailError as exc:
        reason = "mail not sent: %s" % exc
        try:
            path = save_report(args.spool_dir, "Subject: %s\n%s\n\n%s" % (
                subject(data), reason, text))
        except OSError as err:
            raise ProgramError("%s; report not saved either: %s" % (reason, err),
                               data=dict(data, saved_report=None)) from None
        raise ProgramError("%s; report saved to %s" % (reason, path),
                           data=dict(data, saved_report=path)) from None
    return {"to": list(args.email), "message_id": message_id,
            "server": "%s:%d" % (settings.host, settings.port)}


def run(args):
    limits, settings = validate(args)
    data = collect(args, limits)
    wanted = {"always": 0, "warn": _RANK["warn"], "crit": _RANK["crit"]}[args.email_when]
    if args.email and _RANK[data["worst_level"]] >= wanted:
        data["email"] = mail_report(args, settings, data)
    rc = 3 if data["worst_level"] == "crit" else 0
    return Outcome(changed=False, data=data, rc=rc)


PROGRAM = Program("diskreport", __doc__, ARGS, run, parse_on_control=True, epilog=EPILOG)
