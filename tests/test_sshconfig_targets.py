"""Inventory host -> Target: inventory vars win like ``ssh -o``, ProxyJump hops resolved as
ssh resolves them, Ansible connection vars honoured or refused, ProxyCommand values
quoted. OpenSSH (``ssh -G``) is the reference wherever ssh has an answer."""

from __future__ import annotations

import getpass
import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from test_sshconfig import HOME, ssh_g

from fleetops.config.targets import target_for
from fleetops.errors import InputError
from fleetops.inventory.load import load_inventory

CONFIG = """\
Host web
    HostName web.example.com
    Port 2201
    User cfguser
    IdentityFile ~/.ssh/web_key
    ConnectTimeout 4
Host bastion
    HostName bastion.example.net
    User jumper
    Port 2022
    IdentityFile ~/.ssh/bastion_key
    UserKnownHostsFile ~/.ssh/kh_bastion
Host hop2
    User hop2user
    Port 2999
Host hop1
    ProxyCommand nc -X connect -x proxy.example:3128 %h %p
Host inner
    ProxyJump bastion
    StrictHostKeyChecking accept-new
Host deep
    ProxyJump inner
Host multi
    ProxyJump u1@hop1:2201,hop2,u3@hop3:2203
Host direct
    ProxyJump none
Host special
    BindAddress 10.9.9.9
Host exec-*
    Port 2300
Match originalhost exec-yes exec "true"
    User never
Host *
    HashKnownHosts yes
    IdentitiesOnly yes
    CertificateFile ~/.ssh/cert-%r
"""


def lineno(needle: str) -> int:
    """The line of CONFIG holding ``needle`` first."""
    return next(n for n, text in enumerate(CONFIG.splitlines(), 1) if needle in text)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ssh_config"
    path.write_text(CONFIG)
    return path


def inventory(tmp_path: Path, text: str):
    path = tmp_path / "hosts.ini"
    path.write_text(text)
    return load_inventory(path)


def test_inventory_vars_win_like_ssh_o(tmp_path, config):
    inv = inventory(tmp_path, (
        f"w ansible_host=web ansible_port=2999 ansible_user=invuser "
        f"ansible_ssh_private_key_file=/keys/inv "
        f"ansible_ssh_common_args='-F {config} -o ConnectTimeout=9 -oUser=ignored -p 1' "
        f"ansible_ssh_extra_args='-o StrictHostKeyChecking=no -i /keys/extra'\n"))
    target = target_for(inv.host("w"))
    want = ssh_g(config, "web", ["-o", "Port=2999", "-o", "IdentityFile=/keys/inv",
                                 "-o", "User=invuser", "-o", "ConnectTimeout=9",
                                 "-oUser=ignored", "-p", "1", "-o",
                                 "StrictHostKeyChecking=no", "-o", "IdentityFile=/keys/extra"])
    assert isinstance(want, dict), want
    assert [target.address] == want["hostname"] == ["web.example.com"]
    assert [str(target.port)] == want["port"] == ["2999"]
    assert [target.user] == want["user"] == ["invuser"]
    assert list(target.key_files) == [os.path.expanduser(k.replace("~", HOME, 1))
                                      for k in want["identityfile"]]
    assert target.key_files[:2] == ("/keys/inv", "/keys/extra")
    assert target.connect_timeout == 9.0 and want["connecttimeout"] == ["9"]
    assert target.strict_host_key_checking == "no"
    assert (target.hash_known_hosts, target.identities_only) == (True, True)
    assert target.certificate_files == (f"{HOME}/.ssh/cert-invuser",)
    assert target.source["address"] == f"{config}:2"
    assert target.source["connect_timeout"] == "ansible_ssh_common_args"


def _hop_g(config: Path, spec_user, spec_port, extra, host):
    options = []
    if spec_user:
        options += ["-l", spec_user]
    if spec_port:
        options += ["-p", str(spec_port)]
    if extra:
        options += ["-J", extra]
    return ssh_g(config, host, options)


def test_proxyjump_hops_are_resolved_like_ssh(tmp_path, config):
    inv = inventory(tmp_path, f"[all:vars]\nansible_ssh_common_args='-F {config}'\n"
                              "[h]\ninner\ndeep\nmulti\ndirect\nweb\n")
    inner = target_for(inv.host("inner"))
    assert [h.name for h in inner.jump] == ["bastion"]
    bastion = inner.jump[0]
    assert (bastion.address, bastion.port, bastion.user) == ("bastion.example.net", 2022,
                                                             "jumper")
    assert bastion.key_files == (f"{HOME}/.ssh/bastion_key",)
    assert bastion.known_hosts == f"{HOME}/.ssh/kh_bastion"
    assert inner.strict_host_key_checking == "accept-new"
    assert inner.source["jump"] == f"{config}:{lineno('ProxyJump bastion')}"

    deep = target_for(inv.host("deep"))  # deep -> inner -> bastion: first hop first
    assert [h.name for h in deep.jump] == ["bastion", "inner"]
    assert all(h.jump == () for h in deep.jump)

    multi = target_for(inv.host("multi"))
    assert [(h.name, h.user, h.port) for h in multi.jump] == [
        ("hop1", "u1", 2201), ("hop2", "hop2user", 2999), ("hop3", "u3", 2203)]
    assert multi.jump[0].proxy_command == "nc -X connect -x proxy.example:3128 hop1 2201"
    # Each hop as OpenSSH runs it: ssh [-l user] [-p port] [-J earlier hops] -F config hop
    for hop, (user, port, extra) in zip(multi.jump, [
            ("u1", 2201, None), (None, None, "u1@hop1:2201"), ("u3", 2203, "u1@hop1:2201,hop2")],
            strict=True):
        want = _hop_g(config, user, port, extra, hop.name)
        assert isinstance(want, dict), want
        assert ([hop.address], [str(hop.port)], [hop.user]) == (
            want["hostname"], want["port"], want["user"])
    assert target_for(inv.host("direct")).jump == ()
    assert target_for(inv.host("web")).jump == ()


def test_command_line_jump_and_none(tmp_path, config):
    inv = inventory(tmp_path, (
        f"a ansible_host=inner ansible_ssh_common_args='-F {config} -J ops@hop9:2209'\n"
        f"b ansible_host=inner ansible_ssh_common_args='-F {config} -o ProxyJump=none'\n"))
    a = target_for(inv.host("a"))
    assert [(h.name, h.user, h.port) for h in a.jump] == [("hop9", "ops", 2209)]
    assert target_for(inv.host("b")).jump == ()
    want = ssh_g(config, "inner", ["-o", "ProxyJump=none"])
    assert isinstance(want, dict) and "proxyjump" not in want


def _host_with(host, **changes):
    fields = {f: getattr(host, f) for f in host.__dataclass_fields__}
    return type(host)(**{**fields, **changes})


PROXY_COMMANDS = [
    "printf '%%s|' %h \"%r\" 'x%ny' %p %k",
    "sh -c 'printf \"%%s|\" %n \"%r\"'",
    "sh -c \"printf '%%s|' %n %h\"",
    "ssh -q bastion nc %h %p",  # a remote shell parses %h again
]


@pytest.mark.parametrize("command", PROXY_COMMANDS)
def test_proxycommand_refuses_inventory_values_a_shell_would_interpret(tmp_path, command):
    mark = tmp_path / "MARK"
    config = tmp_path / "ssh_config"
    config.write_text(f"Host *\n    ProxyCommand {command}\n")
    inv = inventory(tmp_path, f"h ansible_ssh_common_args='-F {config}'\n")
    for field in ("address", "user"):
        for evil in (f"a b;touch {mark}", f"$(touch {mark})", f"`touch {mark}`", "x'y", 'x"y',
                     "x\\y", "x\ny", "x|y", "x&y", "x>y", "x*y", "~x"):
            if field == "user" and "%r" not in command:
                continue
            with pytest.raises(InputError, match="characters a shell interprets are refused"):
                target_for(_host_with(inv.host("h"), **{field: evil}))
    assert not mark.exists()


@pytest.mark.parametrize("command", PROXY_COMMANDS[:3])
def test_proxycommand_tokens_with_real_names(tmp_path, command):
    config = tmp_path / "ssh_config"
    config.write_text(f"Host *\n    ProxyCommand {command}\n    HostKeyAlias Alias.%h\n")
    inv = inventory(tmp_path, (f"h ansible_host=Web-01.example.com ansible_port=2222 "
                               f"ansible_user=jane.doe@corp.example "
                               f"ansible_ssh_common_args='-F {config}'\n"
                               f"v6 ansible_host=fe80::1%eth0 ansible_user=root "
                               f"ansible_ssh_common_args='-F {config}'\n"))
    for name, host, user, port in (("h", "Web-01.example.com", "jane.doe@corp.example", "2222"),
                                   ("v6", "fe80::1%eth0", "root", "22")):
        target = target_for(inv.host(name))
        out = subprocess.run(["/bin/sh", "-c", "exec " + target.proxy_command],
                             capture_output=True, text=True, timeout=10)
        words = out.stdout.split("|")[:-1]
        assert words[0] in (host.lower(), host), (target.proxy_command, out.stderr)
        assert user in words or "%r" not in command
        assert port in words or "%p" not in command
        assert shlex.split(target.proxy_command)[0] in ("printf", "sh")


def test_unsupported_directive_stops_only_that_host(tmp_path, config):
    inv = inventory(tmp_path, f"[all:vars]\nansible_ssh_common_args='-F {config}'\n"
                              "[h]\nspecial\nweb\nexec-no\nexec-yes\n")
    with pytest.raises(InputError) as info:
        target_for(inv.host("special"))
    assert str(info.value).startswith(
        f"{config}:{lineno('BindAddress')}: BindAddress is not supported by fleetops")
    assert "\n" not in str(info.value)
    assert target_for(inv.host("web")).port == 2201
    assert target_for(inv.host("exec-no")).port == 2300  # exec not reached: no refusal
    exec_line = lineno('exec "true"')
    with pytest.raises(InputError, match=f"^{config}:{exec_line}: Match exec is not"):
        target_for(inv.host("exec-yes"))


@pytest.mark.parametrize("text, message", [
    ("Host *\n    CanonicalizeHostname yes\n", ":2: CanonicalizeHostname is not supported"),
    ("Match final\n    Port 1\n", ":1: Match final is not supported"),
    ("Host *\n    KnownHostsCommand /bin/true %H\n", ":2: KnownHostsCommand is not"),
    ("Host *\n    AddressFamily inet6\n", ":2: AddressFamily is not supported"),
    ("Host *\n    NoSuchThing 1\n", ":2: Bad configuration option: nosuchthing"),
])
def test_refused_and_bad_directives(tmp_path, text, message):
    config = tmp_path / "c"
    config.write_text(text)
    inv = inventory(tmp_path, f"h ansible_ssh_common_args='-F {config}'\n")
    with pytest.raises(InputError, match=f"^{config}{message}"):
        target_for(inv.host("h"))


def test_harmless_values_of_refusable_directives_pass(tmp_path):
    config = tmp_path / "c"
    config.write_text("Host *\n    CanonicalizeHostname no\n    AddressFamily any\n"
                      "    KnownHostsCommand none\n    ControlMaster auto\n")
    inv = inventory(tmp_path, f"h ansible_ssh_common_args='-F {config}'\n")
    assert target_for(inv.host("h")).address == "h"


def test_ansible_connection_vars(tmp_path, config):
    inv = inventory(tmp_path, (
        f"a ansible_host=web ansible_password=pw1 ansible_become=yes ansible_become_user=app "
        f"ansible_become_pass=bp ansible_become_method=sudo ansible_connection=paramiko "
        f"ansible_ssh_common_args='-F {config}'\n"
        "b ansible_ssh_pass=pw2 fleetops_password=pw3 ansible_become_password=bp2 "
        "ansible_become=no\n"
        "c ansible_connection=local\n"
        "d\n"))
    a, b, c, d = (target_for(inv.host(n)) for n in "abcd")
    assert (a.password, a.become, a.become_user, a.become_password) == ("pw1", True, "app", "bp")
    assert (a.connection, a.become_method, a.address) == ("ssh", "sudo", "web.example.com")
    assert (b.password, b.become, b.become_password) == ("pw3", False, "bp2")
    assert c.connection == "local"
    assert (d.password, d.become, d.connection) == (None, None, "ssh")
    assert "pw1" not in repr(a) and "bp" not in repr(a)


@pytest.mark.parametrize("line, var, problem", [
    ("h ansible_become_method=su", "ansible_become_method", "not supported by fleetops"),
    ("h ansible_connection=winrm", "ansible_connection", "not supported by fleetops"),
    ("h ansible_ssh_common_args='-X'", "ansible_ssh_common_args", "'-X' is not supported"),
    ("h ansible_ssh_extra_args='-o'", "ansible_ssh_extra_args", "-o needs a value"),
    ("h ansible_become_flags='-H'", "ansible_become_flags", "not supported by fleetops"),
    ("h ansible_ssh_common_args='-o NoSuch=1'", "ansible_ssh_common_args",
     "Bad configuration option: nosuch"),
    ("h ansible_ssh_common_args='-o Port=x'", "ansible_ssh_common_args", "port number"),
    ("h ansible_ssh_extra_args='-o BindAddress=10.0.0.1'", "ansible_ssh_extra_args",
     "-o BindAddress is not supported by fleetops"),
    ("h ansible_ssh_common_args='-o \"Host x\"'", "ansible_ssh_common_args",
     "Bad configuration option: host"),
])
def test_refused_ansible_vars_name_var_and_line(tmp_path, line, var, problem):
    path = tmp_path / "hosts.ini"
    path.write_text(f"[g]\nok\n{line}\n")
    with pytest.raises(InputError) as info:
        load_inventory(path)
    text = str(info.value)
    assert text.startswith(f"{path}:3: host 'h': {var} ") and problem in text, text


def test_compression_flag_is_accepted(tmp_path, config):
    inv = inventory(tmp_path, f"h ansible_host=web ansible_ssh_args='-C -o ControlMaster=auto' "
                              f"ansible_ssh_common_args='-F {config}'\n")
    assert target_for(inv.host("h")).port == 2201


def test_thousand_hosts_resolve_fast(tmp_path):
    blocks = "".join(f"Host group{g}-*\n    User u{g}\n    Port {2000 + g}\n"
                     f"    IdentityFile ~/.ssh/k{g}\n" for g in range(50))
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "a.conf").write_text(blocks)
    config = tmp_path / "c"
    config.write_text(f"Include {tmp_path}/inc/*.conf\nHost !bastion *\n    ProxyJump bastion\n"
                      "Host bastion\n    User jumper\n")
    lines = [f"group{i % 50}-{i} ansible_ssh_common_args='-F {config}'" for i in range(1000)]
    inv = inventory(tmp_path, "\n".join(lines) + "\n")
    best = float("inf")
    for _ in range(3):  # CPU time: the machine may be shared
        start = time.process_time()
        targets = [target_for(h) for h in inv]
        best = min(best, time.process_time() - start)
    assert targets[7].port == 2007 and targets[7].jump[0].user == "jumper"
    assert best < 0.5, f"{best * 1000:.0f} ms CPU for 1000 hosts (2000 resolutions)"


def test_host_key_checking_and_timeout_vars_like_ansible(tmp_path, config):
    inv = inventory(tmp_path, (
        f"a ansible_host=inner ansible_host_key_checking=false ansible_timeout=12 "
        f"ansible_ssh_common_args='-F {config} -o ConnectTimeout=99'\n"
        f"b ansible_host=inner ansible_ssh_host_key_checking=true "
        f"ansible_ssh_common_args='-F {config}'\n"))
    a, b = target_for(inv.host("a")), target_for(inv.host("b"))
    assert (a.strict_host_key_checking, a.connect_timeout) == ("no", 12.0)
    assert (b.strict_host_key_checking, b.connect_timeout) == ("accept-new", None)
    assert a.source["strict_host_key_checking"] == "ansible_host_key_checking"


def test_fleetops_known_hosts_applies_to_hops_too(tmp_path, config):
    inv = inventory(tmp_path, (f"a ansible_host=deep fleetops_known_hosts=/lab/kh "
                               f"ansible_user=me ansible_ssh_common_args='-F {config}'\n"))
    target = target_for(inv.host("a"))
    assert target.known_hosts == "/lab/kh" and target.user == "me"
    assert [(h.name, h.known_hosts, h.user) for h in target.jump] == [
        ("bastion", "/lab/kh", "jumper"), ("inner", "/lab/kh", getpass.getuser())]


def test_refused_proxycommand_value_names_the_config_line(tmp_path):
    config = tmp_path / "c"
    config.write_text("Host *\n    ProxyCommand nc %h %p\n")
    inv = inventory(tmp_path, f"h ansible_ssh_common_args='-F {config}'\n")
    host = _host_with(inv.host("h"), address="a;b")
    with pytest.raises(InputError, match=f"^{config}:2: ProxyCommand %h would insert 'a;b'"):
        target_for(host)


def test_check_targets_resolves_once_and_tells_file_errors_from_host_refusals(tmp_path, config):
    from fleetops.config.targets import HostRefused, check_targets

    inv = inventory(tmp_path, f"[all:vars]\nansible_ssh_common_args='-F {config}'\n"
                              "[h]\nweb\nspecial\n")
    hosts = list(inv)
    check_targets(hosts)
    config.write_text("Host *\n    Port 1\n")  # resolved already: the check's result is used
    assert target_for(hosts[0]).port == 2201
    with pytest.raises(HostRefused, match="BindAddress is not supported"):
        target_for(hosts[1])
    assert target_for(hosts[0]).port == 1  # handed out once; later runs resolve again
    config.write_text("Host *\n    Port nope\n")
    with pytest.raises(InputError) as info:
        check_targets(hosts)
    assert not isinstance(info.value, HostRefused)
    assert str(info.value).startswith(f"{config}:2: Port must be a port number")


def test_cli_exits_4_on_a_broken_ssh_config(tmp_path):
    config = tmp_path / "c"
    config.write_text("Host *\n    NoSuchKeyword 1\n")
    path = tmp_path / "hosts.ini"
    path.write_text(f"h1 ansible_ssh_common_args='-F {config}'\n")
    proc = subprocess.run([str(Path(".venv/bin/invoke").resolve()), "run", "-i", str(path),
                           "true"], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.strip() == (f"fleetops: {config}:2: Bad configuration option: "
                                   "nosuchkeyword (host 'h1')")


def test_identityfile_none_means_no_key_files(tmp_path):
    config = tmp_path / "c"
    config.write_text("Host *\n    IdentityFile none\n")
    inv = inventory(tmp_path, f"h ansible_ssh_common_args='-F {config}'\n")
    assert target_for(inv.host("h")).key_files == ()
