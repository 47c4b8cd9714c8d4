"""Inventory loading: INI/YAML parity, precedence, vars files, ssh config, bad input."""

from __future__ import annotations

import dataclasses
import getpass
import os
import time
from pathlib import Path

import pytest

from fleetops.errors import InputError
from fleetops.inventory.load import Host, load_inventory, resolve_ssh

FLEET = Path(__file__).parent / "data" / "inventory" / "fleet"
ALL_HOSTS = [
    "bastion",
    "web01.example.com",
    "web02.example.com",
    "web03.example.com",
    "web04.example.com",
    "db-a",
    "db-b",
    *[f"lab0{i}" for i in range(1, 7)],
]


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def load_text(tmp_path: Path, text: str, name: str = "hosts.ini"):
    return load_inventory(write(tmp_path, name, text))


def error_of(path: str) -> str:
    with pytest.raises(InputError) as info:
        load_inventory(path)
    return str(info.value)


# -- the shared fixture fleet -----------------------------------------------------------------


@pytest.fixture(scope="module", params=["hosts.ini", "hosts.yml"])
def fleet(request):
    return load_inventory(FLEET / request.param)


def test_ini_and_yaml_twins_are_identical():
    ini, yml = load_inventory(FLEET / "hosts.ini"), load_inventory(FLEET / "hosts.yml")
    assert [h.name for h in ini] == ALL_HOSTS
    assert ini.hosts == yml.hosts
    assert [h.vars for h in ini] == [h.vars for h in yml]
    assert [h.groups for h in ini] == [h.groups for h in yml]
    strip = {n: g for n, g in ini.groups.items() if n != "all"}
    assert strip == {n: g for n, g in yml.groups.items() if n != "all"}
    assert ini.groups["all"].hosts == yml.groups["all"].hosts
    # YAML's all: hosts: puts bastion in all itself, INI in ungrouped only (as Ansible)
    assert (ini.groups["all"].own_hosts, yml.groups["all"].own_hosts) == ((), ("bastion",))
    assert set(ini.groups) == {"all", "ungrouped", "web", "db", "lab", "spare", "prod"}


def test_groups_and_implicit_groups(fleet):
    groups = fleet.groups
    # Ansible's order: all's own hosts, then ungrouped, lab, spare, prod, then web, db
    assert groups["all"].hosts == tuple([ALL_HOSTS[0], *ALL_HOSTS[7:], *ALL_HOSTS[1:7]])
    assert groups["ungrouped"].hosts == ("bastion",)
    assert groups["prod"].hosts == tuple(ALL_HOSTS[1:7])
    assert groups["prod"].children == ("db", "web")
    assert groups["web"].parents == ("prod",)
    assert groups["all"].children == ("lab", "prod", "spare", "ungrouped")
    assert (groups["all"].depth, groups["prod"].depth, groups["web"].depth) == (0, 1, 2)
    assert groups["spare"].hosts == ()
    assert fleet.host("db-a").groups == {"all", "db", "prod"}
    assert fleet.host("bastion").groups == {"all", "ungrouped"}


def test_ranges_and_host_port(fleet):
    assert [h.name for h in fleet if h.name.startswith("lab")] == [f"lab0{i}" for i in range(1, 7)]
    assert fleet.host("web04.example.com").port == 2222
    assert fleet.host("web01.example.com").port is None
    assert fleet.host("web04.example.com").vars["motd"] == "hello world"
    assert fleet.host("web04.example.com").vars["weight"] == 3


def test_connection_settings(fleet):
    bastion = fleet.host("bastion")
    assert (bastion.address, bastion.port) == ("192.0.2.10", 2200)
    assert bastion.user == "ops"  # fleetops_user beats ansible_user from host_vars/bastion
    assert bastion.vars["ansible_user"] == "jump"
    web = fleet.host("web02.example.com")
    assert (web.address, web.user, web.become, web.python) == (
        "web02.example.com",
        "deploy",
        False,
        None,
    )
    db = fleet.host("db-b")
    assert db.become is True
    assert db.python == "/usr/bin/python3"
    assert db.known_hosts == "/etc/fleetops/known_hosts"


def test_vars_files_and_directories(fleet):
    web01, web02 = fleet.host("web01.example.com"), fleet.host("web02.example.com")
    assert web01.vars["http_port"] == 8443  # host_vars/web01.example.com.yml
    assert web02.vars["http_port"] == 8080
    assert web02.vars["packages"] == ["nginx"]  # group_vars/web/main.yml
    assert web02.vars["tls"] is True  # group_vars/web/tls.yaml, later in the directory
    assert "not loaded" not in web02.vars  # notes.txt skipped
    assert "hidden_loaded" not in web02.vars  # .hidden.yml skipped
    assert fleet.host("db-a").vars["backup"] == "nightly"  # group_vars/db.json
    assert fleet.host("lab01").vars["dns_servers"] == ["192.0.2.53", "192.0.2.54"]
    assert "x" not in fleet.host("lab01").vars  # group_vars/ghost.yml: no such group
    assert fleet.groups["web"].vars["tls"] is True
    assert fleet.groups["web"].vars["tier"] == "web"


def test_group_depth_precedence(fleet):
    assert fleet.host("lab01").vars["tier"] == "base"
    assert fleet.host("db-a").vars["tier"] == "prod"
    assert fleet.host("web01.example.com").vars["tier"] == "web"


def test_host_and_inventory_are_immutable(fleet):
    with pytest.raises(dataclasses.FrozenInstanceError):
        fleet.host("bastion").port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        fleet.hosts = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        fleet.groups["x"] = None  # type: ignore[index]
    assert "vars" not in repr(fleet.host("bastion"))  # secrets never printed via repr
    assert "bastion" in fleet and "nope" not in fleet and len(fleet) == len(ALL_HOSTS)
    assert hash(fleet.host("bastion")) == hash(load_inventory(FLEET / "hosts.ini").host("bastion"))


# -- precedence -------------------------------------------------------------------------------

PRECEDENCE_INI = """\
[parent:children]
child
[child]
h1 host_inline=host host_vs_file=host
[alpha]
h1
[beta]
h1
[aaa]
h1
[zzz]
h1
[all:vars]
only_all=all
all_vs_group=all
[parent:vars]
all_vs_group=parent
depth=parent
[child:vars]
depth=child
inline_vs_all_file=child-inline
inline_vs_file=child-inline
[alpha:vars]
by_name=alpha
[beta:vars]
by_name=beta
[aaa:vars]
by_priority=aaa
ansible_group_priority=5
[zzz:vars]
by_priority=zzz
"""


def test_precedence(tmp_path):
    write(
        tmp_path,
        "group_vars/all.yml",
        "inline_vs_all_file: all-file\nall_file_vs_group_file: all\n",
    )
    write(
        tmp_path,
        "group_vars/child.yml",
        "inline_vs_file: child-file\nall_file_vs_group_file: child\n",
    )
    write(tmp_path, "host_vars/h1.yml", "host_vs_file: host-file\n")
    vars_ = load_text(tmp_path, PRECEDENCE_INI).host("h1").vars
    assert vars_["only_all"] == "all"
    assert vars_["all_vs_group"] == "parent"  # any group beats all
    assert vars_["depth"] == "child"  # deeper group beats its parent
    assert vars_["by_name"] == "beta"  # same depth: later name wins
    assert vars_["by_priority"] == "aaa"  # ansible_group_priority beats name order
    assert vars_["inline_vs_all_file"] == "all-file"  # Ansible: any group_vars file > inline
    assert vars_["inline_vs_file"] == "child-file"
    assert vars_["all_file_vs_group_file"] == "child"
    assert vars_["host_inline"] == "host"
    assert vars_["host_vs_file"] == "host-file"


def test_vars_file_spellings_first_found_only(tmp_path):
    """Ansible's find_vars_files: <name> (file or dir), else .yml, else .yaml, else .json."""
    write(tmp_path, "group_vars/g", "a: bare\nb: bare\nc: bare\nd: bare\n")
    write(tmp_path, "group_vars/g.yml", "b: yml\nc: yml\nd: yml\n")
    write(tmp_path, "group_vars/g.yaml", "c: yaml\nd: yaml\n")
    write(tmp_path, "group_vars/g.json", '{"d": "json"}')
    write(tmp_path, "host_vars/h/10-first.yml", "x: first\ny: first\n")
    write(tmp_path, "host_vars/h/sub/20-second", "y: second\n")
    write(tmp_path, "host_vars/h/backup.yml~", "y: backup\n")
    host = load_text(tmp_path, "[g]\nh\n").host("h")
    assert [host.vars[k] for k in "abcd"] == ["bare", "bare", "bare", "bare"]
    assert (host.vars["x"], host.vars["y"]) == ("first", "second")
    (tmp_path / "group_vars" / "g").unlink()
    host = load_text(tmp_path, "[g]\nh\n").host("h")
    assert [host.vars.get(k) for k in "abcd"] == [None, "yml", "yml", "yml"]


def test_group_vars_directory_beats_file_beside_it(tmp_path):
    write(tmp_path, "group_vars/web.yml", "source: file\nonly_file: 1\n")
    write(tmp_path, "group_vars/web/main.yml", "source: directory\n")
    host = load_text(tmp_path, "[web]\nw1\n").host("w1")
    assert host.vars["source"] == "directory" and "only_file" not in host.vars


def test_ini_value_parsing(tmp_path):
    inv = load_text(
        tmp_path,
        "h1 n=22 f=1.5 t=True yes=yes s='22' d=\"a b\" l=[1,2] z=0123 e= ip=10.0.0.1\n"
        "[all:vars]\n"
        "spaced = two words   # comment\n"
        "url=http://x/#frag\n"
        "quoted='keep # this'\n"
        "num=7\n",
    )
    v = inv.host("h1").vars
    # Ansible: shlex removes the quotes, then ast.literal_eval: '22' is the int 22
    assert (v["n"], v["f"], v["t"], v["yes"], v["s"], v["d"]) == (22, 1.5, True, "yes", 22, "a b")
    assert (v["l"], v["z"], v["e"], v["ip"]) == ([1, 2], "0123", "", "10.0.0.1")
    # :vars values are the whole rest of the line, comments included
    assert (v["spaced"], v["url"], v["quoted"], v["num"]) == (
        "two words   # comment",
        "http://x/#frag",
        "keep # this",
        7,
    )


def test_ini_values_as_ansible_reads_them(tmp_path):
    inv = load_text(
        tmp_path,
        "h devices=\"['/dev/sda', '/dev/sdb']\" lvm=\"[]\" t=(1,2) s={1} c=1j e=... url=a/#b\n"
        "[all:vars]\nlit=5 # five\nword=hello # note\nd={'a': (1, 2)}\n",
    )
    v = inv.host("h").vars
    assert (v["devices"], v["lvm"], v["t"], v["s"]) == (["/dev/sda", "/dev/sdb"], [], [1, 2], [1])
    assert (v["c"], v["e"], v["url"]) == ("1j", "...", "a/")
    assert (v["lit"], v["word"], v["d"]) == (5, "hello # note", {"a": [1, 2]})


def test_children_nesting_forward_refs_and_multiple_parents(tmp_path):
    inv = load_text(
        tmp_path,
        "[top:children]\nmid\n[mid:children]\nleaf\nother\n[leaf]\nh1\n[other]\nh2\n"
        "[zside:children]\nleaf\n[top:vars]\nv=top\n[zside:vars]\nv=zside\n",
    )
    assert inv.groups["leaf"].parents == ("mid", "zside")
    assert inv.groups["leaf"].depth == 3  # deepest path all > top > mid > leaf
    assert inv.groups["top"].hosts == ("h1", "h2")
    assert inv.host("h1").groups == {"all", "top", "mid", "leaf", "zside"}
    assert inv.host("h1").vars["v"] == "zside"  # both depth 1: 'zside' sorts after 'top'
    assert inv.groups["zside"].depth == 1
    assert inv.host("h2").vars["v"] == "top"


def test_children_naming_an_undeclared_group_is_refused(tmp_path):
    """Ansible: "Section [parent:children] includes undefined group 'newgroup'"."""
    path = write(tmp_path, "hosts.ini", "[parent:children]\nnewgroup\n[newgroup:vars]\nx=1\n")
    assert error_of(path).endswith(
        "hosts.ini:2: section [parent:children] names undefined group 'newgroup'")
    inv = load_text(tmp_path, "[parent:children]\nnewgroup\n[newgroup]\n[newgroup:vars]\nx=1\n")
    assert inv.groups["newgroup"].parents == ("parent",)
    assert inv.groups["newgroup"].vars == {"x": 1}


def test_ungrouped_reconciliation(tmp_path):
    inv = load_text(tmp_path, "a\nb\n[ungrouped]\nc\n[g]\nb\n")
    assert inv.groups["ungrouped"].hosts == ("a", "c")
    assert inv.host("b").groups == {"all", "g"}


def test_empty_inventories(tmp_path):
    assert len(load_text(tmp_path, "# nothing\n")) == 0
    assert len(load_text(tmp_path, "", name="empty.yml")) == 0


def test_yaml_nulls_strings_and_no_extension(tmp_path):
    inv = load_text(
        tmp_path,
        "# YAML without extension\nall:\n  hosts: solo\n  children:\n    g:\n      hosts:\n"
        "        h1:\n      vars:\n    e: ~\n    s:\n      children: g\n",
        name="inventory",
    )
    assert [h.name for h in inv] == ["solo", "h1"]
    assert inv.groups["s"].children == ("g",)
    assert inv.groups["e"].hosts == ()


def test_ipv6_and_bracketed_ports(tmp_path):
    inv = load_text(tmp_path, "fe80::1\n[::1]:2022\nweb[1:2]:2200\n")
    assert [(h.name, h.port) for h in inv] == [
        ("fe80::1", None),
        ("::1", 2022),
        ("web1", 2200),
        ("web2", 2200),
    ]


def test_range_forms(tmp_path):
    inv = load_text(tmp_path, "n[1:10:4]\nz[08:10]\nx[a:b][1:2]\nq[:1]\n")
    expected = "n1 n5 n9 z08 z09 z10 xa1 xa2 xb1 xb2 q0 q1"
    assert " ".join(h.name for h in inv) == expected


def test_same_host_twice_with_same_vars_is_fine(tmp_path):
    inv = load_text(tmp_path, "[a]\nh x=1 y=2\n[b]\nh x=1\nh z=3\n")
    assert inv.host("h").vars == {"x": 1, "y": 2, "z": 3}
    assert inv.host("h").groups == {"all", "a", "b"}


def test_connection_var_spellings(tmp_path):
    inv = load_text(
        tmp_path,
        "h1 ansible_host=a1 fleetops_host=f1 ansible_port=22 fleetops_port='2022' "
        "ansible_ssh_private_key_file=~/k1 fleetops_key_file=~/k2 fleetops_known_hosts=~/kh "
        "ansible_python_interpreter=/a/py fleetops_python=/f/py ansible_become=yes "
        "ansible_become_user=admin\n"
        "h2 ansible_ssh_host=legacy ansible_ssh_user=old ansible_python_interpreter=auto_silent "
        "ansible_become=False\n",
    )
    h1, h2 = inv.host("h1"), inv.host("h2")
    home = os.path.expanduser("~")
    assert (h1.address, h1.port, h1.key_file, h1.known_hosts) == (
        "f1",
        2022,
        f"{home}/k2",
        f"{home}/kh",
    )
    assert (h1.python, h1.become, h1.become_user) == ("/f/py", True, "admin")
    assert (h2.address, h2.user, h2.python, h2.become, h2.port) == (
        "legacy",
        "old",
        None,
        False,
        None,
    )


def test_load_1000_hosts_is_fast(tmp_path):
    lines = []
    for g in range(10):
        lines.append(f"[g{g}]")
        lines += [
            f"host{g}-{i:03d}.example.com ansible_host=10.{g}.{i // 256}.{i % 256} n={i}"
            for i in range(100)
        ]
        lines += [f"[g{g}:vars]", f"group_no={g}"]
    lines += ["[fleet:children]", *[f"g{g}" for g in range(10)], "[fleet:vars]", "ansible_user=ops"]
    path = write(tmp_path, "big.ini", "\n".join(lines) + "\n")
    write(tmp_path, "group_vars/all.yml", "a: 1\n")
    write(tmp_path, "group_vars/g3.yml", "b: 2\n")
    write(tmp_path, "host_vars/host5-007.example.com.yml", "c: 3\n")
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        inv = load_inventory(path)
        best = min(best, time.perf_counter() - start)
    assert len(inv) == 1000
    assert inv.host("host5-007.example.com").vars["c"] == 3
    assert inv.host("host3-001.example.com").user == "ops"
    assert best < 0.1, f"loading 1000 hosts took {best * 1000:.0f} ms"


# -- ssh config -------------------------------------------------------------------------------

SSH_CONFIG = """\
Host alias
    HostName real.example.com
    Port 2201
    User cfguser
    IdentityFile ~/.ssh/alias_key
    ProxyCommand ssh -W %h:%p jump
    UserKnownHostsFile /tmp/kh1 /tmp/kh2

Host *
    IdentityFile /keys/default
"""


def test_ssh_config_fills_what_inventory_leaves_unset(tmp_path):
    config = write(tmp_path, "ssh_config", SSH_CONFIG)
    inv = load_text(tmp_path, "alias\nother\n")
    got = resolve_ssh(inv.host("alias"), config)
    home = os.path.expanduser("~")
    assert got == {
        "hostname": "real.example.com",
        "port": 2201,
        "user": "cfguser",
        "identityfile": [f"{home}/.ssh/alias_key", "/keys/default"],
        "userknownhostsfile": ["/tmp/kh1", "/tmp/kh2"],
        "proxycommand": "ssh -W real.example.com:2201 jump",
        "proxyjump": None,
    }
    other = inv.host("other").ssh_config(config)
    assert (other["hostname"], other["port"], other["user"]) == ("other", 22, getpass.getuser())
    assert other["identityfile"] == ["/keys/default"]


def test_inventory_vars_win_over_ssh_config(tmp_path):
    config = write(tmp_path, "ssh_config", SSH_CONFIG)
    inv = load_text(
        tmp_path,
        "alias ansible_port=2999 ansible_user=invuser fleetops_key_file=/inv/key "
        "fleetops_known_hosts=/inv/kh\n",
    )
    got = resolve_ssh(inv.host("alias"), config)
    assert (got["port"], got["user"], got["hostname"]) == (2999, "invuser", "real.example.com")
    assert got["identityfile"][0] == "/inv/key"
    assert got["userknownhostsfile"] == ["/inv/kh"]


def test_ssh_config_looked_up_by_address(tmp_path):
    config = write(tmp_path, "ssh_config", SSH_CONFIG)
    host = load_text(tmp_path, "nick ansible_host=alias\n").host("nick")
    assert resolve_ssh(host, config)["hostname"] == "real.example.com"


def test_ssh_config_missing_default_is_fine_explicit_is_not(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    host = Host(name="h", address="h")
    assert resolve_ssh(host)["port"] == 22
    missing = str(tmp_path / "nope")
    with pytest.raises(InputError, match=f"^{missing}: ssh config file not found$"):
        resolve_ssh(host, missing)


def test_ssh_config_bad_line(tmp_path):
    config = write(tmp_path, "ssh_config", "Host a\n    Port 22\n=broken\n")
    with pytest.raises(InputError) as info:
        resolve_ssh(Host(name="a", address="a"), config)
    assert str(info.value).startswith(f"{config}:3: ")


def test_ssh_config_bad_port(tmp_path):
    config = write(tmp_path, "ssh_config", "Host a\n    Port abc\n")
    with pytest.raises(InputError, match="Port must be a port number"):
        resolve_ssh(Host(name="a", address="a"), config)


# -- bad input --------------------------------------------------------------------------------

BAD_INI = [
    ("[web group]\n", 1, "bad section header [web group]"),
    ("# c\n[web:host]\n", 2, "unknown type 'host'"),
    ("[web]\nh1 ansible_port\n", 2, "expected key=value host variable, got 'ansible_port'"),
    ("[web]\nh1 1bad=x\n", 2, "bad variable name '1bad'"),
    ("[web]\nh1\n[web:vars]\njustaword\n", 4, "expected key=value, got 'justaword'"),
    ("[p:children]\nweb db\n", 2, "expected a group name in a :children section"),
    ("[ghost:vars]\nx=1\n[web]\nh1\n", 1, "section [ghost:vars] is for group 'ghost', which is never defined"),
    ("h[1:]\n", 1, "missing end value"),
    ("h[3:1]\n", 1, "start is after end"),
    ("h[a:3]\n", 1, "expected numbers or single letters"),
    ("h[01:100]\n", 1, "same width"),
    ("h[1:3:0]\n", 1, "step must be a positive number"),
    ("h[1-3]\n", 1, "expected [start:end] or [start:end:step]"),
    ("\n\nh[1:3\n", 3, "unbalanced brackets"),
    ("h[0:999999]\n", 1, "more than 100000 hosts"),
    ("h:99999\n", 1, "bad port 99999"),
    ("h:abc\n", 1, "bad port in host 'h:abc'"),
    ("ansible_host=1.2.3.4\n", 1, "expected a host name"),
    ("h1 x='open\n", 1, "cannot split host line like a shell line: No closing quotation"),
    ("[p:children]\nweb\n[q:children]\nweb\nghost\n", 2, "[q:children] names undefined group 'web'"),
    ("h:\n", 1, "bad host 'h:': a ':' must be followed by a port number"),
    ("[a:children]\nb\n[b:children]\na\n", 4, "group 'a' would contain itself: a > b > a"),
    ("[a:children]\na\n", 2, "group 'a' would contain itself: a > a"),
    ("[a:children]\nb\n[b:children]\nc\n[c:children]\na\n", 6, "a > b > c > a"),
    ("[a:children]\nall\n", 2, "group 'all' cannot be a child group"),
    ("h ansible_port=abc\n", 1, "host 'h': ansible_port must be a port number 1-65535, got 'abc'"),
    ("h\n[all:vars]\nansible_become=maybe\n", 3, "host 'h': ansible_become must be a boolean"),
    ("[g]\nh\n[g:vars]\nansible_group_priority=high\n", 4, "ansible_group_priority of group 'g'"),
    ("h ansible_host=[1]\n", 1, "host 'h': ansible_host must be a string"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD_INI, ids=[b[2][:40] for b in BAD_INI])
def test_bad_ini(tmp_path, text, line, message):
    path = write(tmp_path, "hosts.ini", text)
    error = error_of(path)
    assert error.startswith(f"{path}:{line}: "), error
    assert message in error
    assert "\n" not in error


BAD_YAML = [
    ("all:\n  hosts:\n    a: [\n", 4, "YAML syntax error"),
    ("all:\n  hosts: {a: 1}\n  vars\n", 3, "YAML syntax error"),
    ("- a\n- b\n", 1, "expected a mapping of group names at the top level, got a list"),
    (
        "all:\n  hosts:\n    - web1\n    - web2\n",
        2,
        "'hosts' of group 'all' must be a mapping, got a list",
    ),
    ("all:\n  children:\n    web: [x]\n", 3, "group 'web' must be a mapping"),
    ("all:\n  host:\n    web1:\n", 2, "unexpected key 'host' in group 'all'"),
    (
        "all:\n  hosts:\n    web1: [a]\n",
        3,
        "variables of host 'web1' must be a mapping, got a list",
    ),
    ("all:\n  vars: 3\n", 2, "'vars' of group 'all' must be a mapping, got int 3"),
    ("all:\n  hosts:\n    a:\n  hosts:\n    b:\n", 4, "duplicate key 'hosts' (first at line 2)"),
    (
        "all:\n  children:\n    a:\n      children:\n        b:\n          children:\n            a:\n",
        7,
        "group 'a' would contain itself: a > b > a",
    ),
    ("all:\n  hosts:\n    1.10:\n", 3, "host name 1.1 must be a string: YAML read it as float"),
    ("all:\n  hosts:\n    22:\n", 3, "host name 22 must be a string: YAML read it as int"),
    ("plugin: aws_ec2\n", 1, "inventory plugin configuration files are not supported"),
    ("all:\n  hosts:\n    web[3:1]:\n", 3, "start is after end"),
    (
        "all:\n  hosts:\n    h:\n      ansible_port: 0\n",
        4,
        "host 'h': ansible_port must be a port number",
    ),
    ("all:\n  vars:\n    ? [1]\n    : x\n", 3, "YAML syntax error: found unhashable key"),
    ("all:\n  hosts:\n    h:\n      x: !vault |\n        abc\n", 4, "not an Ansible vault envelope"),
    ("all:\n  hosts:\n    h:\n      x: !vault [1]\n", 4, "!vault must tag a string"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD_YAML, ids=[b[2][:40] for b in BAD_YAML])
def test_bad_yaml(tmp_path, text, line, message):
    path = write(tmp_path, "hosts.yml", text)
    error = error_of(path)
    assert error.startswith(f"{path}:{line}: "), error
    assert message in error
    assert "\n" not in error


BAD_VARS_FILES = [
    ("group_vars/g.yml", "a: 1\nb: [\n", 3, "YAML syntax error"),
    (
        "group_vars/g.yml",
        "- a\n- b\n",
        1,
        "expected a mapping of variable names to values, got a list",
    ),
    ("group_vars/g.yml", "a: 1\n3: x\n", 2, "variable name 3 is not a string"),
    ("group_vars/all/x.yml", "a: 1\na: 2\n", 2, "duplicate key 'a'"),
    ("host_vars/h.json", '{\n  "a": 1,\n}\n', 3, "JSON syntax error"),
    (
        "host_vars/h",
        "$ANSIBLE_VAULT;1.1;AES256\n6162\n",
        1,
        "damaged vault data (bad hex encoding)",
    ),
    (
        "group_vars/g.yml",
        "\n\nansible_port: nope\n",
        3,
        "host 'h': ansible_port must be a port number",
    ),
]


@pytest.mark.parametrize(
    ("name", "text", "line", "message"), BAD_VARS_FILES, ids=[b[3][:40] for b in BAD_VARS_FILES]
)
def test_bad_vars_files(tmp_path, name, text, line, message):
    bad = write(tmp_path, name, text)
    error = error_of(write(tmp_path, "hosts.ini", "[g]\nh\n"))
    assert error.startswith(f"{bad}:{line}: "), error
    assert message in error


def test_vars_file_not_utf8(tmp_path):
    bad = tmp_path / "host_vars" / "h.yml"
    bad.parent.mkdir()
    bad.write_bytes(b"a: 1\nb: \xff\xfe\n")
    error = error_of(write(tmp_path, "hosts.ini", "h\n"))
    assert error == f"{bad}:2: variables file is not UTF-8 text"


def test_missing_inventory(tmp_path):
    path = str(tmp_path / "nope.ini")
    assert error_of(path) == f"{path}: inventory file not found"


def test_inventory_directory_is_every_file_in_it(tmp_path):
    """Ansible's directory source: sorted, recursive, ignored names skipped."""
    write(tmp_path, "inv/b.yml", "all:\n  children:\n    web:\n      hosts:\n        w3:\n")
    write(tmp_path, "inv/a.ini", "[web]\nw1 x=1\n[db]\nd1\n")
    write(tmp_path, "inv/sub/c", "[db]\nd2\n[web]\nw1 x=2\n")
    for ignored in ("notes.md", "old.bak", ".hidden", "x.retry", "ansible.cfg", "y~"):
        write(tmp_path, f"inv/{ignored}", "[bad]\nignored-host\n")
    write(tmp_path, "inv/group_vars/web.yml", "from_dir: yes\n")
    write(tmp_path, "inv/host_vars/d2", "hv: 1\n")
    inv = load_inventory(tmp_path / "inv")
    assert [h.name for h in inv] == ["w1", "d1", "w3", "d2"]
    assert inv.groups["web"].hosts == ("w1", "w3")
    assert inv.host("w1").vars == {"x": 2, "from_dir": True}  # the later file wins
    assert inv.host("d2").vars == {"hv": 1}
    assert "bad" not in inv.groups
    script = write(tmp_path, "inv/zz-script.py", "#!/bin/sh\n")
    os.chmod(script, 0o755)
    assert "fleetops does not run scripts" in error_of(str(tmp_path / "inv"))
    os.chmod(script, 0o644)
    write(tmp_path, "inv/zz-script.py", "[g]\nh x='open\n")
    assert error_of(str(tmp_path / "inv")).startswith(f"{script}:2: ")


def test_same_host_in_two_groups_later_value_wins(tmp_path):
    inv = load_text(tmp_path, "[a]\nh x=1 y=1\n[b]\nh x=2\nh2:2222\n[c]\nh2:2223\n")
    assert (inv.host("h").vars["x"], inv.host("h").vars["y"]) == (2, 1)
    assert inv.host("h2").port == 2222  # Ansible: host:port counts where the host first appears
    yml = load_text(tmp_path, "web:\n  hosts:\n    h1: {x: 1}\ndb:\n  hosts:\n    h1: {x: 2}\n",
                    name="hosts.yml")
    assert yml.host("h1").vars == {"x": 2}


def test_unreadable_inventory(tmp_path):
    path = write(tmp_path, "hosts.ini", "h\n")
    under_file = os.path.join(path, "inner.ini")
    assert error_of(under_file) == f"{under_file}: cannot read inventory file: Not a directory"
    if os.geteuid() == 0:
        pytest.skip("root reads any file: permission case not testable")
    os.chmod(path, 0)
    assert error_of(path) == f"{path}: cannot read inventory file: Permission denied"


def test_inventory_not_utf8(tmp_path):
    path = tmp_path / "hosts.ini"
    path.write_bytes(b"[web]\nh1\nh\xe9\n")
    assert error_of(str(path)) == f"{path}:3: inventory file is not UTF-8 text"


def test_format_detection(tmp_path):
    yaml_text = "---\nall:\n  hosts:\n    y1:\n"
    assert [h.name for h in load_text(tmp_path, yaml_text, name="prod.inv")] == ["y1"]
    assert [h.name for h in load_text(tmp_path, "; ini\n[g]\ni1\n", name="hosts")] == ["i1"]
    assert [h.name for h in load_text(tmp_path, "{all: {hosts: {j1: }}}", name="x.json")] == ["j1"]
    error = error_of(write(tmp_path, "prod.ini", "all:\n  hosts:\n"))
    assert error.startswith(f"{tmp_path / 'prod.ini'}:1: bad host 'all:'")


def test_each_host_gets_its_own_vars_dict(tmp_path):
    inv = load_text(tmp_path, "[g]\na\nb\n[g:vars]\nx=1\n")
    inv.host("a").vars["x"] = 2
    assert inv.host("b").vars["x"] == 1


def test_bad_ignore_regex_for_an_inventory_directory_is_an_input_error(tmp_path, monkeypatch):
    (tmp_path / "hosts").write_text("[web]\nw1\n")
    monkeypatch.setenv("ANSIBLE_INVENTORY_IGNORE_REGEX", "(")
    with pytest.raises(InputError, match="ANSIBLE_INVENTORY_IGNORE_REGEX"):
        load_inventory(str(tmp_path))
