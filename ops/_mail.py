"""Send a text (+ HTML) mail over SMTP with the standard library only.

Settings come from a config file (INI with an ``[smtp]`` section, or a JSON object)
that must be owned by the current user and not readable by group/others (0600),
then from ``FLEETOPS_SMTP_*`` environment variables for keys the file lacks.
TLS always verifies the server certificate and host name. The password is never
part of an error message, a repr or a log line.
"""
import configparser
import email.utils
import json
import os
import smtplib
import socket
import ssl
import stat
from email.message import EmailMessage

KEYS = ("host", "port", "security", "username", "password", "from", "timeout", "cafile")
ENV = (("host", "FLEETOPS_SMTP_HOST"), ("port", "FLEETOPS_SMTP_PORT"),
       ("username", "FLEETOPS_SMTP_USER"), ("password", "FLEETOPS_SMTP_PASSWORD"),
       ("from", "FLEETOPS_SMTP_FROM"), ("security", "FLEETOPS_SMTP_SECURITY"),
       ("timeout", "FLEETOPS_SMTP_TIMEOUT"), ("cafile", "FLEETOPS_SMTP_CAFILE"))
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
_LOOPBACK = ("localhost", "::1")


class MailError(Exception):
    """A one-line reason the mail could not be configured or sent (never the password)."""


class MailSettings(object):
    __slots__ = ("host", "port", "security", "username", "password", "sender", "timeout",
                 "cafile")

    def __init__(self, host, port=None, security="starttls", username=None, password=None,
                 sender=None, timeout=30.0, cafile=None):
        if security not in DEFAULT_PORTS:
            raise MailError("security must be starttls, tls or none, not %r" % (security,))
        if not host:
            raise MailError("no SMTP host: set host in the mail config or FLEETOPS_SMTP_HOST")
        self.host = host
        self.port = _int(port, "port") if port else DEFAULT_PORTS[security]
        self.security = security
        self.username = username or None
        self.password = password or None
        self.sender = sender or "fleetops@%s" % socket.gethostname()
        self.timeout = _float(timeout, "timeout")
        self.cafile = cafile or None
        if not 0 < self.port < 65536:
            raise MailError("port must be 1-65535, not %s" % self.port)

    def __repr__(self):
        return "MailSettings(host=%r, port=%r, security=%r, username=%r, password=%s)" % (
            self.host, self.port, self.security, self.username,
            "'***'" if self.password else "None")


def _int(value, key):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MailError("%s must be an integer, not %r" % (key, value)) from None


def _float(value, key):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MailError("%s must be a number, not %r" % (key, value)) from None
    if number <= 0:
        raise MailError("%s must be > 0" % key)
    return number


def load_values(path=None, env=None):
    """Raw settings from ``path`` (checked: owner and mode 0600 or stricter) then ``env``."""
    env = os.environ if env is None else env
    values = _read_config(path) if path else {}
    for key, var in ENV:
        if values.get(key) in (None, "") and env.get(var):
            values[key] = env[var]
    return values


def load_settings(path=None, env=None):
    """Checked :class:`MailSettings` from ``path`` then ``env`` (see :func:`load_values`)."""
    values = load_values(path, env)
    return MailSettings(
        values.get("host"), values.get("port"), values.get("security") or "starttls",
        values.get("username"), values.get("password"), values.get("from"),
        values.get("timeout") or 30.0, values.get("cafile"))


def _read_config(path):
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            _check_private(path, info)
            text = handle.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise MailError("cannot read mail config %s: %s" % (path, reason)) from None
    values = _parse_json(path, text) if text.lstrip().startswith("{") else _parse_ini(path, text)
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise MailError("mail config %s: unknown key(s) %s (known: %s)"
                        % (path, ", ".join(unknown), ", ".join(KEYS)))
    return values


def _check_private(path, info):
    if info.st_uid != os.geteuid():
        raise MailError("mail config %s is owned by uid %d, not by you (uid %d): refused"
                        % (path, info.st_uid, os.geteuid()))
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise MailError("mail config %s has mode %04o: must be 0600 or stricter "
                        "(chmod 600 %s)" % (path, mode, path))


def _parse_json(path, text):
    try:
        values = json.loads(text)
    except ValueError as exc:
        raise MailError("mail config %s: invalid JSON at line %d" % (path, exc.lineno)) from None
    if not isinstance(values, dict):
        raise MailError("mail config %s: expected a JSON object" % path)
    return {str(k).lower(): (None if v is None else str(v)) for k, v in values.items()}


def _parse_ini(path, text):
    parser = configparser.ConfigParser(interpolation=None)
    try:
        if not any(line.lstrip().startswith("[") for line in text.splitlines()):
            text = "[smtp]\n" + text
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        raise MailError("mail config %s: %s" % (path, str(exc).splitlines()[0])) from None
    for name in ("smtp", "mail"):
        if parser.has_section(name):
            return dict(parser.items(name))
    raise MailError("mail config %s: no [smtp] section" % path)


def _sendable(text):
    """Undecodable bytes carried in ``text`` (surrogate escapes, e.g. a mount name that is
    not UTF-8) as ``\\xNN``: the message can always be encoded, nothing is lost silently."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode
            out.append("\\x%02x" % (code - 0xDC00))
        elif 0xD800 <= code <= 0xDFFF:  # any other lone surrogate
            out.append("\\u%04x" % code)
        else:
            out.append(char)
    return "".join(out)


def build_message(settings, to, subject, text, html=None):
    subject, text = _sendable(" ".join(subject.split())), _sendable(text)
    html = None if html is None else _sendable(html)
    msg = EmailMessage()
    msg["From"] = settings.sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(localtime=True)
    domain = settings.sender.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = email.utils.make_msgid(domain=domain)
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


def send_mail(settings, to, subject, text, html=None):
    """Send the mail; return its Message-ID or raise :class:`MailError` (one line)."""
    to = list(to)
    if not to:
        raise MailError("no recipients")
    try:
        msg = build_message(settings, to, subject, text, html)
    except (ValueError, TypeError) as exc:
        raise MailError("cannot build the message: %s" % exc) from None
    try:
        _deliver(settings, msg, to)
    except MailError as exc:
        raise MailError(_scrub(str(exc), settings.password)) from None
    except Exception as exc:
        raise MailError(_scrub(_reason(settings, exc), settings.password)) from None
    return msg["Message-ID"]


def _deliver(settings, msg, to):
    if settings.username and settings.security == "none" and not _is_loopback(settings.host):
        raise MailError("refusing to send the SMTP password unencrypted to %s "
                        "(use security=starttls or tls)" % settings.host)
    context = None
    if settings.security != "none":
        try:
            context = ssl.create_default_context(cafile=settings.cafile)
        except (OSError, ssl.SSLError) as exc:
            raise MailError("cannot load CA file %s: %s"
                            % (settings.cafile, getattr(exc, "strerror", None) or exc)) from None
    if settings.security == "tls":
        client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                  context=context)
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        if settings.security == "starttls":
            client.ehlo()
            if not client.has_extn("starttls"):
                raise MailError("%s:%d does not offer STARTTLS" % (settings.host, settings.port))
            client.starttls(context=context)
            client.ehlo()
        if settings.username:
            client.login(settings.username, settings.password or "")
        client.send_message(msg, from_addr=settings.sender, to_addrs=to)
    finally:
        _close(client)


def _close(client):
    try:
        client.quit()
    except Exception:
        client.close()


def _is_loopback(host):
    return host in _LOOPBACK or host.startswith("127.")


def _reason(settings, exc):
    where = "%s:%d" % (settings.host, settings.port)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS certificate verification failed for %s: %s" % (where, exc.verify_message)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "SMTP authentication failed for user %r at %s (%d)" % (
            settings.username, where, exc.smtp_code)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return "%s: %s" % (where, exc)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "%s refused recipient(s) %s" % (where, ", ".join(sorted(exc.recipients)))
    if isinstance(exc, smtplib.SMTPResponseException):
        return "%s answered %d %s" % (where, exc.smtp_code, _text(exc.smtp_error))
    if isinstance(exc, ConnectionRefusedError):
        return "cannot connect to %s: connection refused" % where
    if isinstance(exc, socket.timeout):
        return "timed out talking to %s after %gs" % (where, settings.timeout)
    if isinstance(exc, (OSError, smtplib.SMTPException)):
        return "cannot send via %s: %s" % (where, _text(exc))
    return "cannot send via %s: %s: %s" % (where, type(exc).__name__, _text(exc))


def _text(value):
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).split())


def _scrub(message, password):
    message = " ".join(message.split())
    if password:
        message = message.replace(password, "***")
    return message
