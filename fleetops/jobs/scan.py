"""Fleet scans: sweep (and arpscan) from every vantage host, merged into one network map.

The one network-map schema of fleetops: ``invoke scan --json`` (under ``network``) and
``invoke play`` (``network``, from its ``sweep``/``arpscan`` tasks) build it with
:func:`network_map` from the per-host ``data`` documents of the ``sweep`` and
``arpscan`` ops programs, so the two always agree. The map::

    {"addresses": [ADDRESS, ...],            # every address probed or ARP'd, by IP
     "vantages": {host: VANTAGE, ...},       # every host that swept or ARP'd
     "summary": {"answering", "arp-only", "no-reply", "addresses", "with_mac",
                 "mac_conflicts": int}}
    ADDRESS = {"ip": str, "seen_by": [{"host": str, "rtt_ms": float | None}],
               "no_reply_from": [str], "macs": [{"mac": str, "hosts": [str]}],
               "mac": str | None, "state": "answering" | "arp-only" | "no-reply"}
    VANTAGE = {"swept": bool, ["backend", "mode", "targets", "alive", "elapsed_s"]
               when swept, ["arp": bool, ["arp_method", "not_on_link"] when ARP'd]}

* ``state``: ``answering`` (some vantage got a reply), ``arp-only`` (no vantage got
  a reply but ARP named a MAC: the address exists and drops probes) or
  ``no-reply``;
* ``seen_by``: the vantages that got a reply (each once, its best rtt), fastest
  first; ``no_reply_from``: the vantages that probed it and got none;
* ``mac`` (when ARP named exactly one), ``macs`` (every MAC, lower case, with the
  vantages that saw it: more than one means a conflict, or one private range at two sites).

:func:`scan` runs the programs (through :func:`fleetops.ship.run.fleet_program`) and
returns a :class:`ScanReport`; everything else is pure, testable with recorded results.
"""
from __future__ import annotations

import csv
import io
import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fleetops.results import HostResult, RunResult

STATES = ("answering", "arp-only", "no-reply")
BACKENDS = ("auto", "dgram", "raw", "ping", "tcp")
Data = Mapping[str, Any]


def _entry(table: dict[str, dict[str, Any]], ip: str) -> dict[str, Any]:
    if ip not in table:
        table[ip] = {"ip": ip, "seen_by": [], "no_reply_from": [], "macs": {}}
    return table[ip]


def _add_sweep(table: dict[str, dict[str, Any]], host: str, data: Data) -> None:
    for item in data.get("alive", []):
        seen = _entry(table, item["ip"])["seen_by"]
        rtt = item.get("rtt_ms")
        same = next((s for s in seen if s["host"] == host), None)
        if same is None:
            seen.append({"host": host, "rtt_ms": rtt})
        elif rtt is not None and (same["rtt_ms"] is None or rtt < same["rtt_ms"]):
            same["rtt_ms"] = rtt  # a host that swept twice (a playbook): its best reply
    for ip in data.get("no_reply", []):
        no_reply = _entry(table, ip)["no_reply_from"]
        if host not in no_reply:
            no_reply.append(host)


def _add_arp(table: dict[str, dict[str, Any]], host: str, data: Data) -> None:
    for item in data.get("entries", []):
        if isinstance(item.get("mac"), str):
            hosts = _entry(table, item["ip"])["macs"].setdefault(item["mac"].lower(), [])
            if host not in hosts:
                hosts.append(host)


def _finish(entry: dict[str, Any]) -> dict[str, Any]:
    entry["seen_by"].sort(key=lambda s: (s["rtt_ms"] is None, s["rtt_ms"] or 0.0, s["host"]))
    entry["no_reply_from"].sort()
    macs = [{"mac": mac, "hosts": sorted(hosts)} for mac, hosts in sorted(entry["macs"].items())]
    entry["macs"] = macs
    entry["mac"] = macs[0]["mac"] if len(macs) == 1 else None
    if entry["seen_by"]:
        entry["state"] = "answering"
    elif macs:
        entry["state"] = "arp-only"
    else:
        entry["state"] = "no-reply"
    return entry


def _swept(data: Data) -> dict[str, Any]:
    return {"swept": True, "backend": data.get("backend"), "mode": data.get("mode"),
            "targets": data.get("targets", 0), "alive": len(data.get("alive", [])),
            "elapsed_s": data.get("elapsed_s")}


def network_map(sweeps: Iterable[tuple[str, Data | None]],
                arps: Iterable[tuple[str, Data | None]] | None = None) -> dict[str, Any]:
    """The network map (see the module doc) from ``(host, sweep data)`` and ``(host,
    arpscan data)`` pairs; a host may come more than once (a playbook that sweeps
    twice). ``None`` data is a run that failed: the host only shows in ``vantages``."""
    table: dict[str, dict[str, Any]] = {}
    vantages: dict[str, dict[str, Any]] = {}
    for host, data in sweeps:
        if data is None:
            vantages.setdefault(host, {"swept": False})
            continue
        _add_sweep(table, host, data)
        vantages[host] = _swept(data)
    for host, data in arps or ():
        view = vantages.setdefault(host, {"swept": False})
        view["arp"] = data is not None or view.get("arp", False)
        if data is not None:
            _add_arp(table, host, data)
            view["arp_method"] = data.get("method")
            view["not_on_link"] = len(data.get("not_on_link", []))
    addresses = [_finish(table[ip]) for ip in sorted(table, key=ipaddress.ip_address)]
    summary = {state: sum(1 for a in addresses if a["state"] == state) for state in STATES}
    summary["addresses"] = len(addresses)
    summary["with_mac"] = sum(1 for a in addresses if a["macs"])
    summary["mac_conflicts"] = sum(1 for a in addresses if len(a["macs"]) > 1)
    return {"addresses": addresses, "vantages": vantages, "summary": summary}


def merge(sweeps: Mapping[str, Data | None],
          arps: Mapping[str, Data | None] | None = None) -> dict[str, Any]:
    """:func:`network_map` of ``{host: sweep data}`` and ``{host: arpscan data}``."""
    return network_map(sweeps.items(), arps.items() if arps is not None else None)


def host_data(result: HostResult | None) -> dict[str, Any] | None:
    """A program's ``data`` of one host; None unless the host ended ok or changed."""
    if result is None or result.status not in ("ok", "changed"):
        return None
    return result.data_json


def combine(sweep_run: RunResult, arp_run: RunResult | None) -> RunResult:
    """One result per host: the sweep's, with the arpscan data under ``arp`` and the
    worse of the two statuses; the run's time and interruption cover both phases."""
    if arp_run is None:
        return sweep_run
    sweep_run.elapsed += arp_run.elapsed
    sweep_run.interrupted = sweep_run.interrupted or arp_run.interrupted
    for name, result in sweep_run.hosts.items():
        arp = arp_run.hosts.get(name)
        result.extra["arp"] = host_data(arp)
        if arp is not None and arp.failed and not result.failed:
            result.status = arp.status
            result.reason = f"arpscan: {arp.reason}"
    return sweep_run


def check_targets(targets: str) -> None:
    """Reject a bad target list before connecting anywhere (OptionError, exit 5)."""
    from fleetops.errors import OptionError
    from ops._targets import TargetError, expand, split_items

    try:
        expand(split_items([targets]), auto_networks=lambda: [])
    except TargetError as exc:
        if "no address" not in str(exc):
            raise OptionError(f"--targets: {exc}") from None


def targets_args(host: Any, targets: str) -> list[str]:
    """``--targets`` for one host: the option, or with the default ``auto`` the host's
    ``scan_targets`` inventory variable when it has one."""
    if targets == "auto" and getattr(host, "vars", {}).get("scan_targets"):
        return ["--targets", str(host.vars["scan_targets"])]
    return ["--targets", targets]


@dataclass
class ScanReport:
    """One fleet scan: ``run`` has a result per vantage host (the sweep's, the arpscan
    data under ``arp``, see :func:`combine`), ``network`` the map of the module doc."""

    run: RunResult
    network: dict[str, Any]


def scan(hosts: list[Any], targets: str, backend: str, arp: bool, options: Any,
         fleet_program: Callable[..., RunResult] | None = None) -> ScanReport:
    """Sweep ``targets`` from every host (then arpscan them with ``arp``; not after a
    Ctrl-C) and merge what they saw. ``options``: RunOptions or an open Fleet."""
    if fleet_program is None:
        from fleetops.ship.run import fleet_program
    sweep_run = fleet_program(hosts, "sweep",
                              lambda h: [*targets_args(h, targets), "--backend", backend],
                              options)
    arp_run = None
    if arp and not sweep_run.interrupted:  # Ctrl-C stops the scan, not just one phase
        arp_run = fleet_program(hosts, "arpscan", lambda h: targets_args(h, targets), options)
    network = merge({n: host_data(r) for n, r in sweep_run.hosts.items()},
                    {n: host_data(r) for n, r in arp_run.hosts.items()} if arp_run else None)
    return ScanReport(combine(sweep_run, arp_run), network)


def _seen_text(entry: Mapping[str, Any]) -> str:
    return " ".join(f"{s['host']}({s['rtt_ms']:.2f}ms)" if s["rtt_ms"] is not None
                    else s["host"] for s in entry["seen_by"])


def _mac_text(entry: Mapping[str, Any]) -> str:
    if entry["mac"]:
        return entry["mac"]
    return " ".join(f"{m['mac']}!" for m in entry["macs"])  # ! marks a conflict


def render_table(network: Mapping[str, Any], show_all: bool = False) -> str:
    """Aligned text: every address with a reply or a MAC (``show_all``: every address)."""
    rows = [("ADDRESS", "STATE", "MAC", "SEEN BY")]
    for entry in network["addresses"]:
        if show_all or entry["state"] != "no-reply":
            rows.append((entry["ip"], entry["state"], _mac_text(entry) or "-",
                         _seen_text(entry) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip()
             for r in rows]
    s = network["summary"]
    lines.append(f"{s['addresses']} addresses: {s['answering']} answering, "
                 f"{s['arp-only']} ARP only, {s['no-reply']} no reply"
                 + (f", {s['mac_conflicts']} MAC conflicts" if s["mac_conflicts"] else ""))
    return "\n".join(lines) + "\n"


def render_csv(network: Mapping[str, Any]) -> str:
    """One row per address: ip,state,mac,seen_by,best_rtt_ms,no_reply_from."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["ip", "state", "mac", "seen_by", "best_rtt_ms", "no_reply_from"])
    for entry in network["addresses"]:
        best = entry["seen_by"][0]["rtt_ms"] if entry["seen_by"] else None
        writer.writerow([entry["ip"], entry["state"], _mac_text(entry),
                         " ".join(s["host"] for s in entry["seen_by"]),
                         "" if best is None else best, " ".join(entry["no_reply_from"])])
    return out.getvalue()


def render(network: Mapping[str, Any], fmt: str = "table") -> str:
    if fmt == "table":
        return render_table(network)
    if fmt == "csv":
        return render_csv(network)
    if fmt == "json":
        return json.dumps(network, indent=2, allow_nan=False) + "\n"
    raise ValueError(f"unknown format {fmt!r} (table, json, csv)")
