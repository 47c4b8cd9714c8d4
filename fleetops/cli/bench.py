"""``invoke bench.*``: benchmarks that measure fleetops against a baseline in the same run."""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from invoke import task
from invoke.exceptions import Exit

REPO = Path(__file__).resolve().parent.parent.parent
LAB_INVENTORY = REPO / "inventory" / "lab.ini"


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextmanager
def lab_of(hosts: int):
    """Use the running lab if it has exactly ``hosts`` hosts, else start one (and stop it)."""
    from fleetops.lab.lab import Lab

    lab = Lab(REPO / ".lab", LAB_INVENTORY, os.environ.get("FLEETOPS_LAB_PREFIX") or "127.77")
    started = False
    if lab.running():
        if len(lab.hosts) != hosts:
            raise Exit(f"fleetops: a lab of {len(lab.hosts)} hosts is running; "
                       f"run 'invoke lab.down' or use --hosts {len(lab.hosts)}", code=5)
    else:
        log(f"starting a lab of {hosts} hosts")
        lab.up(hosts)
        started = True
    try:
        yield lab
    finally:
        if started:
            lab.down()


def ssh_baseline_argv(lab, command: str) -> tuple[list[str], bytes]:
    """OpenSSH client over every host with xargs -P N (the baseline)."""
    port = lab.hosts[0].port
    argv = ["xargs", "-P", str(len(lab.hosts)), "-I{}", "ssh", "-q",
            "-o", "BatchMode=yes", "-o", "KexAlgorithms=curve25519-sha256",
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={lab.known_hosts}",
            "-o", "ControlMaster=no", "-i", str(lab.client_key), "-p", str(port),
            "-l", "root", "{}", command]
    addresses = "".join(f"{h.address}\n" for h in lab.hosts).encode()
    return argv, addresses


def count_good(sample, good) -> int:
    """Hosts of a ``--json`` run for which ``good(host_entry)`` holds; logs the others."""
    try:
        doc = json.loads(sample.stdout)
    except ValueError:
        log(f"unreadable output (rc={sample.rc}): {sample.stdout[:200]!r}")
        return 0
    count = 0
    for name, host in doc["hosts"].items():
        if host["status"] in ("ok", "changed") and good(host):
            count += 1
        else:
            log(f"{name}: {host['status']}: {host['reason']} {host['stderr'][-200:]!r}")
    return count


def count_ok_outputs(sample, marker: bytes) -> int:
    return count_good(sample, lambda host: marker.decode() in host["stdout"])


@task(help={"hosts": "lab hosts (default 100)", "runs": "measured runs each (default 5)"})
def adhoc(c, hosts=100, runs=5):
    """Median wall time of `invoke run 'df -P'` vs OpenSSH + xargs -P N, in the same run."""
    from fleetops.lab.bench import Series, interleave, invoke_argv, measure

    with lab_of(hosts) as lab:
        fleet = Series("fleetops")
        base = Series("baseline")
        fleet_argv = invoke_argv("run", "-i", str(lab.inventory_path), "--json",
                                 "--forks", str(hosts), "--retry-file", "", "df -P")
        base_argv, base_stdin = ssh_baseline_argv(lab, "df -P")
        interleave([(fleet, lambda: measure(fleet_argv)),
                    (base, lambda: measure(base_argv, base_stdin))], runs, log=log)
        got_fleet = min(count_ok_outputs(s, b"Filesystem") for s in fleet.samples)
        got_base = min(s.stdout.count(b"Filesystem") for s in base.samples)
    log(f"outputs collected: fleetops {got_fleet}/{hosts}, baseline {got_base}/{hosts}")
    ratio = fleet.median_s / base.median_s
    print(f"RESULT bench.adhoc hosts={hosts} fleetops_s={fleet.median_s:.3f} "
          f"baseline_s={base.median_s:.3f} ratio={ratio:.2f} "
          f"peak_rss_mib={fleet.peak_rss_mib:.1f}")
    if got_fleet != hosts or got_base != hosts:
        raise Exit("fleetops: not every host returned its output", code=2)


@task(help={"hosts": "hosts behind the bastion (default 16; the lab gets one more)",
            "runs": "measured runs each (default 5)",
            "command": "command run on each host (default 'df -P')"})
def jump(c, hosts=16, runs=5, command="df -P"):
    """Hosts through one bastion (lab01): fleetops (one shared bastion transport) vs
    OpenSSH ``ssh -J`` + ``xargs -P N``, both reading the same ssh_config, same run."""
    import tempfile

    from fleetops.lab.bench import (
        Series,
        interleave,
        inventory_with_ssh_config,
        invoke_argv,
        jump_ssh_config,
        measure,
    )

    hosts = int(hosts)
    with lab_of(hosts + 1) as lab, tempfile.TemporaryDirectory(prefix="fleetops-jump-") as home:
        bastion, behind = lab.hosts[0], lab.hosts[1:]
        prefix = bastion.address.rsplit(".", 1)[0]
        config = Path(home) / ".ssh" / "config"
        config.parent.mkdir(mode=0o700)
        config.write_text(jump_ssh_config(bastion.address, bastion.port, f"{prefix}.*",
                                          lab.client_key, lab.known_hosts))
        # ~/.ssh/config by $HOME, and -F for a resolver that reads the passwd home as ssh does
        inventory = inventory_with_ssh_config(lab.inventory_path, config,
                                              Path(home) / "jump.ini")
        fleet_argv = invoke_argv("run", "-i", str(inventory), "-p",
                                 f"lab:!{bastion.name}", "--json", "--forks", str(hosts),
                                 "--retry-file", "", command)
        base_argv = ["xargs", "-P", str(hosts), "-I{}", "ssh", "-q", "-F", str(config), "-J",
                     f"root@{bastion.address}:{bastion.port}", "{}",
                     f"{command}; echo FLEETOPS-BENCH-OK"]
        base_stdin = "".join(f"{h.address}\n" for h in behind).encode()
        fleet, base = Series("fleetops"), Series("openssh")
        interleave([(fleet, lambda: measure(fleet_argv, env={"HOME": home})),
                    (base, lambda: measure(base_argv, base_stdin))], runs, log=log)
        got_fleet = min(count_good(s, lambda host: True) for s in fleet.samples)
        got_base = min(s.stdout.count(b"FLEETOPS-BENCH-OK") for s in base.samples)
    log(f"hosts answering through {bastion.name}: fleetops {got_fleet}/{hosts}, "
        f"openssh {got_base}/{hosts}")
    print(f"RESULT bench.jump hosts={hosts} fleetops_s={fleet.median_s:.3f} "
          f"openssh_s={base.median_s:.3f} ratio={fleet.median_s / base.median_s:.2f}")
    if got_fleet != hosts or got_base != hosts:
        raise Exit("fleetops: not every host answered through the bastion", code=2)


def count_reports(sample) -> int:
    return count_good(sample, lambda host: bool(host.get("mounts")))


def clear_caches(lab) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda h: lab.ns_run(h, ["rm", "-rf", "/root/.cache/fleetops"]),
                      lab.hosts))


def history_seconds(report_json: bytes, history: Path) -> float:
    """Time of the history step of one disk report (read, forecast, append, changes) on
    the bench's own history file, from that report's JSON."""
    import time

    from fleetops.jobs.disk.report import build_report
    from fleetops.jobs.disk.trend import track

    doc = json.loads(report_json)
    results = {name: (h["status"], h.get("reason"), {"mounts": h.get("mounts")})
               for name, h in doc["hosts"].items()}
    rep = build_report(results)
    start = time.perf_counter()
    error = track(rep, history)
    if error:
        raise Exit(f"fleetops: {error}", code=2)
    return time.perf_counter() - start


@task(name="disk-report",
      help={"hosts": "lab hosts (default 100)", "runs": "measured runs each (default 5)"})
def disk_report(c, hosts=100, runs=5):
    """Fleet disk report cold (zipapp uploaded) and warm (cached) vs ad-hoc `df -P`."""
    from fleetops.lab.bench import Series, interleave, invoke_argv, measure

    with lab_of(hosts) as lab:
        inv = str(lab.inventory_path)
        history = REPO / ".lab" / "bench-disk-history.sqlite"
        history.unlink(missing_ok=True)
        report_argv = invoke_argv("disk-report", "-i", inv, "--format", "json",
                                  "--forks", str(hosts), "--retry-file", "",
                                  "--history", str(history))
        adhoc_argv = invoke_argv("run", "-i", inv, "--json", "--forks", str(hosts),
                                 "--retry-file", "", "df -P")
        cold, warm, adhoc_ = Series("cold"), Series("warm"), Series("adhoc")

        def cold_once():
            clear_caches(lab)
            return measure(report_argv)

        interleave([(cold, cold_once), (warm, lambda: measure(report_argv)),
                    (adhoc_, lambda: measure(adhoc_argv))], runs, log=log)
        got = min(count_reports(s) for s in cold.samples + warm.samples)
        got_adhoc = min(count_ok_outputs(s, b"Filesystem") for s in adhoc_.samples)
        history_ms = 1000 * history_seconds(warm.samples[-1].stdout, history)
    log(f"reports collected: {got}/{hosts}; ad-hoc outputs {got_adhoc}/{hosts}; "
        f"peak RSS {max(cold.peak_rss_mib, warm.peak_rss_mib):.1f} MiB")
    print(f"RESULT bench.disk-report hosts={hosts} cold_s={cold.median_s:.3f} "
          f"warm_s={warm.median_s:.3f} adhoc_s={adhoc_.median_s:.3f} "
          f"warm_ratio={warm.median_s / adhoc_.median_s:.2f} "
          f"cold_ratio={cold.median_s / adhoc_.median_s:.2f} history_ms={history_ms:.1f}")
    if got != hosts or got_adhoc != hosts:
        raise Exit("fleetops: not every host returned its report", code=2)


@task(help={"mb": "MiB printed by the flooding host (default 400)",
            "hosts": "lab hosts (default 8): the first floods, the others run df -P",
            "max-output": "passed to invoke run (default: its default, 4M)"})
def flood(c, mb=400, hosts=8, max_output=None):
    """Peak RSS of the control process while one host prints MB MiB (issue 11: <= 300 MiB)."""
    from fleetops.lab.bench import flood_command, invoke_argv, measure

    mb, hosts = int(mb), int(hosts)
    with lab_of(hosts) as lab:
        flooder = lab.hosts[0].name
        argv = invoke_argv("run", "-i", str(lab.inventory_path), "--json", "--forks", str(hosts),
                           "--retry-file", "", "--command-timeout", "900",
                           *(["--max-output", str(max_output)] if max_output else []),
                           flood_command(flooder, mb))
        sample = measure(argv, timeout=1200)
    try:
        doc = json.loads(sample.stdout)
    except ValueError:
        raise Exit(f"fleetops: unreadable output (rc={sample.rc}): {sample.stdout[:200]!r}",
                   code=2) from None
    flood_host = doc["hosts"].get(flooder, {})
    others = {n: h for n, h in doc["hosts"].items() if n != flooder}
    good = sum(1 for h in others.values() if h["status"] == "ok" and "Filesystem" in h["stdout"])
    kept = len(flood_host.get("stdout", ""))
    discarded = (flood_host.get("discarded_bytes") or {}).get("stdout", 0)
    log(f"{flooder}: {flood_host.get('status')}: {flood_host.get('reason')}")
    print(f"RESULT bench.flood mb={mb} hosts={hosts} peak_rss_mib={sample.peak_rss_mib:.1f} "
          f"wall_s={sample.wall_s:.2f} other_hosts_ok={good}/{len(others)} "
          f"flood_host={flood_host.get('status')} kept_bytes={kept} discarded_bytes={discarded}")
    if good != len(others) or not flood_host.get("truncated"):
        raise Exit("fleetops: the flood was not contained", code=2)
