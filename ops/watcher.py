"""Watch a host: run checks every --interval seconds, log one JSON line per result.

Checks (``--check-spec``, repeatable; default ``clock``):

  clock                  the seed's demo: "Mod 5 at T" (stderr) / "No mod 5 at T" (stdout)
  disk:PATH:PCT          disk usage of PATH's filesystem at or over PCT percent
  file:PATH              PATH's content changed (sha256), or it is missing
  proc:NAME_OR_PIDFILE   a process named NAME (comm or argv[0]) or the pid in PIDFILE is alive

Results whose level is ``ok`` go to stdout, others to stderr; a check changing state
also writes an ``event`` line (stderr) and becomes the instance's ``last_event``.
``--duration`` bounds the run; without it a daemon runs until stopped.
"""
import hashlib
import os
import time

from ops._argspec import Arg
from ops._contract import ProgramError
from ops._lifecycle import make_program

SPECS = "clock, disk:PATH:PCT, file:PATH, proc:NAME_OR_PIDFILE"


class Clock(object):
    def __init__(self, spec):
        self.spec = spec

    def validate(self):
        pass

    def evaluate(self):
        now = time.time()
        if int(now) % 5 == 0:
            return "mod5", "alert", "Mod 5 at %.2f" % now, {}
        return "no_mod5", "ok", "No mod 5 at %.2f" % now, {}


class Disk(object):
    def __init__(self, spec, path, pct):
        self.spec, self.path, self.pct = spec, path, pct

    def used_pct(self):
        st = os.statvfs(self.path)
        used = st.f_blocks - st.f_bfree
        usable = used + st.f_bavail  # df's arithmetic: reserved blocks are not usable
        return round(100.0 * used / usable, 2) if usable else 0.0

    def validate(self):
        try:
            self.used_pct()
        except OSError as exc:
            raise ProgramError("check %s: %s" % (self.spec, exc.strerror)) from None

    def evaluate(self):
        try:
            used = self.used_pct()
        except OSError as exc:
            return "error", "error", "%s: %s" % (self.path, exc.strerror), {}
        data = {"used_pct": used, "threshold_pct": self.pct}
        if used >= self.pct:
            return "over", "alert", "%s %.1f%% used >= %g%%" % (self.path, used, self.pct), data
        return "ok", "ok", "%s %.1f%% used < %g%%" % (self.path, used, self.pct), data


class File(object):
    def __init__(self, spec, path):
        self.spec, self.path = spec, path
        self.key = self.digest = None

    def validate(self):
        if os.path.isdir(self.path):
            raise ProgramError("check %s: %s is a directory" % (self.spec, self.path))

    def _sha256(self):
        st = os.stat(self.path)
        key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if key != self.key:  # rehash only when the inode says something moved
            sha = hashlib.sha256()
            with open(self.path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    sha.update(block)
            self.key, self.digest = key, sha.hexdigest()
        return self.digest

    def evaluate(self):
        previous = self.digest
        try:
            digest = self._sha256()
        except FileNotFoundError:
            self.key = self.digest = None
            return "missing", "alert", "%s is missing" % self.path, {}
        except OSError as exc:
            return "error", "error", "%s: %s" % (self.path, exc.strerror), {}
        data = {"sha256": digest}
        if previous is not None and digest != previous:
            return "sha256:" + digest, "alert", "%s content changed" % self.path, data
        return "sha256:" + digest, "ok", "%s unchanged" % self.path, data


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid, "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _pids_named(name):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/comm" % entry, "rb") as fh:
                comm = fh.read().strip().decode("utf-8", "replace")
            with open("/proc/%s/cmdline" % entry, "rb") as fh:
                argv0 = fh.read().split(b"\0", 1)[0].decode("utf-8", "replace")
        except OSError:
            continue
        if comm == name[:15] or os.path.basename(argv0) == name:
            found.append(int(entry))
    return sorted(found)


class Proc(object):
    def __init__(self, spec, target):
        self.spec, self.target = spec, target

    def validate(self):
        pass

    def evaluate(self):
        if "/" in self.target:
            try:
                with open(self.target, "r") as fh:
                    pid = int(fh.read().split()[0])
            except (OSError, ValueError, IndexError) as exc:
                why = getattr(exc, "strerror", None) or "no pid in it"
                return "down", "alert", "pidfile %s: %s" % (self.target, why), {}
            pids = [pid] if _alive(pid) else []
        else:
            pids = _pids_named(self.target)
        if pids:
            return "up", "ok", "%s is running" % self.target, {"pids": pids[:10]}
        return "down", "alert", "%s is not running" % self.target, {"pids": []}


def parse_spec(spec):
    kind, _, rest = spec.partition(":")
    if kind == "clock" and not rest:
        return Clock(spec)
    if kind == "disk":
        path, _, pct = rest.rpartition(":")
        try:
            value = float(pct)
        except ValueError:
            value = -1.0
        if not path or not 0 <= value <= 100:
            raise ValueError("disk needs disk:PATH:PCT with PCT in 0..100")
        return Disk(spec, path, value)
    if kind == "file" and rest:
        return File(spec, rest)
    if kind == "proc" and rest:
        return Proc(spec, rest)
    raise ValueError("expected one of: %s" % SPECS)


ARGS = (
    Arg("--check-spec", repeat=True, dest="specs", metavar="SPEC",
        help="a check (repeatable): %s; default clock" % SPECS),
    Arg("--interval", "float", 1.0, help="seconds between rounds of checks (default 1)"),
    Arg("--duration", "float",
        help="stop after this many seconds (default: until stopped; one round for a plain "
             "'run')"),
)


class Watcher(object):
    def __init__(self, checks, interval, duration):
        self.checks = checks
        self.interval = interval
        self.duration = duration
        self.states = {}
        self.last = {}

    def prepare(self):
        for check in self.checks:
            check.validate()

    def round(self, rt):
        for check in self.checks:
            state, level, msg, data = check.evaluate()
            record = {"kind": "result", "check": check.spec, "state": state, "level": level,
                      "msg": msg}
            if data:
                record["data"] = data
            self.last[check.spec] = rt.log("out" if level == "ok" else "err", record)
            before = self.states.get(check.spec)
            self.states[check.spec] = state
            if before is not None and before != state:
                rt.event({"kind": "event", "check": check.spec, "from": before, "to": state,
                          "level": level, "msg": msg})

    def loop(self, rt, duration):
        """Rounds at start + k*interval until the duration is used up or a stop arrives."""
        started = time.monotonic()
        rounds = 0
        while not rt.stopping.is_set():
            self.round(rt)
            rounds += 1
            due = started + rounds * self.interval
            if duration is not None and due >= started + duration:
                break
            if rt.stopping.wait(max(0.0, due - time.monotonic())):
                break
        return rounds

    def serve(self, rt):
        return {"rounds": self.loop(rt, self.duration), "states": dict(self.states)}

    def once(self, rt):
        rounds = self.loop(rt, self.duration or 0.0)
        events = [r for r in rt.sink.records if r.get("kind") == "event"]
        alerts = sorted(s for s, r in self.last.items() if r["level"] != "ok")
        return False, {"rounds": rounds, "results": self.last, "events": events,
                       "alerts": alerts}


def make_service(args):
    if not args.interval > 0:
        raise ProgramError("bad program arguments: --interval must be > 0", rc=2)
    if args.duration is not None and args.duration < 0:
        raise ProgramError("bad program arguments: --duration must be >= 0", rc=2)
    specs = args.specs or ["clock"]
    if len(set(specs)) != len(specs):
        raise ProgramError("bad program arguments: a check spec is given twice", rc=2)
    checks = []
    for spec in specs:
        try:
            checks.append(parse_spec(spec))
        except ValueError as exc:
            raise ProgramError("bad check spec %r: %s" % (spec, exc), rc=2) from None
    return Watcher(checks, args.interval, args.duration)


PROGRAM = make_program("watcher", __doc__, ARGS, make_service)
