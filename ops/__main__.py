# Kept parseable by old Pythons on purpose: it must be able to say "too old" itself.
import sys


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


if __name__ == "__main__":
    sys.exit(main())
