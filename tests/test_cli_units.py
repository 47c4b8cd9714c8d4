"""Small pure pieces of the CLI layer: per-host program arguments, retry files, output."""

from __future__ import annotations

from types import SimpleNamespace

from fleetops.cli.common import write_retry
from fleetops.cli.diskreport import host_args, program_args
from fleetops.cli.output import format_host, format_recap
from fleetops.results import HostResult, RunResult


def test_host_vars_extend_the_disk_report_arguments():
    base = program_args(80, 90, 85, 95, ["/var=70:80"], True, ["/srv/*"], [])
    host = SimpleNamespace(vars={"fleetops_disk_exclude": "/run, /tmp",
                                 "fleetops_disk_thresholds": ["/srv/data=50:60"]})
    argv = host_args(base, host)
    assert argv[: len(base)] == base
    assert argv[len(base):] == ["--exclude", "/run", "--exclude", "/tmp",
                                "--threshold", "/srv/data=50:60"]
    assert base == ["--warn", "80", "--crit", "90", "--inode-warn", "85", "--inode-crit", "95",
                    "--threshold", "/var=70:80", "--include", "/srv/*", "--local"]
    assert host_args(base, SimpleNamespace(vars={})) == base


def _run(*results: HostResult) -> RunResult:
    run = RunResult()
    for result in results:
        run.add(result)
    return run


def test_retry_file_lists_failed_and_unreachable_then_goes_away(tmp_path):
    path = tmp_path / "x.retry"
    run = _run(HostResult("a", "ok"), HostResult("b", "failed"), HostResult("c", "unreachable"),
               HostResult("d", "skipped"))
    assert write_retry(run, str(path)) == str(path)
    assert path.read_text().splitlines()[1:] == ["b", "c"]  # after fleetops' "#" header
    assert write_retry(_run(HostResult("b", "ok")), str(path)) is None
    assert not path.exists()


def test_exit_codes_follow_ansible():
    assert _run(HostResult("a", "ok"), HostResult("b", "changed")).exit_code == 0
    assert _run(HostResult("a", "unreachable")).exit_code == 3
    assert _run(HostResult("a", "unreachable"), HostResult("b", "failed")).exit_code == 2
    interrupted = _run(HostResult("a", "ok"))
    interrupted.interrupted = True
    assert interrupted.exit_code == 99


def test_host_output_is_prefixed_line_by_line():
    text = format_host(HostResult("web1", "failed", 3, "one\ntwo\n", "oops\n",
                                  reason="command exited with rc=3"))
    assert text.splitlines() == ["web1 | FAILED | rc=3 | command exited with rc=3",
                                 "web1 | one", "web1 | two", "web1 | stderr: oops"]
    recap = format_recap(_run(HostResult("web1", "ok"), HostResult("db", "failed")), False,
                         "fleetops.retry")
    assert "web1 : ok=1 changed=0 unreachable=0 failed=0 skipped=0" in recap
    assert "db   : ok=0 changed=0 unreachable=0 failed=1 skipped=0" in recap
    assert "--limit @fleetops.retry" in recap
