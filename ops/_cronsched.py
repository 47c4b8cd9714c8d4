"""Cron schedules as Debian's cron (Vixie cron 3.0pl1) reads them: validation and meaning.

Stricter than cron where cron is sloppy (``*/5/2``, ``1-2-3`` and backwards ranges are
refused); values are ASCII digits only (``str.isdigit`` also takes ``\u0663`` and
``\xb2``, which cron refuses). :func:`schedule_key` gives what a schedule means, so
``00 02 * * *`` and ``0 2 * * *`` are the same job. Python 3.8, stdlib only.
"""
import re

SPECIALS = ("@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily",
            "@midnight", "@hourly")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS = (
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day-of-month", 1, 31, None),
    ("month", 1, 12, dict((n, i + 1) for i, n in enumerate(_MONTHS))),
    ("day-of-week", 0, 7, dict((n, i) for i, n in enumerate(_DAYS))),
)
_DIGITS = re.compile(r"^[0-9]{1,9}$")  # ASCII only: str.isdigit() also takes "\u0663", "\xb2"
_SPECIAL_FIELDS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                   "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                   "@hourly": "0 * * * *"}


class CronError(ValueError):
    """A bad schedule, name or command: ``str()`` is one line."""


def validate_schedule(spec):
    """Return the normalised schedule or raise CronError with a one-line reason."""
    text = (spec or "").strip()
    if not text:
        raise CronError("empty schedule")
    if text.startswith("@"):
        if text in SPECIALS:
            return text
        raise CronError("invalid schedule %r: unknown special (use one of %s)"
                        % (text, ", ".join(SPECIALS)))
    bad = [c for c in text if not c.isascii() or not (c.isprintable() or c.isspace())]
    if bad:  # cron reads ASCII digits, names and blanks only ("\u0663" is not 3 to cron)
        raise CronError("invalid schedule %r: character %r is not allowed (ASCII digits, "
                        "names, * , - / and blanks only)" % (text, bad[0]))
    fields = text.split()  # ASCII only by now: splits on ASCII whitespace
    if len(fields) != 5:
        raise CronError("invalid schedule %r: %d fields, cron needs 5 (minute hour "
                        "day-of-month month day-of-week) or an @special" % (text, len(fields)))
    for index, field in enumerate(_FIELDS):
        reason = _field_error(fields[index], *field)
        if reason:
            raise CronError("invalid schedule %r: %s" % (text, reason))
    return " ".join(fields)


def _field_error(value, label, low, high, names):
    for item in value.split(","):
        if not item:
            return "empty list item in %s field %r" % (label, value)
        base, slash, step = item.partition("/")
        if slash:
            if not _DIGITS.match(step) or not 0 < int(step) <= high - low + 1:
                return "bad step %r in %s field (1-%d)" % (step, label, high - low + 1)
        if base == "*":
            continue
        first, dash, last = base.partition("-")
        bounds = []
        for token in ([first, last] if dash else [first]):
            number = _number(token, low, high, names)
            if number is None:
                return "bad value %r in %s field (allowed %d-%d%s)" % (
                    token, label, low, high, " or names" if names else "")
            bounds.append(number)
        if dash and bounds[0] > bounds[1]:
            return "range %r in %s field goes backwards" % (base, label)
        if slash and not dash:
            return "step %r needs a range or * in %s field" % (item, label)
    return None


def _number(token, low, high, names):
    """A field value as cron reads it: ASCII digits (``00`` is 0) or, in month and
    day-of-week, a three-letter English name; None when cron would refuse it."""
    if _DIGITS.match(token):
        number = int(token)
        return number if low <= number <= high else None
    if names and token.isascii():
        return names.get(token.lower())
    return None


def _expand(value, low, high, names):
    """The set of values one (already valid) field selects."""
    found = set()
    for item in value.split(","):
        base, _, step = item.partition("/")
        if base == "*":
            first, last = low, high
        else:
            start, dash, end = base.partition("-")
            first = _number(start, low, high, names)
            last = _number(end, low, high, names) if dash else (high if step else first)
        found.update(range(first, last + 1, int(step) if step else 1))
    return found


def schedule_key(spec):
    """What a schedule means to cron, whatever its spelling (``00 02 * * *`` is
    ``0 2 * * *``, ``@daily`` is ``0 0 * * *``, ``sun`` is ``0`` and ``7``).

    Day matching follows Vixie cron: when day-of-month or day-of-week starts with ``*``
    a day must match both, otherwise either. CronError for an invalid schedule."""
    text = validate_schedule(spec)
    if text == "@reboot":
        return ("@reboot",)
    fields = _SPECIAL_FIELDS.get(text, text).split()
    sets = [frozenset(_expand(v, *f[1:])) for v, f in zip(fields, _FIELDS)]
    dow = frozenset(0 if d == 7 else d for d in sets[4])
    dom, every_dom, every_dow = sets[2], frozenset(range(1, 32)), frozenset(range(7))
    if fields[2].startswith("*") or fields[4].startswith("*"):
        days = ("dom", dom) if dow == every_dow else ("dow", dow) if dom == every_dom \
            else ("and", dom, dow)
    else:
        days = ("dom", every_dom) if every_dom in (dom,) or dow == every_dow \
            else ("or", dom, dow)
    return (sets[0], sets[1], sets[3], days)
