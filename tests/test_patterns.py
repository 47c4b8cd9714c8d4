"""Host patterns and --limit: every operator, Ansible's evaluation order, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetops.errors import InputError
from fleetops.inventory.load import load_inventory

FLEET = Path(__file__).parent / "data" / "inventory" / "fleet"
WEB = ["web01.example.com", "web02.example.com", "web03.example.com", "web04.example.com"]
DB = ["db-a", "db-b"]
LAB = [f"lab0{i}" for i in range(1, 7)]
ALL = ["bastion", *LAB, *WEB, *DB]  # Ansible's order: all's groups in declaration order


@pytest.fixture(scope="module", params=["hosts.ini", "hosts.yml"])
def inv(request):
    return load_inventory(FLEET / request.param)


def names(inv, pattern="all", limit=None):
    return [h.name for h in inv.select(pattern, limit)]


def error(inv, pattern="all", limit=None) -> str:
    """The error in strict mode (Ansible's HOST_PATTERN_MISMATCH=error)."""
    with pytest.raises(InputError) as info:
        inv.select(pattern, limit, strict=True)
    return str(info.value)


def warned(inv, pattern="all", limit=None) -> tuple[list[str], list[str]]:
    """Hosts and warnings in the default (Ansible's) mode."""
    warnings: list[str] = []
    hosts = [h.name for h in inv.select(pattern, limit, warn=warnings.append)]
    return hosts, warnings


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("all", ALL),
        ("*", ALL),
        ("bastion", ["bastion"]),
        ("web", WEB),
        ("prod", [*WEB, *DB]),
        ("ungrouped", ["bastion"]),
        ("spare", []),  # a known empty group is not an error
        ("web*", WEB),  # group web and the web0N hosts
        ("lab0[!56]", LAB[:4]),
        ("lab0[1-4]", []),  # Ansible: subscript [1-4] of 'lab0', which matches nothing
        ("db-?", DB),
        ("*.example.com", WEB),
        ("~web0[12]", WEB[:2]),
        ("~(db|lab)", [*DB, *LAB]),
        ("lab[0]", ["lab01"]),
        ("lab[-1]", ["lab06"]),
        ("lab[1:2]", ["lab02", "lab03"]),
        ("lab[1-2]", ["lab02", "lab03"]),
        ("lab[4:]", ["lab05", "lab06"]),
    ],
)
def test_single_elements(inv, pattern, expected):
    assert names(inv, pattern) == expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("web:db", [*WEB, *DB]),
        ("web,db", [*WEB, *DB]),
        ("web, db", [*WEB, *DB]),
        ("db:web", [*DB, *WEB]),  # pattern order, as Ansible runs them
        ("lab06:bastion:lab01", ["lab06", "bastion", "lab01"]),
        ("web:web01.example.com", WEB),  # no duplicates
        ("prod:&db", DB),
        ("prod,&db", DB),
        ("prod:!web", DB),
        ("prod,!web", DB),
        ("all:!prod:!lab", ["bastion"]),
        ("web*:&*0[12]*", WEB[:2]),
        ("prod:&web:&web0[34]*", WEB[2:]),
        ("prod:lab:&~.*0[1-3].*:!db*", [WEB[0], WEB[1], WEB[2], LAB[0], LAB[1], LAB[2]]),
        ("lab[0:2]:!lab02", ["lab01", "lab03"]),
    ],
)
def test_operators(inv, pattern, expected):
    assert names(inv, pattern) == expected


@pytest.mark.parametrize(
    ("pattern", "same_as"),
    [
        ("!web:prod", "prod:!web"),  # exclusions apply last wherever written
        ("&db:web:db", "web:db:&db"),  # intersections after all unions
        ("!db:&prod:web:db", "web:db:&prod:!db"),
    ],
)
def test_ansible_evaluation_order(inv, pattern, same_as):
    assert names(inv, pattern) == names(inv, same_as)


def test_exclusion_beats_a_later_union(inv):
    assert names(inv, "web:!web02*:web02.example.com") == [WEB[0], WEB[2], WEB[3]]


def test_only_exclusions_or_intersections_start_from_all(inv):
    assert names(inv, "!prod:!lab") == ["bastion"]
    assert names(inv, "&lab") == LAB


def test_errors_name_the_element(inv):
    assert error(inv, "web:nosuch") == "'nosuch' matches no host or group in pattern 'web:nosuch'"
    assert error(inv, "web:!ghost") == "'ghost' matches no host or group in pattern 'web:!ghost'"
    assert error(inv, "web,&zz") == "'zz' matches no host or group in pattern 'web,&zz'"
    assert error(inv, "zz*") == "'zz*' matches no host or group in pattern 'zz*'"
    assert error(inv, "~^zz") == "'~^zz' matches no host or group in pattern '~^zz'"
    assert error(inv, "lab[9]") == "'lab[9]' is out of range (lab has 6 hosts) in pattern 'lab[9]'"
    assert "bad regular expression '~(('" in error(inv, "~((")
    assert error(inv, "") == "empty host pattern"
    assert error(inv, " , ") == "empty host pattern ' , '"
    assert error(inv, "web:!") == "empty element '!' in pattern 'web:!'"


def test_mismatch_warns_and_goes_on_by_default(inv, monkeypatch):
    assert warned(inv, "web:nosuch") == (
        WEB, ["'nosuch' matches no host or group in pattern 'web:nosuch', ignoring it"])
    assert warned(inv, "web,&zz")[0] == []
    assert warned(inv, "~^zz") == ([], ["'~^zz' matches no host or group in pattern '~^zz', "
                                        "ignoring it"])
    monkeypatch.setenv("ANSIBLE_HOST_PATTERN_MISMATCH", "ignore")
    assert warned(inv, "web:nosuch") == (WEB, [])
    monkeypatch.setenv("ANSIBLE_HOST_PATTERN_MISMATCH", "error")
    with pytest.raises(InputError, match="'nosuch' matches no host"):
        inv.select("web:nosuch")


def test_out_of_range_subscript_selects_nothing_with_a_warning(inv):
    # Ansible raises "No hosts matched the subscripted pattern": the whole selection is empty
    hosts, warnings = warned(inv, "lab[9],web")
    assert hosts == []
    assert warnings == ["'lab[9]' is out of range (lab has 6 hosts) in pattern 'lab[9],web': "
                        "no host selected"]
    assert warned(inv, "lab[4:9]") == (LAB[4:], [])  # a range is cut, as a Python slice


def test_subscripts_after_globs_and_old_ranges(inv):
    assert names(inv, "lab*[0]") == ["lab01"]  # group lab's hosts, then hosts lab0N
    assert names(inv, "web0*[1:2]") == WEB[1:3]
    assert names(inv, "*[-1]") == ["lab06"]  # all groups' hosts, then every host
    hosts, warnings = warned(inv, "lab[1-2]")
    assert hosts == LAB[1:3] and "use [x:y] inclusive subscripts" in warnings[0]


def test_glob_matching_only_an_empty_group_is_not_an_error(inv):
    assert names(inv, "spa*") == []


def test_limit(inv):
    assert names(inv, "all", "web") == WEB
    assert names(inv, "prod", "!web") == DB
    assert names(inv, "web", "db") == []
    assert names(inv, "prod:lab", "lab0[!3-6]:db-a") == ["db-a", "lab01", "lab02"]
    assert names(inv, "web", "all:!web01*") == WEB[1:]
    assert names(inv, "db:web", "web02*:db-b") == ["db-b", WEB[1]]  # the pattern's order
    assert names(inv, "all", "lab0[12]") == []  # Ansible: subscript [12] of 'lab0'
    assert error(inv, "all", "web:typo") == "'typo' matches no host or group in limit 'web:typo'"
    assert error(inv, "all", "") == "empty host limit"


def test_limit_retry_file(inv, tmp_path):
    retry = tmp_path / "fleetops.retry"
    retry.write_text("# failed last time\n\ndb-b\n  web03.example.com  \nlab05\n", encoding="utf-8")
    assert names(inv, "all", f"@{retry}") == ["lab05", WEB[2], "db-b"]
    assert names(inv, "prod", f"@{retry}") == [WEB[2], "db-b"]
    assert names(inv, "all", f"@{retry},bastion") == ["bastion", "lab05", WEB[2], "db-b"]
    assert names(inv, "all", f"@{retry},!lab05") == [WEB[2], "db-b"]


def test_empty_retry_file_limits_to_nothing(inv, tmp_path):
    retry = tmp_path / "fleetops.retry"
    retry.write_text("# nothing failed\n", encoding="utf-8")
    assert names(inv, "all", f"@{retry}") == []


def test_retry_file_errors(inv, tmp_path):
    missing = tmp_path / "gone.retry"
    assert error(inv, "all", f"@{missing}") == f"{missing}: limit file not found"
    stale = tmp_path / "stale.retry"
    stale.write_text("db-a\n\nold-host\n", encoding="utf-8")
    assert error(inv, "all", f"@{stale}") == (
        f"{stale}:3: 'old-host' matches no host or group in limit file"
    )
    assert warned(inv, "all", f"@{stale}") == (
        ["db-a"], [f"{stale}:3: 'old-host' matches no host or group in limit file, ignoring it"])
    assert error(inv, "all", "@") == "'@' in a limit must be followed by a file name"
    assert (
        error(inv, "all", f"@{tmp_path}")
        == f"{tmp_path}: limit file is a directory, expected a file"
    )


def test_at_sign_is_literal_in_patterns(inv):
    assert error(inv, "@x") == "'@x' matches no host or group in pattern '@x'"


def test_names_with_colons_and_brackets(tmp_path):
    path = tmp_path / "hosts.ini"
    path.write_text("fe80::1\n[::2]:2022\nweb[1:3]\n[g]\nweb2\n", encoding="utf-8")
    inv = load_inventory(path)
    assert names(inv, "fe80::1") == ["fe80::1"]
    assert names(inv, "fe80::1,::2") == ["fe80::1", "::2"]
    assert names(inv, "g[0]:web3") == ["web2", "web3"]
    assert names(inv, "web[13]") == []  # Ansible: subscript [13] of 'web', no such group
    assert names(inv, "web[13*]") == ["web1", "web3"]  # a glob class
    assert names(inv, "all,!fe80::1") == ["::2", "web1", "web3", "web2"]
    assert error(inv, "fe80::9") == "'fe80::9' matches no host or group in pattern 'fe80::9'"
    assert error(inv, "a:b:c") == "'a' matches no host or group in pattern 'a:b:c'"


def test_group_and_host_with_the_same_name(tmp_path):
    path = tmp_path / "hosts.ini"
    path.write_text("[dup]\nh1\nh2\n[other]\ndup\n", encoding="utf-8")
    inv = load_inventory(path)
    assert names(inv, "dup") == ["dup"]  # Ansible: a host name is taken as the host
    assert names(inv, "dup*") == ["h1", "h2", "dup"]
    assert names(inv, "other") == ["dup"]
