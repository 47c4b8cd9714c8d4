"""Playbook loading and validation (no hosts): every mistake is one ``file:line:`` line."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fleetops.errors import InputError
from fleetops.playbook.argspec import Arg, ArgError, coerce
from fleetops.playbook.load import load_playbook
from fleetops.playbook.run import batches
from fleetops.playbook.templating import Renderer, RenderError

REPO = Path(__file__).resolve().parents[1]
PLAY_CLI = ("import sys; from invoke import Collection, Program; from fleetops.cli.play import "
            "play; Program(namespace=Collection(play), binary='invoke')"
            ".run(['invoke', 'play', *sys.argv[1:]])")


def write(tmp_path: Path, text: str, name: str = "book.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def error_of(path: Path) -> str:
    with pytest.raises(InputError) as info:
        load_playbook(str(path))
    message = str(info.value)
    assert "\n" not in message
    return message


GOOD = """
- name: demo
  hosts: lab
  serial: 2
  max_fail_percentage: 25
  vars:
    greeting: hello
  tasks:
    - name: say it
      run: echo {{ greeting }}
    - name: write it
      copy: {content: "{{ greeting }}\\n", dest: /srv/greeting, mode: "0600"}
      when: inventory_hostname != 'lab03'
      register: wrote
"""


def test_a_good_playbook_loads_with_its_lines(tmp_path):
    book = load_playbook(str(write(tmp_path, GOOD)))
    (play,) = book.plays
    assert (play.name, play.hosts, play.serial, play.max_fail_percentage) == \
        ("demo", "lab", ("count", 2), 25.0)
    run, copy = play.tasks
    assert (run.action, run.args, run.line) == ("run", {"command": "echo {{ greeting }}"}, 9)
    assert copy.static_args is None  # templated: checked per host
    assert (copy.action, copy.when, copy.register, copy.line) == \
        ("copy", "inventory_hostname != 'lab03'", "wrote", 11)


BAD = {
    "unknown action": ("""
        - hosts: all
          tasks:
            - name: t
              shell: date
        """, r":4: task 't': unknown action 'shell'"),
    "missing argument": ("""
        - hosts: all
          tasks:
            - name: t
              run: date
            - name: motd
              template:
                src: motd.j2
        """, r":6: task 'motd': template: missing argument 'dest'"),
    "unknown argument": ("""
        - hosts: all
          tasks:
            - name: t
              cron:
                name: x
                scheddule: "* * * * *"
        """, r":6: task 't': cron: unknown argument 'scheddule'"),
    "mode as a number": ("""
        - hosts: all
          tasks:
            - copy: {content: x, dest: /srv/x,
                     mode: 0644}
        """, r":4: task 'copy': copy: argument 'mode' must be a quoted octal string"),
    "bool where a number goes": ("""
        - hosts: all
          tasks:
            - name: w
              watcher: {name: w, interval: yes}
        """, r":4: task 'w': watcher: argument 'interval' must be a number, not bool True"),
    "relative path": ("""
        - hosts: all
          tasks:
            - copy: {content: x, dest: srv/x}
        """, r":3: .*argument 'dest' must be an absolute path"),
    "bad choice": ("""
        - hosts: all
          tasks:
            - cron: {name: x, state: gone}
        """, r":3: .*argument 'state' must be one of present, absent"),
    "serial zero": ("""
        - hosts: all
          serial: 0
          tasks: []
        """, r":2: play 'all': serial must be a batch size >= 1"),
    "serial percent": ("""
        - hosts: all
          serial: "150%"
          tasks: []
        """, r":2: play 'all': serial must be"),
    "max fail": ("""
        - hosts: all
          max_fail_percentage: 101
          tasks: []
        """, r":2: play 'all': max_fail_percentage must be a number from 0 to 100"),
    "template not found": ("""
        - hosts: all
          tasks:
            - name: t
              template:
                dest: /srv/x
                src: no-such-template.j2
        """, r":6: task 't': template 'no-such-template.j2' not found in "),
    "copy file not found": ("""
        - hosts: all
          tasks:
            - copy: {src: missing.txt, dest: /srv/x}
        """, r":3: task 'copy': file 'missing.txt' not found"),
    "two actions": ("""
        - hosts: all
          tasks:
            - name: t
              run: date
              copy: {content: x, dest: /srv/x}
        """, r":5: task 't': a task has exactly one action, this one has 2 actions"),
    "no action": ("""
        - hosts: all
          tasks:
            - name: t
        """, r":3: task 't': a task has exactly one action, this one has no action"),
    "jinja syntax": ("""
        - hosts: all
          tasks:
            - run: echo {{ oops
        """, r":3: task 'run': run: argument 'command': template syntax error"),
    "unknown play key": ("""
        - hosts: all
          gather_facts: false
          tasks: []
        """, r":2: unknown play key 'gather_facts'"),
    "missing hosts": ("""
        - name: p
          tasks: []
        """, r":1: play needs 'hosts'"),
    "duplicate key": ("""
        - hosts: all
          tasks: []
          hosts: web
        """, r":3: duplicate key 'hosts' \(first on line 1\)"),
    "yaml syntax": ("""
        - hosts: all
          tasks: [
        """, r":\d+: YAML syntax error"),
    "not a list": ("""
        hosts: all
        """, r":1: a playbook is a list of plays, not a mapping"),
    "check_mode_safe on a checked action": ("""
        - hosts: all
          tasks:
            - cron: {name: x, state: absent}
              check_mode_safe: true
        """, r":4: task 'cron': check_mode_safe only applies"),
    "cron schedule": ("""
        - hosts: all
          tasks:
            - cron: {name: x, schedule: "61 * * * *", job: date}
        """, r":3: task 'cron': cron: schedule: "),
    "copy needs one source": ("""
        - hosts: all
          tasks:
            - copy: {dest: /srv/x}
        """, r":3: task 'copy': copy: copy needs exactly one of 'src' and 'content'"),
    "bad when": ("""
        - hosts: all
          tasks:
            - run: date
              when: "x =="
        """, r":4: task 'run': when: template syntax error"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_mistakes_name_file_and_line(tmp_path, case):
    import re

    text, expected = BAD[case]
    path = write(tmp_path, text)
    message = error_of(path)
    assert message.startswith(f"{path}:"), message
    assert re.search(expected, message), message


def test_template_syntax_error_names_the_template_file_and_line(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "broken.j2").write_text("line one\n{% if x %}\nno endif\n")
    path = write(tmp_path, """
        - hosts: all
          tasks:
            - template: {src: broken.j2, dest: /srv/x}
        """)
    message = error_of(path)
    assert "broken.j2:" in message and "template syntax error" in message, message


def test_shipped_playbooks_load():
    for name in ("nightly-disk-report.yml", "watchers.yml", "network-inventory.yml"):
        book = load_playbook(str(REPO / "playbooks" / name))
        assert book.plays and all(p.tasks for p in book.plays), name


def test_free_form_and_mapping_run_and_percent_serial(tmp_path):
    book = load_playbook(str(write(tmp_path, """
        - hosts: all
          serial: "30%"
          tasks:
            - run: {command: uptime}
              timeout: 5
              check_mode_safe: true
        """)))
    play = book.plays[0]
    assert play.serial == ("percent", 30.0)
    assert play.tasks[0].static_args == {"command": "uptime"}
    assert play.tasks[0].timeout == 5 and play.tasks[0].check_mode_safe


def test_batches_by_count_and_percent():
    hosts = list(range(10))
    assert batches(hosts, None) == [hosts]
    assert batches(hosts, ("count", 4)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches(hosts, ("percent", 30.0)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert batches(hosts[:2], ("percent", 10.0)) == [[0], [1]]


def test_coercion_of_argument_kinds():
    assert coerce("m", Arg("mode"), "644") == "0644"
    assert coerce("m", Arg("mode"), "0755") == "0755"
    assert coerce("n", Arg("number"), "2.5") == 2.5
    assert coerce("b", Arg("bool"), "yes") is True
    assert coerce("l", Arg("list"), "one") == ["one"]
    assert coerce("s", Arg(), 5) == "5"
    for arg, value in ((Arg("int"), "1.5"), (Arg("bool"), "maybe"), (Arg(), True),
                       (Arg("mode"), "0999"), (Arg("list"), {"a": 1}), (Arg("path"), "x")):
        with pytest.raises(ArgError):
            coerce("v", arg, value)


def test_rendering_is_strict_and_keeps_native_values(tmp_path):
    renderer = Renderer([tmp_path])
    context = {"items": ["a", "b"], "n": 3, "name": "lab01"}
    assert renderer.value("{{ items }}", context) == ["a", "b"]
    assert renderer.value("{{ n }}", context) == 3
    assert renderer.value("host {{ name }}", context) == "host lab01"
    assert renderer.value(["x{{ n }}", {"k": "{{ name }}"}], context) == ["x3", {"k": "lab01"}]
    with pytest.raises(RenderError, match="undefined variable 'nope'"):
        renderer.value("{{ nope }}", context)
    with pytest.raises(RenderError, match="undefined variable 'nope'"):
        renderer.value("a {{ nope }} b", context)
    assert renderer.condition("n > 2", context) is True
    assert renderer.value("{{ 'a b' | quote }}", context) == "'a b'"


def play_cli(*args: str, cwd: Path = REPO, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PLAY_CLI, *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, check=False)


def test_cli_reports_a_bad_playbook_in_one_line_exit_4(tmp_path):
    (tmp_path / "inv.ini").write_text("[web]\nh1\n")
    path = write(tmp_path, BAD["unknown action"][0])
    proc = play_cli("-i", str(tmp_path / "inv.ini"), str(path), cwd=tmp_path)
    assert proc.returncode == 4, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.strip() == (f"fleetops: {path}:4: task 't': unknown action 'shell' "
                                   "(actions: run, python, template, copy, install_zipapp, cron, "
                                   "disk_report, sweep, arpscan, watcher, dirsync; task keys: "
                                   "name, when, register, check_mode_safe, timeout, vars, loop, "
                                       "loop_control, changed_when, failed_when, notify, tags, "
                                       "become, become_user)")


def test_cli_unknown_group_in_hosts_names_the_play_line(tmp_path, monkeypatch):
    (tmp_path / "inv.ini").write_text("[web]\nh1\n")
    path = write(tmp_path, """
        - name: first
          hosts: web
          tasks: []
        - name: second
          hosts: dbs
          tasks: []
        """)
    proc = play_cli("-i", str(tmp_path / "inv.ini"), str(path), cwd=tmp_path)
    # Ansible: a pattern matching nothing is a warning and the play is skipped
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ("fleetops: warning: 'dbs' matches no host or group in pattern "
                           "'dbs', ignoring it\n")
    monkeypatch.setenv("ANSIBLE_HOST_PATTERN_MISMATCH", "error")
    strict = play_cli("-i", str(tmp_path / "inv.ini"), str(path), cwd=tmp_path)
    assert strict.returncode == 4, strict.stderr
    assert strict.stderr.startswith(f"fleetops: {path}:5: play 'second': hosts 'dbs': ")


def test_a_single_expression_keeps_the_text_around_it(tmp_path):
    renderer = Renderer([tmp_path])
    assert renderer.value("{{ x }}\n", {"x": "yes"}) == "yes\n"
    assert renderer.value(" {{ x }}", {"x": 1}) == " 1"


def test_host_status_and_merged_network_from_task_records():
    from fleetops.playbook.run import HostState, TaskRecord, network_inventory

    def state(name, *records):
        return HostState(name, tasks=[TaskRecord("p", f"t{i}", action, status, data=data)
                                      for i, (action, status, data) in enumerate(records)])

    sweep = {"alive": [{"ip": "127.0.0.2", "rtt_ms": 0.5}, {"ip": "127.0.0.1", "rtt_ms": 0.2}]}
    arp = {"entries": [{"ip": "127.0.0.1", "mac": "aa:bb"}]}
    states = {
        "h1": state("h1", ("sweep", "ok", sweep), ("arpscan", "ok", arp)),
        "h2": state("h2", ("sweep", "ok", {"alive": [{"ip": "127.0.0.1", "rtt_ms": 0.1}]}),
                    ("run", "changed", None)),
        "h3": state("h3", ("run", "skipped", None)),
        "h4": state("h4", ("run", "ok", None), ("copy", "failed", None)),
    }
    assert [states[h].overall(False).status for h in states] == \
        ["ok", "changed", "skipped", "failed"]
    assert states["h4"].overall(False).reason == "task 't1': failed"
    network = network_inventory(states)  # the map of invoke scan --json (fleetops.jobs.scan)
    assert network["addresses"] == [
        {"ip": "127.0.0.1", "seen_by": [{"host": "h2", "rtt_ms": 0.1},
                                        {"host": "h1", "rtt_ms": 0.2}],
         "no_reply_from": [], "macs": [{"mac": "aa:bb", "hosts": ["h1"]}], "mac": "aa:bb",
         "state": "answering"},
        {"ip": "127.0.0.2", "seen_by": [{"host": "h1", "rtt_ms": 0.5}], "no_reply_from": [],
         "macs": [], "mac": None, "state": "answering"},
    ]
    assert sorted(network["vantages"]) == ["h1", "h2"]  # h3, h4 ran neither action
