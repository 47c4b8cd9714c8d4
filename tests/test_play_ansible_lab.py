"""Ansible playbook semantics on the real lab: precedence, -e, handlers, loop, conditions,
become per play/task, tags. Each test removes what it wrote under /srv."""

from __future__ import annotations

import json

import pytest

from tests.test_play_lab import book, inventory, play, play_json, sh, task_statuses

pytestmark = pytest.mark.lab


def stdout_of(doc: dict, host: str, name: str) -> str:
    (task,) = [t for t in doc["hosts"][host]["tasks"] if t["name"] == name]
    return task["stdout"].strip()


PRECEDENCE = """
- hosts: lab01:lab02
  vars: {level: play, from_play: "{{ level }}-seen", only_play: p}
  tasks:
    - name: play level
      run: echo {{ level }} {{ from_play }} {{ only_play }} {{ only_inv }}
      check_mode_safe: true
    - name: task level
      run: echo {{ level }} {{ tvar }}
      vars: {level: task, tvar: "{{ only_play }}{{ only_inv }}"}
      register: lvl
      check_mode_safe: true
    - name: registered beats task vars
      run: echo {{ lvl.stdout }}
      vars: {lvl: task-again}
      check_mode_safe: true
"""


def test_variable_precedence_and_extra_vars(lab, tmp_path):
    inv = inventory(lab, tmp_path, {"lab01": {"level": "inventory", "only_inv": "i"},
                                    "lab02": {"only_inv": "j"}})
    path = book(tmp_path, PRECEDENCE)
    rc, doc = play_json("-i", str(inv), str(path), cwd=tmp_path)
    assert rc == 0, doc
    # inventory < play vars < task vars < register
    assert stdout_of(doc, "lab01", "play level") == "play play-seen p i"
    assert stdout_of(doc, "lab01", "task level") == "task pi"
    assert stdout_of(doc, "lab02", "task level") == "task pj"
    assert stdout_of(doc, "lab01", "registered beats task vars") == "task pi"

    # extra vars beat everything, are rendered per host, and merge left to right
    (tmp_path / "extra.yml").write_text("level: from-file\nonly_play: file\n")
    rc, doc = play_json("-i", str(inv), str(path), "-e", "@extra.yml",
                        "--extra-vars", 'level="x {{ inventory_hostname }}"',
                        "-e", '{"only_inv": 7}', cwd=tmp_path)
    assert rc == 0, doc
    assert stdout_of(doc, "lab01", "play level") == "x lab01 x lab01-seen file 7"
    assert stdout_of(doc, "lab02", "task level") == "x lab02 file7"
    assert stdout_of(doc, "lab02", "registered beats task vars") == "x lab02 file7"
    rc, doc = play_json("-i", str(inv), str(path), "-e", "lvl=extra", cwd=tmp_path)
    assert rc == 2 and "'str object' has no attribute 'stdout'" in json.dumps(doc)


def test_bad_extra_vars_exit_before_any_host(lab, tmp_path):
    inv = inventory(lab, tmp_path)
    path = book(tmp_path, PRECEDENCE)
    proc = play("-i", str(inv), str(path), "-e", "novalue", cwd=tmp_path)
    assert proc.returncode == 5 and "'novalue' is not key=value" in proc.stderr
    (tmp_path / "bad.yml").write_text("a: 1\n- b\n")
    proc = play("-i", str(inv), str(path), "-e", "@bad.yml", cwd=tmp_path)
    assert proc.returncode == 4 and proc.stderr.startswith("fleetops: bad.yml:2: "), proc.stderr
    proc = play("-i", str(inv), str(path), "-e", "@missing.yml", cwd=tmp_path)
    assert proc.returncode == 4 and "missing.yml: extra vars file not found" in proc.stderr


HANDLERS = """
- hosts: lab01:lab02:lab03
  tasks:
    - name: write config
      copy: {content: "v={{ version }}\\n", dest: /srv/hcfg}
      notify: [restart, log it]
    - name: unchanged but notifies
      run: "true"
      changed_when: false
      notify: never me
    - name: second change notifies restart again
      copy: {content: "{{ version }}\\n", dest: /srv/hcfg2}
      notify: restart
      when: inventory_hostname != 'lab03'
  handlers:
    - name: never me
      run: echo never >> /srv/hlog
    - name: restart
      run: echo restart >> /srv/hlog
    - name: logger
      listen: log it
      run: echo logged >> /srv/hlog
"""


def test_handlers_run_once_at_the_end_in_handler_order(lab, tmp_path):
    inv = inventory(lab, tmp_path)
    path = book(tmp_path, HANDLERS)
    hosts = ("lab01", "lab02", "lab03")
    try:
        sh(lab, "lab03", "echo v=1 > /srv/hcfg")  # lab03 is already up to date
        rc, doc = play_json("-i", str(inv), str(path), "-e", "version=1", cwd=tmp_path)
        assert rc == 0, doc
        for host in ("lab01", "lab02"):
            names = [t["name"] for t in doc["hosts"][host]["tasks"]]
            assert names[-2:] == ["restart", "logger"], names
            assert sh(lab, host, "cat /srv/hlog").stdout == "restart\nlogged\n"
        assert [t["name"] for t in doc["hosts"]["lab03"]["tasks"]] == [
            "write config", "unchanged but notifies", "second change notifies restart again"]
        assert sh(lab, "lab03", "cat /srv/hlog").returncode != 0  # nothing notified it

        proc = play("-i", str(inv), str(path), "-e", "version=1", cwd=tmp_path)
        assert proc.returncode == 0 and "RUNNING HANDLER" not in proc.stdout, proc.stdout
        proc = play("-i", str(inv), str(path), "-e", "version=2", "-l", "lab01", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "RUNNING HANDLER [restart]" in proc.stdout
        assert sh(lab, "lab01", "cat /srv/hlog").stdout == "restart\nlogged\n" * 2
    finally:
        for host in hosts:
            sh(lab, host, "rm -f /srv/hcfg /srv/hcfg2 /srv/hlog")


def test_a_failed_host_runs_no_handler(lab, tmp_path):
    inv = inventory(lab, tmp_path)
    path = book(tmp_path, """
        - hosts: lab01:lab02
          tasks:
            - name: change
              run: echo x
              changed_when: true
              notify: h
            - name: fail on lab02
              run: "test {{ inventory_hostname }} = lab01"
          handlers:
            - name: h
              run: echo ran
        """)
    rc, doc = play_json("-i", str(inv), str(path), cwd=tmp_path)
    assert rc == 2
    assert task_statuses(doc, "lab01") == ["changed", "ok", "ok"]
    assert task_statuses(doc, "lab02") == ["changed", "failed"]


LOOP = """
- hosts: lab01
  tasks:
    - name: items
      run: echo {{ item }}
      loop: [a, b, c]
      when: item != 'b'
      register: out
    - name: per item results
      run: echo {{ out.results | map(attribute='status') | join(',') }} {{ out.changed }}
    - name: custom var from an expression
      run: "test {{ n }} -lt 3"
      loop: "{{ range(1, 5) | list }}"
      loop_control: {loop_var: n}
      failed_when: false
      register: cmp
    - name: rc per item
      run: echo {{ cmp.results | map(attribute='rc') | join(',') }}
"""


def test_loop_with_when_register_and_loop_var(lab, tmp_path):
    inv = inventory(lab, tmp_path)
    rc, doc = play_json("-i", str(inv), str(book(tmp_path, LOOP)), cwd=tmp_path)
    assert rc == 0, json.dumps(doc["hosts"]["lab01"]["tasks"])
    first = doc["hosts"]["lab01"]["tasks"][0]
    assert first["status"] == "ok"
    assert [r["stdout"] for r in first["data"]["results"]] == ["a\n", "", "c\n"]
    assert [r["item"] for r in first["data"]["results"]] == ["a", "b", "c"]
    assert stdout_of(doc, "lab01", "per item results") == "ok,skipped,ok False"
    assert stdout_of(doc, "lab01", "rc per item") == "0,0,1,1"
    assert doc["hosts"]["lab01"]["tasks"][2]["status"] == "ok"


def test_loop_keeps_going_after_a_failed_item_and_fails_the_task(lab, tmp_path):
    inv = inventory(lab, tmp_path)
    path = book(tmp_path, """
        - hosts: lab01
          tasks:
            - name: some fail
              run: "echo {{ item }} >> /srv/loopf; test {{ item }} != 2"
              loop: [1, 2, 3]
        """)
    try:
        rc, doc = play_json("-i", str(inv), str(path), cwd=tmp_path)
        assert rc == 2
        (task,) = doc["hosts"]["lab01"]["tasks"]
        assert task["status"] == "failed" and task["reason"].startswith("item 2 (2): ")
        assert sh(lab, "lab01", "cat /srv/loopf").stdout == "1\n2\n3\n"
    finally:
        sh(lab, "lab01", "rm -f /srv/loopf")


def test_changed_when_and_failed_when(lab, tmp_path):
    inv = inventory(lab, tmp_path)
    path = book(tmp_path, """
        - hosts: lab01
          tasks:
            - name: grep finds nothing (rc 1) but that is fine
              run: "echo hello | grep -c nomatch"
              register: g
              failed_when: g.rc > 1
              changed_when: false
            - name: a command that changed something
              run: echo CHANGED
              register: c
              changed_when: "'CHANGED' in c.stdout"
            - name: an rc 0 that is a failure
              run: echo ERROR
              register: e
              failed_when: ["'ERROR' in e.stdout", "e.rc == 0"]
            - name: not reached
              run: "true"
        """)
    rc, doc = play_json("-i", str(inv), str(path), cwd=tmp_path)
    assert rc == 2
    tasks = doc["hosts"]["lab01"]["tasks"]
    assert [t["status"] for t in tasks] == ["ok", "changed", "failed"]
    assert tasks[2]["reason"] == "failed_when: 'ERROR' in e.stdout and e.rc == 0"


def test_become_per_play_and_per_task(lab, tmp_path):
    inv = inventory(lab, tmp_path)
    path = book(tmp_path, """
        - hosts: lab01
          become: true
          become_user: nobody
          tasks:
            - {name: play, run: id -un}
            - {name: task off, run: id -un, become: false}
            - {name: task user, run: id -un, become_user: daemon}
        - hosts: lab01
          tasks:
            - {name: cli, run: id -un}
            - {name: task on, run: id -un, become: true}
        """)
    rc, doc = play_json("-i", str(inv), str(path), cwd=tmp_path)
    assert rc == 0, doc
    outs = [t["stdout"].strip() for t in doc["hosts"]["lab01"]["tasks"]]
    assert outs == ["nobody", "root", "daemon", "root", "root"]
    rc, doc = play_json("-i", str(inv), str(path), "-b", "--become-user", "daemon",
                        cwd=tmp_path)
    assert rc == 0, doc
    outs = [t["stdout"].strip() for t in doc["hosts"]["lab01"]["tasks"]]
    assert outs == ["nobody", "root", "daemon", "daemon", "daemon"]


TAGS = """
- hosts: lab01
  tags: [p]
  tasks:
    - {name: plain, run: "true"}
    - {name: web, run: "true", tags: web}
    - {name: db, run: "true", tags: "db, slow"}
    - {name: always, run: "true", tags: always}
    - {name: never, run: "true", tags: never}
    - {name: never debug, run: "true", tags: [never, debug]}
- hosts: lab01
  tasks:
    - {name: untagged, run: "true"}
"""


@pytest.mark.parametrize(("args", "expected"), [
    ((), ["plain", "web", "db", "always", "untagged"]),
    (("--tags", "web"), ["web", "always"]),
    (("--tags", "web,debug"), ["web", "always", "never debug"]),
    (("--tags", "slow", "--tags", "never"), ["db", "always", "never", "never debug"]),
    (("--skip-tags", "web"), ["plain", "db", "always", "untagged"]),
    (("--skip-tags", "always"), ["plain", "web", "db", "untagged"]),
    (("--tags", "untagged"), ["always", "untagged"]),
    (("--tags", "tagged"), ["plain", "web", "db", "always"]),
    (("--tags", "p", "--skip-tags", "db"), ["plain", "web", "always", "never", "never debug"]),
])
def test_tags_select_tasks_like_ansible(lab, tmp_path, args, expected):
    inv = inventory(lab, tmp_path)
    path = book(tmp_path, TAGS)
    proc = play("-i", str(inv), str(path), "--json", *args, cwd=tmp_path)
    doc = json.loads(proc.stdout)
    assert [t["name"] for t in doc["hosts"]["lab01"]["tasks"]] == expected


def test_handlers_run_at_the_end_of_each_serial_batch(lab, tmp_path):
    inv = inventory(lab, tmp_path)
    path = book(tmp_path, """
        - hosts: lab05:lab06
          serial: 1
          tasks:
            - name: stamp
              run: "date +%s%N > /srv/hstamp"
              changed_when: true
              notify: after
          handlers:
            - name: after
              run: "date +%s%N >> /srv/hstamp"
        """)
    try:
        rc, doc = play_json("-i", str(inv), str(path), cwd=tmp_path)
        assert rc == 0, doc
        stamps = {h: [int(x) for x in sh(lab, h, "cat /srv/hstamp").stdout.split()]
                  for h in ("lab05", "lab06")}
        assert all(len(v) == 2 for v in stamps.values())
        # lab05's handler ran before lab06's batch started
        assert stamps["lab05"][1] < stamps["lab06"][0]
    finally:
        for host in ("lab05", "lab06"):
            sh(lab, host, "rm -f /srv/hstamp")
