"""Over real sshd: shipped programs start even when shell start-up files print text, a
host whose start-up noise never ends fails with a reason, and an unsafe cache is refused.

Lab hosts have a copy-on-write /etc and a tmpfs /root: every file changed here is put
back after the test.
"""

from __future__ import annotations

import subprocess

import pytest

pytestmark = pytest.mark.lab

HOST = "lab14"
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
NOISE = {
    "/root/.bashrc": "echo 'Welcome to lab14 (from ~/.bashrc)'\nprintf 'half a line, no newline'\n",
    "/etc/bash.bashrc": "printf '\\033]0;title\\007 from /etc/bash.bashrc \\377\\n'\n",
}


def sh(lab, script: str, check: bool = True) -> subprocess.CompletedProcess:
    return lab.ns_run(HOST, ["sh", "-c", script], capture_output=True, text=True, env=ENV,
                      timeout=20, check=check)


@pytest.fixture()
def trust_lab(request):
    try:
        lab = request.getfixturevalue("lab")
    except pytest.FixtureLookupError:
        pytest.skip("the lab fixture (tests/conftest.py) is not available")
    saved = {}
    for path in (*NOISE, "/root/.profile"):
        done = sh(lab, f"cat {path}", check=False)
        saved[path] = done.stdout if done.returncode == 0 else None
    try:
        yield lab
    finally:
        for path, text in saved.items():
            if text is None:
                sh(lab, f"rm -f {path}")
            else:
                lab.ns_run(HOST, ["sh", "-c", f"cat > {path}"], input=text, text=True,
                           env=ENV, timeout=20, check=True)
        sh(lab, "rm -rf /root/.cache/fleetops")


def write(lab, path: str, text: str) -> None:
    lab.ns_run(HOST, ["sh", "-c", f"cat > {path}"], input=text, text=True, env=ENV,
               timeout=20, check=True)


def diskreport(lab):
    from fleetops.cli import common
    from fleetops.ship.run import fleet_program

    hosts = common.targets(str(lab.inventory_path), HOST, None)
    run = fleet_program(hosts, "diskreport", ["--include", "/srv/data"],
                        common.runner_options(forks=1, command_timeout=60))
    return run.hosts[HOST]


def test_rc_files_that_print_text_do_not_break_shipped_programs(trust_lab):
    lab = trust_lab
    for path, text in NOISE.items():
        write(lab, path, text)
    sh(lab, "rm -rf /root/.cache/fleetops")
    cold = diskreport(lab)
    assert cold.status == "ok", cold.reason
    assert cold.uploaded_bytes > 100_000
    assert [m["mountpoint"] for m in cold.data["mounts"]] == ["/srv/data"]
    warm = diskreport(lab)
    assert warm.status == "ok", warm.reason
    assert warm.uploaded_bytes < 5_000


def test_noise_is_really_printed_over_ssh(trust_lab, lab_ssh):
    """The test above is only meaningful if sshd's bash prints the rc files' text."""
    for path, text in NOISE.items():
        write(trust_lab, path, text.replace("\\377", ""))  # lab_ssh decodes UTF-8
    out = lab_ssh(HOST, "echo command-output").stdout
    assert "Welcome to lab14" in out and "from /etc/bash.bashrc" in out
    assert out.rstrip().endswith("half a line, no newlinecommand-output")


def test_endless_start_up_noise_fails_with_a_reason(trust_lab):
    write(trust_lab, "/root/.bashrc", "head -c 200000 /dev/zero | tr '\\0' 'x'; echo\n")
    result = diskreport(trust_lab)
    assert result.status == "failed"
    assert "no fleetops handshake in the first 64 KiB of output" in result.reason


def test_unsafe_cache_dir_fails_the_host_with_the_reason(trust_lab):
    sh(trust_lab, "mkdir -p /root/.cache/fleetops && chmod 755 /root/.cache/fleetops")
    result = diskreport(trust_lab)
    assert result.status == "failed" and result.rc == 122
    assert "/root/.cache/fleetops must be owned by uid 0 with mode 0700" in result.reason


@pytest.mark.parametrize("shell", [s for s in ("/usr/bin/tcsh", "/bin/bsd-csh")
                                   if __import__("os").path.exists(s)] or
                         [pytest.param("csh", marks=pytest.mark.skip("no csh installed"))])
def test_csh_login_shell_with_a_noisy_cshrc(trust_lab, lab_ssh, shell):
    """sshd runs ``csh -c COMMAND`` for a csh user: ~/.cshrc prints first, and BSD csh
    refuses words over 8 KiB; /etc/passwd is the host's copy-on-write one."""
    lab = trust_lab
    passwd = sh(lab, "cat /etc/passwd").stdout
    write(lab, "/root/.cshrc", 'echo "hello from .cshrc"\necho -n "no newline"\n')
    try:
        sh(lab, f"usermod -s {shell} root")
        seen = lab_ssh(HOST, "echo $shell").stdout  # $shell: set by csh only
        assert "hello from .cshrc" in seen and "no newline/" in seen and "csh" in seen
        sh(lab, "rm -rf /root/.cache/fleetops")
        for uploaded in (True, False):
            result = diskreport(lab)
            assert result.status == "ok", result.reason
            assert (result.uploaded_bytes > 100_000) is uploaded
    finally:
        write(lab, "/etc/passwd", passwd)
        sh(lab, "rm -f /root/.cshrc")
