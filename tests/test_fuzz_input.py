"""Property-based fuzzing of everything that reads user input (issue 11, "Tests and figures").

INI and YAML inventory parsers, host patterns and limits, the playbook loader and the
cron schedule validator get generated input built from the characters and tokens that
matter to them. The property: each call either succeeds or raises the documented
one-line error (``InputError``: exit 4, ``OptionError``: exit 5, ``CronError`` on the
host) whose text has no control character; never another exception, never a hang.
Seeded (``derandomize=True``) and bounded (``max_examples``, ``deadline``): the whole
module runs in a few seconds.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetops.errors import EXIT_BAD_INPUT, EXIT_BAD_OPTIONS, InputError, OptionError
from fleetops.inventory.ini import expand_host_pattern
from fleetops.inventory.load import address_problem, load_inventory, name_problem
from fleetops.jobs import cron as cronspec
from fleetops.playbook.load import load_playbook
from ops import _crontab

FUZZ = settings(max_examples=150, deadline=2000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
WORK = tempfile.mkdtemp(prefix="fleetops-fuzz-")
atexit.register(shutil.rmtree, WORK, True)

ODD = ["\x00", "\x01", "\x1b[2J", "\x7f", "\x85", "\u2028", "\ufeff", "\t", "\r", "é", "٣",
       "\udcff"]


def _one_line(exc: Exception, code: int) -> None:
    text = str(exc)
    assert text and text.isprintable(), repr(text)
    assert exc.exit_code == code


def _write(name: str, text: str) -> str:
    folder = tempfile.mkdtemp(dir=WORK)  # no group_vars/host_vars beside it
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as handle:
        handle.write(text)
    return path


def _load_or_input_error(path: str) -> None:
    try:
        inventory = load_inventory(path)
    except InputError as exc:
        _one_line(exc, EXIT_BAD_INPUT)
        return
    for host in inventory.hosts:  # what was accepted is usable
        assert name_problem(host.name) is None
        assert address_problem(host.address) is None


# -- INI inventories -------------------------------------------------------------------------
INI_TOKENS = st.sampled_from([
    "h", "web", "db1", "10.0.0.1", "::1", "[", "]", ":", "0", "1", "9", "01", "a", "z",
    "=", "#", ";", '"', "'", "\\", " ", "  ", "\n", "\n", "\n", "-", "_", ".", ",",
    "[all:vars]\n", "[g]\n", "[g:children]\n", "[g:vars]\n", "[web]\n", "h[1:3]",
    "h[0:99999][0:99]", "x[a:c]", "ansible_host=", "ansible_port=", "ansible_user=",
    "x=1", "y='a b'", "[1,2]", "{", "}", "True", "None", "1e999", *ODD,
])


@FUZZ
@given(st.lists(INI_TOKENS, max_size=40).map("".join))
def test_fuzz_ini_inventory(text):
    _load_or_input_error(_write("inv.ini", text))


@FUZZ
@given(st.text(max_size=60))
def test_fuzz_ini_host_pattern_expansion(text):
    try:
        names, port = expand_host_pattern(text)
    except ValueError as exc:
        assert "\n" not in str(exc) or "\n" in text
        return
    assert len(names) <= 100_000
    assert port is None or 0 < port < 65536


# -- YAML inventories ------------------------------------------------------------------------
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                    st.text(max_size=12), st.sampled_from(ODD))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12)
NAMES = st.one_of(st.sampled_from(["h1", "web[1:3]", "db:2222", "a b", "x\ny", "-o", "10.1.1.1",
                                   "", "all", "h[0:99999][0:9]"]), st.text(max_size=8))
HOSTS = st.dictionaries(NAMES, st.one_of(st.none(), st.dictionaries(
    st.sampled_from(["ansible_host", "ansible_port", "ansible_user", "x", "fleetops_host"]),
    VALUES, max_size=3)), max_size=4)
GROUP = st.fixed_dictionaries({}, optional={"hosts": HOSTS, "vars": VALUES,
                                            "children": st.dictionaries(NAMES, st.none(),
                                                                        max_size=2)})


@FUZZ
@given(st.one_of(st.dictionaries(NAMES, st.one_of(GROUP, VALUES), max_size=3), VALUES))
def test_fuzz_yaml_inventory_structures(data):
    try:
        text = yaml.safe_dump(data, allow_unicode=True)
    except (yaml.YAMLError, UnicodeEncodeError):
        return
    _load_or_input_error(_write("inv.yml", text))


YAML_TOKENS = st.sampled_from([
    "all:", "hosts:", "vars:", "children:", "h1:", "web[1:3]:", " ", "  ", "\n", "\n",
    "- ", "&a ", "*a", "&b [*a, *a]", "<<: *a", "!!python/object:os.system", "!!binary",
    "{", "}", "[", "]", ",", ":", "'", '"', "#", "---\n", "...", "|", ">", "?", "%YAML 1.1\n",
    "ansible_host: ", "ansible_port: ", "x", "1", ".inf", ".nan", "~", *ODD,
])


@FUZZ
@given(st.lists(YAML_TOKENS, max_size=40).map("".join))
def test_fuzz_yaml_inventory_text(text):
    _load_or_input_error(_write("inv.yml", text))


# -- host patterns and limits ----------------------------------------------------------------
@pytest.fixture(scope="module")
def inventory():
    return load_inventory(_write("fuzz.ini", "[web]\nweb[1:4]\n[db]\ndb1 ansible_host=::1\n"
                                             "[all:children]\nweb\n"))


PATTERN = st.lists(st.sampled_from([
    "all", "*", "web", "db", "web1", "web*", "db?", "~web[0-9]", "~(", "~a{99999}", "[", "]",
    "web[0]", "web[1:2]", "web[-1]", "web[9:]", "!", "&", ":", ",", "@", "@/dev/zero",
    "@.", " ", "::1", "[::1]", "\\", "-", *ODD,
]), max_size=12).map("".join)


@FUZZ
@given(PATTERN, st.one_of(st.none(), PATTERN))
def test_fuzz_host_patterns(inventory, pattern, limit):
    try:
        hosts = inventory.select(pattern, limit)
    except InputError as exc:
        _one_line(exc, EXIT_BAD_INPUT)
        return
    assert all(host.name in inventory or host is inventory.implicit_localhost(host.name)
               for host in hosts)  # Ansible's implicit localhost is in no inventory


# -- playbooks -------------------------------------------------------------------------------
PLAY_TOKENS = st.sampled_from([
    "- hosts: all\n", "  tasks:\n", "  - run: echo hi\n", "  - name: x\n    run: ", "  vars:\n",
    "    a: 1\n", "    b: &a [1, 2]\n", "    c: *a\n", "    d: &s [*s]\n", "  serial: ",
    "  max_fail_percentage: ", "    timeout: ", "    when: ", "    register: r\n",
    "{{ x }}", "{{ cycler.__init__ }}", "{{ x|attr('__class__') }}", "{% for %}", "{#",
    "template: {src: none.j2, dest: /tmp/x}", "copy: {content: a, dest: rel}",
    "cron: {name: n, schedule: '٣ * * * *', job: x}", "sweep: {targets: 10.0.0.0/8}",
    "1", "-1", ".nan", ".inf", "25%", "'", '"', ":", "- ", "  ", "\n", "{", "}", "[", "]",
    *ODD,
])


@FUZZ
@given(st.lists(PLAY_TOKENS, max_size=30).map("".join))
def test_fuzz_playbook_loader(text):
    path = _write("play.yml", text)
    try:
        book = load_playbook(path)
    except InputError as exc:
        _one_line(exc, EXIT_BAD_INPUT)
        return
    assert book.plays


# -- cron schedules --------------------------------------------------------------------------
CRON_TOKENS = st.sampled_from([
    "*", "*/5", "0", "1", "59", "60", "7", "1-5", "5-1", ",", "/", "-", " ", "\t", "\n",
    "mon", "JAN", "sun-sat", "@daily", "@reboot", "@", "٣", "²", "０", "\u2003", *ODD,
])
CRON_FIELD = st.lists(CRON_TOKENS, min_size=1, max_size=3).map("".join)
CRON = st.one_of(st.lists(CRON_TOKENS, max_size=14).map("".join),
                 st.lists(CRON_FIELD, min_size=5, max_size=5).map(" ".join))


@FUZZ
@given(st.one_of(CRON, st.text(max_size=20)))
def test_fuzz_cron_schedule(text):
    try:
        normal = cronspec.validate_schedule(text)
    except OptionError as exc:
        _one_line(exc, EXIT_BAD_OPTIONS)
        return
    assert normal.isascii() and normal.isprintable()
    assert normal == _crontab.validate_schedule(normal)  # the host agrees
    if not normal.startswith("@"):
        assert len(normal.split(" ")) == 5


# -- numeric options -------------------------------------------------------------------------
NUMBER_TEXT = st.one_of(st.text(max_size=8), st.sampled_from(
    ["nan", "inf", "-inf", "1e999", "-1", "0", "0.0", "1e-9", "10", "٣", "1_000", " 5 "]),
    st.floats().map(str))


@FUZZ
@given(NUMBER_TEXT, NUMBER_TEXT, NUMBER_TEXT)
def test_fuzz_numeric_options(timeout, command_timeout, deadline):
    import math

    from fleetops.cli.common import runner_options

    try:
        options = runner_options(10, timeout, command_timeout, deadline)
    except OptionError as exc:
        _one_line(exc, EXIT_BAD_OPTIONS)
        return
    assert math.isfinite(options.connect_timeout) and options.connect_timeout > 0
    assert options.command_timeout is None or 0 < options.command_timeout < math.inf
    bound = options.deadline_for_host()
    assert bound is None or bound > 0
