"""The lab against the real ssh client: hosts, private dirs, faults, up/down hygiene."""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from invoke import Context, Exit

from fleetops.cli import lab as lab_cli
from fleetops.lab import proc as lab_proc
from fleetops.lab.lab import Lab, LabError

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[1]


def _use_percent(df_output: str) -> int:
    return int(df_output.strip().splitlines()[-1].split()[4].rstrip("%"))


def test_up_time_and_layout(lab):
    print(f"\nlab.up(16) took {lab.up_seconds:.2f}s")
    hosts = lab.hosts
    assert [h.name for h in hosts] == [f"lab{i:02d}" for i in range(1, 17)]
    assert [h.address for h in hosts] == [f"{lab.prefix}.0.{i}" for i in range(1, 17)]
    assert {h.port for h in hosts} == {2222}
    assert all(lab_proc.alive(h.holder_pid) for h in hosts)
    assert stat.S_IMODE(lab.client_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(lab.inventory_path.stat().st_mode) == 0o644
    known = lab.known_hosts.read_text().splitlines()
    assert known[0].startswith(f"[{lab.prefix}.0.1]:2222 ssh-ed25519 ")
    assert len(known) == 16


def test_inventory_groups(lab_inventory, lab):
    text = lab_inventory.read_text()
    assert f"lab01 ansible_host={lab.prefix}.0.1 ansible_port=2222 ansible_user=root" in text
    sections = {}
    for line in text.splitlines():
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        elif line and not line.startswith("#"):
            current.append(line.split()[0])
    assert sections["even"] == [f"lab{i:02d}" for i in range(2, 17, 2)]
    assert sections["odd"] == [f"lab{i:02d}" for i in range(1, 17, 2)]
    assert f"ansible_ssh_private_key_file={lab.client_key}" in sections["lab:vars"]
    assert f"fleetops_known_hosts={lab.known_hosts}" in sections["lab:vars"]


def test_hostnames_home_and_data_fill(lab, lab_ssh):
    command = 'hostname; echo "$HOME"; wc -c < ~/.bashrc; df -P /srv/data'
    with ThreadPoolExecutor(4) as pool:
        names = [h.name for h in lab.hosts]
        procs = dict(zip(names, pool.map(lambda n: lab_ssh(n, command), names), strict=True))
    used = {}
    for name, proc in procs.items():
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split()[:3] == [name, "/root", "0"]
        assert proc.stdout.splitlines()[-1].split()[1] == "8192"  # 8 MiB in 1K blocks
        used[name] = _use_percent(proc.stdout)
    assert len(set(used.values())) >= 14, used
    assert any(u >= 90 for u in used.values()), used
    assert any(80 <= u < 90 for u in used.values()), used
    assert any(u < 20 for u in used.values()), used


def test_ns_run_sees_private_mounts(lab):
    inodes = set()
    for name in ("lab01", "lab02", "lab03"):
        proc = lab.ns_run(name, ["df", "-Pi", "/srv/data"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        inodes.add(_use_percent(proc.stdout))
    assert len(inodes) == 3
    proc = lab.ns_run("lab02", ["hostname"], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "lab02"


def test_cron_dirs_are_private(lab, lab_ssh):
    probe = "/etc/cron.d/fleetops-lab-probe"
    assert lab_ssh("lab01", f"echo '# probe' > {probe}").returncode == 0
    try:
        assert lab_ssh("lab01", f"test -f {probe}").returncode == 0
        assert lab_ssh("lab02", f"test -e {probe}").returncode == 1
        assert not Path(probe).exists()
        proc = lab_ssh("lab02", "stat -c '%a %U %G' /var/spool/cron/crontabs")
        assert proc.stdout.strip() == "1730 root crontab"
    finally:
        lab_ssh("lab01", f"rm -f {probe}")


def test_stop_refuses_connections(lab, lab_ssh):
    lab.fault("lab03", "stop")
    proc = lab_ssh("lab03", "true")
    assert proc.returncode == 255
    assert "Connection refused" in proc.stderr
    assert lab.status()["hosts"]["lab03"]["state"] == "stopped"
    assert lab_ssh("lab04", "true").returncode == 0


def test_freeze_hangs_connections(lab, lab_ssh):
    lab.fault("lab04", "freeze")
    started = time.monotonic()
    proc = lab_ssh("lab04", "true", connect_timeout=2)
    elapsed = time.monotonic() - started
    assert proc.returncode == 255
    assert "timed out" in proc.stderr
    assert 1.5 <= elapsed < 10
    assert lab.status()["hosts"]["lab04"]["state"] == "frozen"
    assert lab_ssh("lab05", "true", connect_timeout=2).returncode == 0


def test_rekey_fails_strict_host_key_checking(lab, lab_ssh):
    lab.fault("lab05", "rekey")
    proc = lab_ssh("lab05", "true")
    assert proc.returncode == 255
    assert "Host key verification failed" in proc.stderr
    assert lab.status()["hosts"]["lab05"]["state"] == "rekeyed"
    lab.heal("lab05")
    assert lab_ssh("lab05", "true").returncode == 0


def test_nopython_hides_python3(lab, lab_ssh):
    lab.fault("lab06", "nopython")
    proc = lab_ssh("lab06", "python3 -c 'print(1)'; echo rc=$?; python3.11 -V; echo rc=$?")
    assert "rc=0" not in proc.stdout, proc.stdout
    assert lab.status()["hosts"]["lab06"]["nopython"] is True
    assert lab_ssh("lab07", "python3 -c 'print(1)'").stdout.strip() == "1"
    assert Path("/usr/bin/python3").resolve().is_file()  # the real machine keeps python


def test_heal_all_restores_every_fault(lab, lab_ssh):
    for host, kind in (("lab08", "stop"), ("lab09", "freeze"), ("lab10", "rekey"),
                       ("lab11", "nopython"), ("lab12", "stop")):
        lab.fault(host, kind)
    lab.heal("all")
    st = lab.status()
    assert {h["state"] for h in st["hosts"].values()} == {"up"}
    assert not any(h["nopython"] for h in st["hosts"].values())
    for host in ("lab08", "lab09", "lab10", "lab12"):
        assert lab_ssh(host, "hostname", connect_timeout=3).stdout.strip() == host
    assert lab_ssh("lab11", "python3 -c 'print(2)'").stdout.strip() == "2"


def test_up_refuses_to_clobber(lab):
    with pytest.raises(LabError, match="already running"):
        lab.up(16)
    root, inv = str(lab.state_dir), str(lab.inventory_path)
    with pytest.raises(Exit) as caught:
        lab_cli.up(Context(), hosts=16, root=root, inventory=inv, prefix=lab.prefix)
    assert caught.value.code == 4
    assert "already running" in str(caught.value.message)
    lab_cli.up(Context(), hosts=16, reuse=True, root=root, inventory=inv, prefix=lab.prefix)
    assert lab.healthy()


def test_bad_host_or_kind_is_one_line_exit_4(lab):
    with pytest.raises(LabError, match="unknown lab host 'lab99'"):
        lab.fault("lab99", "stop")
    with pytest.raises(Exit) as caught:
        lab_cli.fault(Context(), "lab01", "explode", root=str(lab.state_dir))
    assert caught.value.code == 4
    assert "\n" not in caught.value.message


def test_status_cli_json(lab, capsys):
    lab_cli.status(Context(), json_=True, root=str(lab.state_dir))
    doc = json.loads(capsys.readouterr().out)
    assert doc["running"] is True
    assert doc["up"] == 16
    assert doc["hosts"]["lab01"]["state"] == "up"


def test_not_root_is_one_line_error(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="needs root"):
        Lab(REPO / ".lab-test-nobody", REPO / "inventory" / "lab-test-nobody.ini").up(1)
    with pytest.raises(Exit) as caught:
        lab_cli.status(Context(), root=str(REPO / ".lab-test-nobody"))
    assert caught.value.code == 4


def test_down_leaves_nothing(lab, lab_slot):
    small = Lab(*lab_slot.paths("-down"))
    small.down()
    small.up(2)
    hosts = small.hosts
    holders = [h.holder_pid for h in hosts]
    sshds = [h.sshd_pid() for h in hosts]
    namespaces = {lab_proc.mnt_ns(p) for p in holders}
    extra = small.ns_popen("lab02", ["sleep", "600"])
    assert all(sshds) and None not in namespaces and len(namespaces) == 2
    small.down()
    extra.wait(timeout=5)
    assert not any(lab_proc.alive(p) for p in holders + sshds)
    assert not lab_proc.pids_in_namespaces(namespaces)
    assert not lab_proc.marked_pids(str(small.state_dir))
    mounts = Path("/proc/self/mountinfo").read_text()  # other labs' may be there
    assert f"{small.state_dir}/" not in mounts
    assert not small.state_dir.exists() and not small.inventory_path.exists()
    address = (hosts[0].address, hosts[0].port)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(address, 2):
        pass
    assert small.down() == {"processes": 0, "removed": []}
    assert lab.healthy()  # the session lab is untouched


PROBE_DIRS = ("/usr", "/usr/local", "/var", "/var/lib", "/opt", "/home", "/root", "/etc", "/")


def test_writes_stay_in_their_own_host(lab, lab_ssh):
    name = f"fleetops-lab-probe-{os.getpid()}"
    paths = [f"{d.rstrip('/')}/{name}" for d in PROBE_DIRS]
    write = "; ".join(f"echo lab01 > {p}" for p in paths) + "; cat " + " ".join(paths)
    try:
        proc = lab_ssh("lab01", write)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["lab01"] * len(paths)
        for p in paths:
            assert not os.path.lexists(p), f"{p} reached the machine"
        seen = lab_ssh("lab02", "; ".join(f"test -e {p} && echo {p}" for p in paths) + "; true")
        assert seen.stdout == "", f"lab02 sees {seen.stdout}"
        assert lab_ssh("lab02", f"ls /usr/{name}").returncode == 2
    finally:
        lab_ssh("lab01", "rm -f " + " ".join(paths))
    assert lab_ssh("lab01", "test -e /dev/vda || test -e /dev/sda || test -e /dev/kmsg"
                   ).returncode == 1  # no machine device in a host's /dev
    for target in (lab.state_dir / name, lab.host("lab02").dir / name):
        denied = lab_ssh("lab01", f"touch {target}")
        assert denied.returncode == 1 and "Read-only file system" in denied.stderr
        assert not target.exists()


def test_pid_namespace_hides_the_machine(lab, lab_ssh):
    proc = lab_ssh("lab03", "ps -e -o pid= -o comm=; cat /proc/1/cmdline | tr '\\0' ' '")
    assert proc.returncode == 0, proc.stderr
    *table, init = proc.stdout.strip().splitlines()
    procs = {int(line.split()[0]): line.split()[1] for line in table}
    # only the host's own init, sshd and what earlier tests left running in it (a
    # never-ending test command's sleep): none of the machine's processes
    assert set(procs.values()) <= {"bash", "sh", "sshd", "ps", "tr", "cat", "sleep"}, procs
    assert not {"pytest", "python", "python3", "systemd", "init"} & set(procs.values())
    assert procs[1] == "bash" and "while :" in init
    ours = os.getpid()
    other = lab.host("lab04").sshd_pid()
    for pid in {ours, other} - set(procs):
        killed = lab_ssh("lab03", f"kill -0 {pid}")
        assert killed.returncode == 1 and "No such process" in killed.stderr
    assert lab_proc.alive(other)
    inner = lab.ns_run("lab03", ["sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"],
                       capture_output=True, text=True, check=True).stdout.split()
    assert int(inner[1]) < 15, inner


def test_hostname_resolves_inside_its_host(lab, lab_ssh):
    h = lab.host("lab05")
    proc = lab_ssh("lab05", "getent hosts lab05; hostname -f; sudo true")
    assert proc.stdout.split() == [h.address, "lab05", "lab05"]
    assert proc.stderr == ""  # sudo: no "unable to resolve host"


def test_ns_popen_signals_reach_the_command(lab):
    child = lab.ns_popen("lab06", ["sleep", "617"])
    try:
        deadline = time.monotonic() + 5
        while "617" not in lab.ns_run("lab06", ["ps", "-e", "-o", "args="], capture_output=True,
                                      text=True).stdout:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        child.terminate()
        assert child.wait(5) != 0
    finally:
        if child.poll() is None:
            child.kill()
    ps = lab.ns_run("lab06", ["ps", "-e", "-o", "args="], capture_output=True, text=True)
    assert "sleep 617" not in ps.stdout


def test_unknown_profile_is_one_line_exit_4(lab):
    with pytest.raises(Exit) as caught:
        lab_cli.up(Context(), hosts=1, profile="bogus", root=str(lab.state_dir),
                   inventory=str(lab.inventory_path), prefix=lab.prefix)
    assert caught.value.code == 4
    assert "unknown lab profile 'bogus'" in caught.value.message
    assert lab.healthy()
    assert {h["kind"] for h in lab.status()["hosts"].values()} == {""}
