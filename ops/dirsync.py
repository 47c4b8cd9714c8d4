"""Mirror a source tree into a target with rsync when they differ (debounced, guarded).

Every --poll seconds the whole source and target trees are compared (relative path,
type, size and mtime of files; symlink targets; directories by presence). When they
differ one threading.Timer of --wait seconds is armed; a source that keeps changing
re-arms that same timer, so a burst of changes gives one sync. One sync runs at a time:

  rsync -a --delete --itemize-changes --max-delete=N -- SOURCE/ TARGET/

A missing or empty source, or (--require-mount) a source that is not a mountpoint, is
refused: it must never wipe the target. A source that is a mountpoint when the program
starts must still be that same mount (device and mount id) at every sync, so a disk
that went away (leaving the bare mountpoint directory, maybe with a stray file) is
never mirrored: --require-mount is implied then. A sync that would delete more than
--max-delete-share percent of the target's entries (default 50; 100: no limit) is
refused and reported, before rsync runs, in addition to rsync's own --max-delete. rsync exit 23 (partial), 24 (vanished files:
not fatal) and 25 (--max-delete stopped deletions) are reported distinctly. After an
attempt that left the trees different, nothing is retried until one of them changes
or --retry seconds pass. A plain ``run`` does one guarded sync now.
"""
import os
import shutil
import stat
import subprocess
import threading
import time

from ops._argspec import Arg
from ops._contract import ProgramError
from ops._lifecycle import make_program

MAX_ITEMS = 1000
RESULTS = {
    0: ("ok", True, "synced"),
    23: ("partial", False, "partial transfer: some files could not be transferred"),
    24: ("vanished", True, "some source files vanished during the transfer"),
    25: ("max_delete", False, "the --max-delete limit stopped deletions"),
}


def snapshot(root):
    """{relative path: signature} of the whole tree (os.scandir walk, no symlink follow)."""
    entries = {}
    pending = [""]
    while pending:
        rel = pending.pop()
        try:
            with os.scandir(os.path.join(root, rel) if rel else root) as listing:
                found = list(listing)
        except FileNotFoundError:
            if not rel:
                return None
            continue
        for entry in found:
            path = rel + "/" + entry.name if rel else entry.name
            try:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    entries[path] = ("d",)
                    pending.append(path)
                elif stat.S_ISREG(st.st_mode):
                    entries[path] = ("f", st.st_size, st.st_mtime_ns)
                elif stat.S_ISLNK(st.st_mode):  # rsync does not keep symlink mtimes
                    entries[path] = ("l", os.readlink(entry.path))
                else:
                    entries[path] = ("o", stat.S_IFMT(st.st_mode))
            except FileNotFoundError:
                continue  # vanished while we looked: the next poll sees the new state
    return entries


def mount_identity(path):
    """(st_dev, mount id, f_fsid) when ``path`` is a mountpoint, else None.

    st_dev alone is not enough: a new tmpfs (or a disk plugged into the same port) gets
    the freed device number, and mount ids (/proc/self/mountinfo) are recycled too; the
    filesystem id (statvfs f_fsid: the UUID-derived id of ext4/xfs/btrfs, random per
    tmpfs) tells another filesystem apart. A remount of the same disk gets a new mount
    id, so it is refused as well: restart dirsync after remounting on purpose."""
    if not os.path.ismount(path):
        return None
    real = os.path.realpath(path)
    mount_id = None
    try:
        with open("/proc/self/mountinfo", "rb") as handle:
            for line in handle:
                fields = line.split(b" ", 5)
                if len(fields) > 4 and _unescape_mount(fields[4]) == os.fsencode(real):
                    mount_id = int(fields[0])  # the last one listed is the one on top
    except (OSError, ValueError):
        pass
    return os.stat(path).st_dev, mount_id, os.statvfs(path).f_fsid


def _unescape_mount(field):
    """mountinfo escapes space, tab, newline and backslash as \\ooo octal."""
    if b"\\" not in field:
        return field
    out, i = bytearray(), 0
    while i < len(field):
        if field[i:i + 1] == b"\\" and field[i + 1:i + 4].isdigit():
            out.append(int(field[i + 1:i + 4], 8))
            i += 4
        else:
            out += field[i:i + 1]
            i += 1
    return bytes(out)


def parse_itemized(text):
    """rsync --itemize-changes lines into items, counts and other messages."""
    items, other = [], []
    counts = {"transferred": 0, "created": 0, "deleted": 0, "attributes": 0}
    for line in text.splitlines():
        code, path = line[:11], line[12:]
        if line.startswith("*deleting"):
            counts["deleted"] += 1
        elif len(line) > 12 and code[0] in "<>ch." and code[1] in "fdLDS":
            kind = {"<": "transferred", ">": "transferred", ".": "attributes"}.get(code[0])
            counts[kind or "created"] += 1
        else:
            if line.strip():
                other.append(line)
            continue
        items.append({"i": code.rstrip(), "path": path})
    return items, counts, other


def rsync_argv(rsync, source, target, max_delete, dry_run=False):
    argv = [rsync, "-a", "--delete", "--itemize-changes", "--max-delete=%d" % max_delete]
    if dry_run:
        argv.append("--dry-run")
    # absolute paths: never read as host:path or as options; "src/" syncs the contents
    return argv + ["--", source.rstrip("/") + "/", target.rstrip("/") + "/"]


ARGS = (
    Arg("--source", required=True, help="the tree to mirror"),
    Arg("--target", required=True, help="the mirror (made equal to --source)"),
    Arg("--poll", "float", 2.0, help="seconds between comparisons"),
    Arg("--wait", "float", 1.0, help="quiet seconds after the last change before syncing"),
    Arg("--max-delete", "int", 100,
        help="rsync --max-delete: most deletions per sync (default 100)"),
    Arg("--require-mount", "flag",
        help="refuse to sync unless the source is a mountpoint (implied when it is one at "
             "start: then it must stay that same mount)"),
    Arg("--max-delete-share", "float", 50.0, metavar="PCT",
        help="refuse a sync that would delete more than PCT %% of the target's entries "
             "(default 50; 0: no deletion; 100: no limit)"),
    Arg("--retry", "float", 60.0,
        help="seconds before retrying an attempt that changed nothing"),
    Arg("--rsync", default="rsync", help="the rsync binary (default: rsync)"),
    Arg("--dry-run", "flag", help="rsync --dry-run: report only"),
    Arg("--duration", "float", help="stop after this many seconds (default: until stopped)"),
)


class DirSync(object):
    def __init__(self, args):
        self.source = os.path.abspath(args.source)
        self.target = os.path.abspath(args.target)
        self.args = args
        self.rt = None
        self.mu = threading.Lock()         # guards timer, generation, syncing, hold
        self.sync_lock = threading.Lock()  # one rsync at a time
        self.timer = None
        self.generation = 0
        self.syncing = False
        self.hold = None
        self.last_source = None
        self.proc = None
        self.syncs = 0
        self.mount = None  # mount_identity() of the source when it is a mountpoint

    # -- checks --------------------------------------------------------------------------
    def prepare(self):
        rsync = shutil.which(self.args.rsync)
        if not rsync:
            raise ProgramError("rsync not found (%s)" % self.args.rsync)
        self.rsync = rsync
        if not os.path.isdir(self.source):
            raise ProgramError("source %s is not a directory" % self.source)
        if not os.path.isdir(os.path.dirname(self.target.rstrip("/")) or "/"):
            raise ProgramError("the parent of target %s does not exist" % self.target)
        src, dst = os.path.realpath(self.source), os.path.realpath(self.target)
        if src == dst or dst.startswith(src.rstrip("/") + "/") or src.startswith(dst + "/"):
            raise ProgramError("source %s and target %s overlap" % (src, dst))
        self.mount = mount_identity(self.source)
        if self.args.require_mount and self.mount is None:
            raise ProgramError("source %s is not a mountpoint (--require-mount)" % self.source)

    def refusal(self):
        if not os.path.isdir(self.source):
            return "source %s is missing" % self.source
        if self.mount is not None:
            now = mount_identity(self.source)
            if now != self.mount:
                return ("source %s is no longer the mount it was at start (device %s, mount "
                        "id %s, fsid %x; now %s): the disk went away? refusing to sync"
                        % ((self.source,) + self.mount + ("not a mountpoint" if now is None
                           else "device %s, mount id %s, fsid %x" % now,)))
        elif self.args.require_mount and not os.path.ismount(self.source):
            return "source %s is not a mountpoint (--require-mount)" % self.source
        try:
            with os.scandir(self.source) as listing:
                empty = next(listing, None) is None
        except OSError as exc:
            return "source %s cannot be listed: %s" % (self.source, exc.strerror)
        if empty:
            return "source %s is empty: refusing to wipe the target" % self.source
        return None

    def delete_refusal(self, source_entries):
        """(reason or None, {"entries", "of"}): what rsync --delete would remove from the
        target (entries absent from the source, or of another type), against the share."""
        target = snapshot(self.target) or {}
        source = source_entries or {}
        doomed = sum(1 for path, sig in target.items()
                     if path not in source or source[path][0] != sig[0])
        counts = {"entries": doomed, "of": len(target)}
        share = self.args.max_delete_share
        if doomed and share < 100 and doomed * 100.0 > share * len(target):
            return ("the sync would delete %d of the %d entries in target %s (%.0f%% > "
                    "--max-delete-share %g%%): refusing it" % (
                        doomed, len(target), self.target, doomed * 100.0 / len(target), share),
                    counts)
        return None, counts

    # -- one sync ------------------------------------------------------------------------
    def sync(self):
        with self.sync_lock:
            started = time.monotonic()
            before = snapshot(self.source)
            reason = self.refusal()
            record = {"kind": "sync", "source": self.source, "target": self.target}
            if not reason:
                reason, deletes = self.delete_refusal(before)
                record["would_delete"] = deletes
            if reason:
                record.update(result="refused", ok=False, msg=reason)
            else:
                record.update(self._rsync())
            record["duration_s"] = round(time.monotonic() - started, 3)
            self.syncs += 1
            with self.mu:
                self.hold = (before, snapshot(self.target), time.monotonic())
            self._report(record)
            return record

    def _rsync(self):
        argv = rsync_argv(self.rsync, self.source, self.target, self.args.max_delete,
                          self.args.dry_run)
        env = dict(os.environ, LC_ALL="C")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        out, err = self.proc.communicate()
        rc = self.proc.returncode
        items, counts, other = parse_itemized(out.decode("utf-8", "backslashreplace"))
        result, ok, msg = RESULTS.get(rc, ("error", False, "rsync failed with exit %d" % rc))
        if self.rt is not None and self.rt.stopping.is_set() and rc != 0:
            result, ok, msg = "terminated", False, "stopped during the sync"
        errors = err.decode("utf-8", "backslashreplace").splitlines()[-20:]
        return {"result": result, "ok": ok, "rc": rc, "msg": msg, "counts": counts,
                "items": items[:MAX_ITEMS], "items_total": len(items),
                "messages": other[-20:], "stderr": errors, "argv": argv}

    def _report(self, record):
        if self.rt is None:
            return
        stream = "out" if record["ok"] and record["result"] == "ok" else "err"
        self.rt.log(stream, record)
        summary = dict((k, v) for k, v in record.items() if k not in ("items", "argv"))
        self.rt.remember(summary)

    # -- the poller ----------------------------------------------------------------------
    def poll_once(self):
        src = snapshot(self.source)
        with self.mu:
            if self.syncing:
                return
            moved = src != self.last_source
            self.last_source = src
            dst = snapshot(self.target)
            if src == dst:
                self._cancel()
                return
            if self.hold is not None and (src, dst) == self.hold[:2] \
                    and time.monotonic() - self.hold[2] < self.args.retry:
                return  # nothing changed since the last attempt: do not loop on it
            if self.timer is None or moved:
                self._arm()

    def _arm(self):
        self._cancel()
        self.generation += 1
        self.timer = threading.Timer(self.args.wait, self._fire, args=(self.generation,))
        self.timer.daemon = True
        self.timer.start()

    def _cancel(self):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _fire(self, generation):
        with self.mu:
            if generation != self.generation or self.rt.stopping.is_set():
                return  # a newer timer replaced this one
            self.timer = None
            self.syncing = True
        try:
            self.sync()
        except Exception as exc:  # a failed sync is logged; the poller keeps running
            self.rt.event({"kind": "sync", "result": "error", "ok": False,
                           "msg": "%s: %s" % (type(exc).__name__, exc)})
        finally:
            with self.mu:
                self.syncing = False

    def serve(self, rt):
        self.rt = rt
        ends = None if self.args.duration is None else time.monotonic() + self.args.duration
        while not rt.stopping.is_set():
            self.poll_once()
            pause = self.args.poll
            if ends is not None:
                pause = min(pause, ends - time.monotonic())
                if pause <= 0:
                    break
            if rt.stopping.wait(pause):
                break
        self.shutdown()
        return {"syncs": self.syncs}

    def shutdown(self):
        with self.mu:
            self._cancel()
            self.generation += 1
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(1.0)
            except subprocess.TimeoutExpired:
                proc.kill()

    def once(self, rt):
        self.rt = rt
        record = self.sync()
        if not record["ok"]:
            raise ProgramError(record["msg"], data=record)
        counts = record.get("counts") or {}
        return any(counts.values()) and not self.args.dry_run, record


def make_service(args):
    for flag, value in (("--poll", args.poll), ("--wait", args.wait)):
        if not value > 0:
            raise ProgramError("bad program arguments: %s must be > 0" % flag, rc=2)
    if args.max_delete < 0:
        raise ProgramError("bad program arguments: --max-delete must be >= 0", rc=2)
    if not 0 <= args.max_delete_share <= 100:
        raise ProgramError("bad program arguments: --max-delete-share must be 0..100", rc=2)
    if args.duration is not None and args.duration < 0:
        raise ProgramError("bad program arguments: --duration must be >= 0", rc=2)
    if not args.source.strip() or not args.target.strip():
        raise ProgramError("bad program arguments: --source and --target must not be empty",
                           rc=2)
    return DirSync(args)


PROGRAM = make_program("dirsync", __doc__, ARGS, make_service)
