"""Picks the program named by the first argument and runs it under the contract."""
import sys

from ops._contract import emit, result

PROGRAMS = ("diskreport", "sweep", "arpscan", "cron", "watcher", "dirsync", "files")
RAN = None  # the program dispatched (read by ops.__main__.finish)


def _usage():
    return "usage: fleetops.pyz PROGRAM [ARGS...]  (PROGRAM: %s)" % ", ".join(PROGRAMS)


def dispatch(argv):
    global RAN
    if not argv or argv[0] in ("-h", "--help"):
        sys.stderr.write(_usage() + "\n")
        return 0 if argv else 2
    name = argv[0]
    if name not in PROGRAMS:
        emit(result(False, error="unknown program %r; %s" % (name, _usage())))
        return 2
    try:
        __import__("ops." + name)
        module = sys.modules["ops." + name]
    except ImportError as exc:
        emit(result(False, error="program %r is not available: %s" % (name, exc)))
        return 2
    RAN = name
    return module.PROGRAM.main(argv[1:])
