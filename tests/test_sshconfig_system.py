"""The user config, the system config and their Includes, checked against ``ssh -G``.

Both ``ssh -G HOST`` (no ``-F``) and fleetops run inside ``unshare -m`` with a test
``/etc/ssh`` and a test home bind-mounted over the real ones, so the machine's own files
are never read or touched.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOSTS = ("userhost", "both", "syshost", "sysinc", "inc-user", "other", "Mixed.Example.COM")

USER_CONFIG = """\
Include conf.d/*.conf
Include ~/.ssh/extra.conf
Host userhost
    Port 3001
    User homeuser
Host both
    Port 3002
"""
SYSTEM_CONFIG = """\
Include ssh_config.d/*.conf
Host both
    User system-user
    HostName both.sys
Host syshost
    Port 4001
Host *
    HashKnownHosts yes
    IdentityFile ~/.ssh/sys_default
    GSSAPIAuthentication yes
    SendEnv LANG LC_*
"""
FILES = {
    "home/.ssh/config": USER_CONFIG,
    "home/.ssh/conf.d/a.conf": "Host inc-user\n    HostName inc.example.com\n",
    "home/.ssh/conf.d/ignored.txt": "Host *\n    Port 1\n",
    "home/.ssh/extra.conf": "Host both\n    User extra-user\n",
    "etc/ssh_config": SYSTEM_CONFIG,
    "etc/ssh_config.d/10-sys.conf": (
        "Host sysinc\n    HostName sysinc.example.com\n    Port 4002\n"
        "Match host *.example.com\n    UserKnownHostsFile /etc/ssh/kh_%h\n"),
    "etc/ssh_config.d/20-strict.conf": "Host sys*\n    StrictHostKeyChecking accept-new\n",
}


def _unshare() -> list[str] | None:
    if shutil.which("unshare") is None or shutil.which("ssh") is None:
        return None
    argv = ["unshare", "-m"] if os.getuid() == 0 else ["unshare", "-rm"]
    ok = subprocess.run([*argv, "true"], capture_output=True, timeout=10).returncode == 0
    return argv if ok else None


def inside(etc: str, home: str) -> None:
    """Run in the mount namespace: mount the test files, print both resolutions as JSON."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    from test_sshconfig import fleetops_g, ssh_g

    real_home = pwd.getpwuid(os.getuid()).pw_dir
    for src, dst in ((etc, "/etc/ssh"), (home, real_home)):
        subprocess.run(["mount", "--bind", src, dst], check=True, timeout=10)
    env = {"PATH": os.environ["PATH"], "HOME": real_home}
    os.environ["HOME"] = real_home
    out = {host: [ssh_g(None, host, [], env=env), fleetops_g(None, host, [])]
           for host in HOSTS}
    print(json.dumps(out))


def test_user_and_system_config_match_ssh_G(tmp_path):
    unshare = _unshare()
    if unshare is None:
        pytest.skip("needs unshare -m and ssh")
    for name, text in FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o644)
    argv = [*unshare, sys.executable, __file__, str(tmp_path / "etc"), str(tmp_path / "home")]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    for host, (want, got) in results.items():
        assert isinstance(want, dict), (host, want)
        assert got == want, host
    assert results["both"][0]["user"] == ["extra-user"]  # user Include beats system config
    assert results["both"][0]["hostname"] == ["both.sys"]
    assert results["sysinc"][0]["port"] == ["4002"]
    assert results["inc-user"][0]["hostname"] == ["inc.example.com"]
    assert results["syshost"][0]["stricthostkeychecking"] == ["accept-new"]
    assert results["inc-user"][0]["userknownhostsfile"] == ["/etc/ssh/kh_inc.example.com"]


if __name__ == "__main__":
    inside(sys.argv[1], sys.argv[2])
