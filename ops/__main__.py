# Kept parseable by old Pythons on purpose: it must be able to say "too old" itself.
import sys

# Programs whose run leaves nothing for the interpreter's teardown to do (no threads, no
# atexit hooks, every file they write closed by a with block): once their JSON document
# is flushed the process ends with os._exit, skipping the finalisation that frees every
# object (about 2 ms of host CPU per run, measured on diskreport; see docs/lab.md).
FAST_EXIT = ("diskreport",)


def _too_old():
    sys.stdout.write(
        '{"ok": false, "changed": false, "data": {}, '
        '"error": "python %d.%d is too old: fleetops needs >= 3.8"}\n'
        % sys.version_info[:2]
    )
    return 3


def main():
    if sys.version_info < (3, 8):
        return _too_old()
    from ops._dispatch import dispatch

    return dispatch(sys.argv[1:])


def finish(rc):
    """End the process with exit status ``rc`` (what ``sys.exit(rc)`` does), without the
    interpreter's teardown when the program that ran is in :data:`FAST_EXIT` and no
    thread module, atexit callback or unflushable stdout/stderr says otherwise."""
    ran = getattr(sys.modules.get("ops._dispatch"), "RAN", None)
    if ran in FAST_EXIT and "threading" not in sys.modules and isinstance(rc, int):
        import atexit
        import os

        if getattr(atexit, "_ncallbacks", lambda: 1)() == 0:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except (OSError, ValueError):
                sys.exit(rc)
            os._exit(rc)
    sys.exit(rc)


if __name__ == "__main__":
    finish(main())
