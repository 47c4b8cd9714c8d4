"""ops/_mail against a real SMTP server (aiosmtpd on 127.0.0.1) with a trustme test CA."""

from __future__ import annotations

import contextlib
import email
import email.policy
import email.utils
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from ops._mail import MailError, MailSettings, load_settings, send_mail

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "s3cret-Pa55word-xyzzy"
USER = "reporter"


class Inbox:
    def __init__(self):
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"

    def parsed(self, index: int = -1) -> email.message.EmailMessage:
        return email.message_from_bytes(self.messages[index][2], policy=email.policy.default)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@contextlib.contextmanager
def smtp_server(**kwargs):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    return ctx


@pytest.fixture()
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture()
def other_ca_file(tmp_path: Path) -> str:
    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


def settings(port: int, **kwargs) -> MailSettings:
    values = {"host": "127.0.0.1", "port": port, "security": "none",
              "sender": "fleetops@ops.example.com", "timeout": 10}
    values.update(kwargs)
    return MailSettings(**values)


def no_secret(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text


def test_plain_mail_has_headers_and_both_alternatives():
    with smtp_server() as (inbox, port):
        message_id = send_mail(settings(port), ["ops@example.com", "oncall@example.com"],
                               "[fleetops] disk report web1: CRIT",
                               "/srv  95%  crit\n", "<p>/srv <b>95%</b></p>")
    (mail_from, rcpts, _), msg = inbox.messages[0], inbox.parsed()
    assert mail_from == "fleetops@ops.example.com"
    assert rcpts == ["ops@example.com", "oncall@example.com"]
    assert msg["Message-ID"] == message_id and message_id.endswith("@ops.example.com>")
    assert msg["From"] == "fleetops@ops.example.com"
    assert msg["To"] == "ops@example.com, oncall@example.com"
    assert msg["Subject"] == "[fleetops] disk report web1: CRIT"
    sent = email.utils.parsedate_to_datetime(msg["Date"])
    assert sent.tzinfo is not None and abs(sent.timestamp() - time.time()) < 120
    assert msg.get_content_type() == "multipart/alternative"
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == "/srv  95%  crit\n"
    assert "<b>95%</b>" in msg.get_body(("html",)).get_content()


def test_starttls_verifies_with_the_given_ca(server_ctx, ca_file):
    with smtp_server(tls_context=server_ctx, require_starttls=True) as (inbox, port):
        send_mail(settings(port, security="starttls", cafile=ca_file), ["a@example.com"],
                  "s", "body")
    assert len(inbox.messages) == 1  # require_starttls: MAIL is refused before STARTTLS


@pytest.mark.parametrize("which", ["wrong CA", "system CAs"])
def test_starttls_fails_without_the_right_ca(server_ctx, other_ca_file, which):
    cafile = other_ca_file if which == "wrong CA" else None
    with smtp_server(tls_context=server_ctx, require_starttls=True) as (inbox, port):
        with pytest.raises(MailError) as caught:
            send_mail(settings(port, security="starttls", cafile=cafile), ["a@example.com"],
                      "s", "body")
    assert str(caught.value).startswith(
        f"TLS certificate verification failed for 127.0.0.1:{port}: ")
    assert "unable to get local issuer certificate" in str(caught.value)
    assert inbox.messages == []


def test_host_name_is_checked(ca, ca_file):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("mail.example.com").configure_cert(ctx)
    with smtp_server(tls_context=ctx, require_starttls=True) as (inbox, port):
        with pytest.raises(MailError, match="IP address mismatch"):
            send_mail(settings(port, security="starttls", cafile=ca_file), ["a@example.com"],
                      "s", "body")
    assert inbox.messages == []


def test_implicit_tls(server_ctx, ca_file, other_ca_file):
    with smtp_server(ssl_context=server_ctx) as (inbox, port):
        send_mail(settings(port, security="tls", cafile=ca_file), ["a@example.com"], "s", "x")
        with pytest.raises(MailError, match="certificate verification failed"):
            send_mail(settings(port, security="tls", cafile=other_ca_file), ["a@example.com"],
                      "s", "x")
    assert len(inbox.messages) == 1


def test_auth_over_starttls_and_the_password_never_leaks(server_ctx, ca_file):
    tls = {"tls_context": server_ctx, "require_starttls": True, "authenticator": authenticator,
           "auth_require_tls": True}
    with smtp_server(**tls) as (inbox, port):
        good = settings(port, security="starttls", cafile=ca_file, username=USER,
                        password=PASSWORD)
        send_mail(good, ["a@example.com"], "s", "x")
        bad = settings(port, security="starttls", cafile=ca_file, username=USER,
                       password=PASSWORD[::-1])
        with pytest.raises(MailError) as caught:
            send_mail(bad, ["a@example.com"], "s", "x")
    assert len(inbox.messages) == 1
    exc = caught.value
    assert str(exc) == f"SMTP authentication failed for user 'reporter' at 127.0.0.1:{port} (535)"
    assert exc.__cause__ is None and exc.__suppress_context__
    rendered = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    no_secret(rendered, repr(good), str(exc))
    assert PASSWORD[::-1] not in rendered
    assert "password='***'" in repr(good)


def test_password_is_not_sent_in_clear_to_a_remote_host():
    remote = MailSettings("192.0.2.1", 25, "none", USER, PASSWORD, "a@example.com", 1)
    with pytest.raises(MailError, match="refusing to send the SMTP password unencrypted"):
        send_mail(remote, ["a@example.com"], "s", "x")


def test_refused_connection_is_one_line():
    with pytest.raises(MailError) as caught:
        send_mail(settings(free_port(), password=PASSWORD, username=USER), ["a@b.example"],
                  "s", "x")
    assert str(caught.value).startswith("cannot connect to 127.0.0.1:")
    assert str(caught.value).endswith(": connection refused")


# --- settings files -----------------------------------------------------------------

def write_config(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_ini_and_json_settings_with_env_fallback(tmp_path):
    ini = write_config(tmp_path / "mail.ini", f"[smtp]\nhost = mail.example.com\n"
                       f"security = tls\nusername = {USER}\npassword = {PASSWORD}\n")
    env = {"FLEETOPS_SMTP_FROM": "cron@example.com", "FLEETOPS_SMTP_HOST": "ignored.example"}
    loaded = load_settings(str(ini), env=env)
    assert (loaded.host, loaded.port, loaded.security, loaded.sender) == (
        "mail.example.com", 465, "tls", "cron@example.com")
    assert loaded.password == PASSWORD and PASSWORD not in repr(loaded)
    js = write_config(tmp_path / "mail.json", json.dumps(
        {"host": "127.0.0.1", "port": 2525, "security": "none", "timeout": 3}))
    loaded = load_settings(str(js), env={"FLEETOPS_SMTP_PASSWORD": PASSWORD})
    assert (loaded.port, loaded.timeout, loaded.password) == (2525, 3.0, PASSWORD)
    only_env = load_settings(None, env={"FLEETOPS_SMTP_HOST": "h", "FLEETOPS_SMTP_PORT": "26"})
    assert (only_env.host, only_env.port, only_env.security) == ("h", 26, "starttls")


@pytest.mark.parametrize("text, message", [
    ("[smtp]\nhost = h\nsecurity = ssl3\n", "security must be starttls, tls or none"),
    ("[smtp]\nhost = h\nport = many\n", "port must be an integer"),
    ("[smtp]\nhots = h\n", "unknown key(s) hots"),
    ("[smtp]\nport = 25\n", "no SMTP host"),
    ('{"host": ', "invalid JSON"),
])
def test_bad_settings_are_explained(tmp_path, text, message):
    path = write_config(tmp_path / "mail.conf", text)
    with pytest.raises(MailError) as caught:
        load_settings(str(path), env={})
    assert message in str(caught.value)


def test_group_readable_config_is_refused(tmp_path):
    path = write_config(tmp_path / "mail.ini", f"[smtp]\nhost = h\npassword = {PASSWORD}\n",
                        0o644)
    with pytest.raises(MailError) as caught:
        load_settings(str(path), env={})
    assert str(caught.value) == (f"mail config {path} has mode 0644: must be 0600 or stricter "
                                 f"(chmod 600 {path})")
    no_secret(str(caught.value))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
def test_config_owned_by_someone_else_is_refused(tmp_path):
    path = write_config(tmp_path / "mail.ini", "[smtp]\nhost = h\n")
    os.chown(path, 65534, 65534)
    with pytest.raises(MailError, match="is owned by uid 65534, not by you"):
        load_settings(str(path), env={})


# --- the remote program sending mail --------------------------------------------------

def run_diskreport(*args: str, env: dict | None = None):
    proc = subprocess.run([sys.executable, "-m", "ops", "diskreport", "--include", "/", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **(env or {})))
    return proc.returncode, json.loads(proc.stdout), proc.stdout + proc.stderr


def test_program_mails_the_report(tmp_path, server_ctx, ca_file):
    tls = {"tls_context": server_ctx, "require_starttls": True, "authenticator": authenticator,
           "auth_required": True}
    with smtp_server(**tls) as (inbox, port):
        config = write_config(tmp_path / "mail.ini", (
            f"[smtp]\nhost = 127.0.0.1\nport = {port}\nsecurity = starttls\nusername = {USER}\n"
            f"password = {PASSWORD}\nfrom = fleetops@lab.example\ncafile = {ca_file}\n"))
        rc, doc, output = run_diskreport("--email", "ops@example.com", "--mail-config",
                                         str(config))
    assert rc == 0 and doc["ok"] is True, doc["error"]
    no_secret(output)
    msg = inbox.parsed()
    assert doc["data"]["email"]["message_id"] == msg["Message-ID"]
    assert msg["To"] == "ops@example.com"
    assert msg["Subject"] == f"[fleetops] disk report {doc['data']['hostname']}: OK"
    root = doc["data"]["mounts"][0]
    text = msg.get_body(("plain",)).get_content()
    row = next(line.split() for line in text.splitlines() if line.startswith("OK "))
    assert row[1] == "/" and row[6] == f"{root['use_pct']}%" and row[2] == root["fstype"]
    html = msg.get_body(("html",)).get_content()
    assert f"<td style=\"padding:2px 8px\">{root['use_pct']}%</td>" in html


def test_failed_mail_saves_the_report(tmp_path):
    spool = tmp_path / "spool"
    env = {"FLEETOPS_SMTP_HOST": "127.0.0.1", "FLEETOPS_SMTP_PORT": str(free_port()),
           "FLEETOPS_SMTP_SECURITY": "none", "FLEETOPS_SMTP_USER": USER,
           "FLEETOPS_SMTP_PASSWORD": PASSWORD}
    rc, doc, output = run_diskreport("--email", "ops@example.com", "--spool-dir", str(spool),
                                     env=env)
    assert rc == 1 and doc["ok"] is False
    assert doc["error"].startswith("mail not sent: cannot connect to 127.0.0.1:")
    saved = Path(doc["data"]["saved_report"])
    assert saved.parent == spool and saved.is_file()
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    content = saved.read_text()
    assert "connection refused" in content and "USE%" in content
    assert doc["data"]["mounts"][0]["mountpoint"] == "/"  # the figures are still returned
    no_secret(output, content)


def test_program_refuses_a_world_readable_config(tmp_path):
    config = write_config(tmp_path / "mail.ini", f"[smtp]\nhost = h\npassword = {PASSWORD}\n",
                          0o644)
    rc, doc, output = run_diskreport("--email", "ops@example.com", "--mail-config", str(config))
    assert rc == 2 and doc["ok"] is False
    assert doc["error"].startswith("bad arguments: mail settings: mail config ")
    assert "mode 0644" in doc["error"]
    no_secret(output)


def test_control_side_report_email(server_ctx, ca_file):
    from fleetops.jobs.disk.report import build_report, send_report_email

    data = {"hostname": "web1", "mounts": [
        {"mountpoint": "/srv", "device": "/dev/vdb", "fstype": "xfs", "size_bytes": 100 << 30,
         "used_bytes": 95 << 30, "avail_bytes": 5 << 30, "use_pct": 95, "inodes_total": 10,
         "inodes_used": 1, "inodes_pct": 10, "level": "crit", "over": ["space_crit"],
         "error": None}]}
    report = build_report({"web1": ("ok", None, data), "db1": ("unreachable", "timed out", {})})
    with smtp_server(tls_context=server_ctx, require_starttls=True) as (inbox, port):
        message_id = send_report_email(report, ["ops@example.com"], settings(
            port, security="starttls", cafile=ca_file))
    msg = inbox.parsed()
    assert msg["Message-ID"] == message_id
    assert msg["Subject"] == ("[fleetops] disk report: CRIT (1 host(s) over threshold, "
                              "1 host(s) without data)")
    text = msg.get_body(("plain",)).get_content()
    assert "web1" in text and "95%" in text and "db1  unreachable: timed out" in text
    html = msg.get_body(("html",)).get_content()
    assert "<td class=\"host\">db1</td>" in html and "width: 95%" in html
