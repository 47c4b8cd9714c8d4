"""Fleet scan results: merge every vantage host's sweep (and arpscan) into one map.

Pure functions over the per-host ``data`` documents of the ``sweep`` and ``arpscan``
ops programs, so they can be tested with recorded results. The map, per address:

* ``state``: ``answering`` (some vantage got a reply), ``arp-only`` (no vantage got
  a reply but ARP named a MAC: the address exists and drops probes) or
  ``no-reply``;
* ``seen_by``: ``[{"host", "rtt_ms"}]`` of the vantages that got a reply, fastest
  first; ``no_reply_from``: the vantages that probed it and got none;
* ``mac`` (when ARP named exactly one), ``macs`` (every MAC with the vantages that
  saw it: more than one means a conflict, or one private range at two sites).
"""
from __future__ import annotations

import csv
import io
import ipaddress
import json
from collections.abc import Mapping
from typing import Any

STATES = ("answering", "arp-only", "no-reply")


def _entry(table: dict[str, dict[str, Any]], ip: str) -> dict[str, Any]:
    if ip not in table:
        table[ip] = {"ip": ip, "seen_by": [], "no_reply_from": [], "macs": {}}
    return table[ip]


def _add_sweep(table: dict[str, dict[str, Any]], host: str, data: Mapping[str, Any]) -> None:
    for item in data.get("alive", []):
        _entry(table, item["ip"])["seen_by"].append({"host": host, "rtt_ms": item.get("rtt_ms")})
    for ip in data.get("no_reply", []):
        _entry(table, ip)["no_reply_from"].append(host)


def _add_arp(table: dict[str, dict[str, Any]], host: str, data: Mapping[str, Any]) -> None:
    for item in data.get("entries", []):
        _entry(table, item["ip"])["macs"].setdefault(item["mac"].lower(), []).append(host)


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


def merge(sweeps: Mapping[str, Mapping[str, Any] | None],
          arps: Mapping[str, Mapping[str, Any] | None] | None = None) -> dict[str, Any]:
    """The network map from ``{host: sweep data}`` and ``{host: arpscan data}``
    (a host whose run failed maps to None and only shows in ``vantages``)."""
    table: dict[str, dict[str, Any]] = {}
    vantages: dict[str, dict[str, Any]] = {}
    for host, data in sweeps.items():
        if data is None:
            vantages[host] = {"swept": False}
            continue
        _add_sweep(table, host, data)
        vantages[host] = {"swept": True, "backend": data.get("backend"),
                          "mode": data.get("mode"), "targets": data.get("targets", 0),
                          "alive": len(data.get("alive", [])),
                          "elapsed_s": data.get("elapsed_s")}
    for host, data in (arps or {}).items():
        view = vantages.setdefault(host, {"swept": False})
        view["arp"] = data is not None
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
