"""Ansible's playbook keywords without hosts: validation (file:line), -e parsing and tag
selection, with ansible-core itself as the oracle (``parse_kv``, ``ansible-playbook
--list-tasks``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fleetops.errors import InputError, OptionError
from fleetops.playbook.extravars import parse_extra_vars
from fleetops.playbook.keys import should_run, split_tags
from fleetops.playbook.load import load_playbook

ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")


def write(tmp_path: Path, text: str, name: str = "book.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def error_of(path: Path) -> str:
    with pytest.raises(InputError) as info:
        load_playbook(str(path))
    assert "\n" not in str(info.value)
    return str(info.value)


GOOD = """
- hosts: all
  become: true
  become_user: app
  tags: deploy
  tasks:
    - name: files
      copy: {content: "{{ item }}", dest: "/srv/{{ item }}"}
      loop: [a, b]
      notify: [restart, logs]
      tags: [web, "x, y"]
      vars: {z: 1}
    - name: check
      run: "grep -c x /etc/x"
      register: g
      changed_when: false
      failed_when: ["g.rc > 1"]
      become: false
      loop: "{{ groups_of_things }}"
      loop_control: {loop_var: thing}
  handlers:
    - name: restart
      run: systemctl restart app
    - name: log handler
      listen: logs
      run: logger changed
"""


def test_keywords_load(tmp_path):
    (play,) = load_playbook(str(write(tmp_path, GOOD))).plays
    files, check = play.tasks
    assert (play.become, play.become_user, play.tags) == (True, "app", ["deploy"])
    assert (files.loop, files.loop_var, files.notify) == (["a", "b"], "item", ["restart", "logs"])
    assert files.tags == ["deploy", "web", "x", "y"] and files.vars == {"z": 1}
    assert (check.changed_when, check.failed_when, check.become) == ([False], ["g.rc > 1"], False)
    assert (check.loop, check.loop_var) == ("{{ groups_of_things }}", "thing")
    assert [(h.name, h.listen, h.handler) for h in play.handlers] == [
        ("restart", [], True), ("log handler", ["logs"], True)]


BAD = [
    ("notify: nobody", "task 't' notifies 'nobody', which is no handler of this play"),
    ("loop: notalist", "loop must be a list or a \"{{ expression }}\""),
    ("loop_control: {loop_var: x}", "loop_control without loop"),
    ("changed_when: \"a ==\"", "changed_when: "),
    ("failed_when: []", "failed_when must not be an empty list"),
    ("become: yes please", "become must be true or false"),
    ("become_user: \"a b\"", "become_user must be a user name"),
    ("tags: {a: 1}", "tags must be a name or a list of names"),
    ("with_items: [1]", "'with_items' is not implemented by fleetops (use 'loop')"),
    ("ignore_errors: true", "use 'failed_when: false'"),
    ("vars: {1x: 2}", "variable name '1x' is not an identifier"),
    ("notify: \"{{ h }}\"", "templated names are not supported"),
    ("listen: x", "unknown action 'listen'"),
    ("vars: {ansible_user: x}", "'ansible_user': fleetops applies connection and become"),
    ("vars: {fleetops_port: 2}", "inventory only"),
]


@pytest.mark.parametrize(("line", "message"), BAD)
def test_bad_keywords_name_file_and_line(tmp_path, line, message):
    path = write(tmp_path, f"""
        - hosts: all
          tasks:
            - name: t
              run: "true"
              {line}
          handlers:
            - name: h
              run: "true"
        """)
    text = error_of(path)
    assert text.startswith(f"{path}:5: ") or text.startswith(f"{path}:4: "), text
    assert message in text, text


def test_handler_mistakes(tmp_path):
    path = write(tmp_path, """
        - hosts: all
          tasks: []
          handlers:
            - run: "true"
        """)
    assert error_of(path) == f"{path}:4: handler: a handler needs a 'name' (notify refers to it)"
    path = write(tmp_path, """
        - hosts: all
          handlers: {a: 1}
        """)
    assert error_of(path) == f"{path}:2: play 'all': 'handlers' must be a list, not mapping"


@pytest.mark.parametrize("text", [
    'a=1 b="x y" c=', "a='q r' b=c=d", "x=1 x=2", 'msg="it\'s"', "", "k=\\n\\u00e9\\t",
    "v={{ x | default('a b') }} w=2", 'q="say \\"hi\\"" r=\'\'',
    'dq="x=y"', "uni=ü path=/tmp/a\\\\b",
])
def test_key_value_extra_vars_as_ansible_parse_kv(text):
    from ansible.parsing.splitter import parse_kv

    assert parse_extra_vars([text]) == parse_kv(text)


def test_extra_vars_forms_and_merge(tmp_path):
    (tmp_path / "v.yml").write_text("a: [1, 2]\nb: {c: true}\n")
    (tmp_path / "v.json").write_text('{"b": 3}')
    got = parse_extra_vars([f"@{tmp_path / 'v.yml'}", "{d: 4, a: x}", f"@{tmp_path}/v.json",
                            "e=5"])
    assert got == {"a": "x", "b": 3, "d": 4, "e": "5"}
    for bad, message in [("word", "'word' is not key=value"), ("[1, 2]", "into a mapping"),
                         ("{a: [}", "YAML"), ("/etc/x.yml", "prepend the file name"),
                         ("'a=1", "no closing quotation"), ("ansible_become=true", "inventory only"),
                         ('{"ansible_host": "h"}', "'ansible_host'"), ("path=/a\\ b", "'b' is not key=value"), ("1a=2", "not an identifier")]:
        with pytest.raises(OptionError, match=re.escape(message)):
            parse_extra_vars([bad])
    (tmp_path / "list.yml").write_text("- 1\n")
    with pytest.raises(InputError, match=r"list\.yml: extra vars must be a mapping"):
        parse_extra_vars([f"@{tmp_path / 'list.yml'}"])


TAGGED = """
- hosts: localhost
  GATHER
  tags: [p]
  tasks:
    - {name: plain, ACTION}
    - {name: web, ACTION, tags: web}
    - {name: db, ACTION, tags: "db, slow"}
    - {name: always, ACTION, tags: always}
    - {name: never, ACTION, tags: never}
    - {name: never debug, ACTION, tags: [never, debug]}
    - {name: always never, ACTION, tags: [always, never]}
- hosts: localhost
  GATHER
  tasks:
    - {name: untagged, ACTION}
    - {name: t2, ACTION, tags: [web, never]}
"""
TAG_CASES = [(), ("--tags", "web"), ("--tags", "web,debug"), ("--tags", "never"),
             ("--tags", "all"), ("--tags", "tagged"), ("--tags", "untagged"),
             ("--skip-tags", "web"), ("--skip-tags", "always"), ("--skip-tags", "all"),
             ("--tags", "p", "--skip-tags", "db"), ("--tags", "all", "--skip-tags", "tagged"),
             ("--tags", "always"), ("--skip-tags", "untagged"), ("--tags", "slow,untagged")]


def _option(args: tuple[str, ...], flag: str) -> frozenset[str]:
    return split_tags([args[i + 1] for i, a in enumerate(args) if a == flag])


def _ansible_lists(book: Path) -> list[list[str]]:
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOME=str(book.parent / ".ansible"))
    procs = [subprocess.Popen([str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "--list-tasks",
                               *args, str(book)], stdout=subprocess.PIPE, text=True, env=env,
                              cwd=book.parent)
             for args in TAG_CASES]
    lists = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        lists.append(re.findall(r"^ {6}(\S.*?)\tTAGS:", out, re.M))
    return lists


@pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists() or shutil.which("python3") is None,
                    reason="ansible-core (dev dependency) not installed")
def test_tag_selection_matches_ansible_playbook_list_tasks(tmp_path):
    ours = load_playbook(str(write(tmp_path, TAGGED.replace("ACTION", 'run: "true"')
                                   .replace("  GATHER\n", ""))))
    theirs = _ansible_lists(write(tmp_path, TAGGED.replace("ACTION", "debug: {msg: x}")
                                  .replace("GATHER", "gather_facts: false"), "ansible.yml"))
    for args, expected in zip(TAG_CASES, theirs, strict=True):
        only, skip = _option(args, "--tags"), _option(args, "--skip-tags")
        got = [t.name for play in ours.plays for t in play.tasks
               if should_run(t.tags, only, skip)]
        assert got == expected, args


def test_templated_hosts_take_extra_vars_before_any_host(tmp_path):
    from fleetops.cli.play import select_hosts

    inv = tmp_path / "inv.ini"
    inv.write_text("[web]\nw1 ansible_host=127.0.0.1\nw2 ansible_host=127.0.0.1\n"
                   "[db]\nd1 ansible_host=127.0.0.1\n")
    path = write(tmp_path, """
        - hosts: "{{ target | default('web') }}"
          tasks: [{run: "true"}]
        """)
    book = load_playbook(str(path))
    assert [h.name for h in select_hosts(book, str(inv), None)[0][1]] == ["w1", "w2"]
    chosen = select_hosts(book, str(inv), None, parse_extra_vars(["target=db"]))
    assert [h.name for h in chosen[0][1]] == ["d1"]
    path = write(tmp_path, """
        - hosts: "{{ nowhere }}"
          tasks: [{run: "true"}]
        """)
    with pytest.raises(InputError, match=r"book\.yml:1: play .*hosts: .*nowhere"):
        select_hosts(load_playbook(str(path)), str(inv), None)
    bad = write(tmp_path, '- hosts: "{{ a b }}"\n  tasks: []\n')
    assert error_of(bad).startswith(f"{bad}:1: play hosts: ")


def test_play_vars_cannot_set_connection_variables(tmp_path):
    path = write(tmp_path, """
        - hosts: all
          vars:
            ok_var: 1
            ansible_become_user: app
          tasks: []
        """)
    assert error_of(path).startswith(f"{path}:4: play 'all': variable 'ansible_become_user': ")


def test_extra_vars_file_that_is_a_fifo_or_directory_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "vars.fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="extra vars file is not a regular file"):
        parse_extra_vars([f"@{fifo}"])
    with pytest.raises(InputError, match="extra vars file is a directory"):
        parse_extra_vars([f"@{tmp_path}"])
