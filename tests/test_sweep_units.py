"""Sweep building blocks without a network: targets, packets, scheduler, pools, errors."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ops import _arp, _icmp
from ops._fast import Config, RttEstimator, Scheduler
from ops._pools import sweep_pool
from ops._targets import (
    HARD_CAP,
    TargetError,
    connected_networks,
    expand,
    onlink_route,
    read_routes,
    split_items,
)

REPO = Path(__file__).resolve().parents[1]
# refusals happen before any socket is opened; as root, run them in an empty network
# namespace anyway, so even a regression could not probe a real address
ISOLATE = ["unshare", "--net"] if os.geteuid() == 0 and shutil.which("unshare") else []


def ips(*items: str, **kwargs) -> list[str]:
    return expand(split_items(list(items)), **kwargs)


# ---------------------------------------------------------------- targets

def test_cidr_skips_network_and_broadcast_like_fping():
    got = ips("192.0.2.0/29")
    assert got == [f"192.0.2.{n}" for n in range(1, 7)]


def test_slash_31_and_32_keep_every_address():
    assert ips("192.0.2.4/31") == ["192.0.2.4", "192.0.2.5"]
    assert ips("192.0.2.9/32") == ["192.0.2.9"]


def test_ranges_lists_dedupe_and_numeric_order():
    got = ips("10.0.0.10-12, 10.0.0.2", "10.0.0.254-10.0.1.1 10.0.0.11")
    assert got == ["10.0.0.2", "10.0.0.10", "10.0.0.11", "10.0.0.12",
                   "10.0.0.254", "10.0.0.255", "10.0.1.0", "10.0.1.1"]


@pytest.mark.parametrize("text, message", [
    ("10.0.0.5/24", "10.0.0.5/24 has host bits set (did you mean 10.0.0.0/24?"),
    ("10.0.0.0/33", "is not a valid network"),
    ("10.0.0.300", "is not an IPv4 address"),
    ("10.0.0.9-3", "range end is below its start"),
    ("10.0.0.9-300", "is not an octet"),
    ("2001:db8::/64", "only IPv4"),
    ("10.0.0.0/8", "16777214 addresses exceed the cap of 65536"),
])
def test_bad_targets_are_one_line_errors(text, message):
    with pytest.raises(TargetError) as info:
        ips(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_lenient_accepts_host_bits_and_force_lifts_the_cap():
    assert ips("10.0.0.5/30", lenient=True) == ["10.0.0.5", "10.0.0.6"]
    assert len(ips("10.0.0.0/15", force=True)) == (1 << 17) - 2
    with pytest.raises(TargetError, match=f"cap of {HARD_CAP}"):
        ips("10.0.0.0/8", force=True)
    with pytest.raises(TargetError, match="cap of 10"):
        ips("10.0.0.0/28", cap=10)


ROUTES = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
tst0\t00000000\t010011AC\t0003\t0\t0\t0\t00000000\t0\t0\t0
tst0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
tst1\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
tst1\t0009000A\t0502000A\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0
lo\t0000007F\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0
"""


def test_routes_give_connected_networks_and_on_link_lookups(tmp_path):
    path = tmp_path / "route"
    path.write_text(ROUTES)
    routes = read_routes(str(path))
    nets = [str(n) for n in connected_networks(routes)]
    # 172.17/16 is capped at a /22 (tst0 does not exist: no address, so the first /22),
    # the gateway routes and loopback are left out
    assert nets == ["172.17.0.0/22", "10.0.2.0/24"]
    assert onlink_route("10.0.2.7", routes) == ("tst1", ipaddress.ip_network("10.0.2.0/24"))
    assert onlink_route("10.0.9.7", routes) is None  # behind 10.0.2.5
    assert onlink_route("8.8.8.8", routes) is None  # default route: a gateway
    assert onlink_route("127.0.0.1", routes) is None


def test_auto_expands_through_the_given_networks():
    nets = [ipaddress.ip_network("192.0.2.0/30")]
    assert expand(["auto", "192.0.2.9"], auto_networks=lambda: nets) == [
        "192.0.2.1", "192.0.2.2", "192.0.2.9"]


# ---------------------------------------------------------------- packets

def test_echo_request_checksum_and_reply_parsing():
    packet = _icmp.echo_request(0x1234, 7, b"payload!")
    assert _icmp.checksum(packet) == 0
    reply = bytes([0, 0]) + packet[2:]
    assert _icmp.parse_echo_reply(reply, has_ip_header=False) == (0x1234, 7, b"payload!")
    with_ip = bytes([0x45]) + bytes(19) + reply
    assert _icmp.parse_echo_reply(with_ip, has_ip_header=True) == (0x1234, 7, b"payload!")
    assert _icmp.parse_echo_reply(packet, has_ip_header=False) is None  # a request


def test_arp_frames_round_trip_and_cache_keeps_complete_entries(tmp_path):
    mac = bytes.fromhex("020000000001")
    frame = _arp.request_frame(mac, "192.0.2.1", "192.0.2.7")
    assert len(frame) == 60 and frame[:6] == b"\xff" * 6
    assert _arp.parse_reply(frame) is None  # a request, not a reply
    reply = bytearray(frame)
    reply[20:22] = b"\x00\x02"
    reply[22:28] = bytes.fromhex("0a0b0c0d0e0f")
    reply[28:32] = bytes([192, 0, 2, 7])
    assert _arp.parse_reply(bytes(reply)) == ("192.0.2.7", bytes.fromhex("0a0b0c0d0e0f"))
    cache = tmp_path / "arp"
    cache.write_text(
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "192.0.2.7        0x1         0x2         0A:0B:0C:0D:0E:0F     *        eth1\n"
        "192.0.2.8        0x1         0x0         00:00:00:00:00:00     *        eth1\n"
        "192.0.2.9        0x1         0x6         0a:0b:0c:0d:0e:10     *        eth1\n")
    assert _arp.read_neigh_cache(str(cache)) == {
        "192.0.2.7": ("0a:0b:0c:0d:0e:0f", "eth1"), "192.0.2.9": ("0a:0b:0c:0d:0e:10", "eth1")}


# ---------------------------------------------------------------- scheduler

class FakeTransport:
    """Answers target i on attempt ``answer_on[i]`` (never when missing), instantly."""

    def __init__(self, answer_on: dict[int, int]):
        self.answer_on = answer_on
        self.sends: list[tuple[int, int]] = []
        self.ready: list[tuple[int, int, float, None]] = []
        self.closed = False

    def room(self):
        return 1000

    def slack(self, attempt):
        return 0.0

    def send(self, idx, attempt):
        self.sends.append((idx, attempt))
        if self.answer_on.get(idx) == attempt:
            self.ready.append((idx, attempt, 0.5, None))

    def cancel(self, idx, attempt):
        pass

    def wait(self, timeout):
        if not self.ready:
            time.sleep(max(0.0, min(timeout, 0.05)))
        found, self.ready = self.ready, []
        return found

    def close(self):
        self.closed = True


def test_scheduler_retries_only_the_silent_ones_with_backoff():
    transport = FakeTransport({0: 0, 1: 1, 2: 2})
    cfg = Config("fake", timeout=0.05, retries=2, backoff=2.0, rate=10000, min_timeout=0.05)
    started = time.monotonic()
    answered, errors = Scheduler(transport, 4, cfg).run()
    elapsed = time.monotonic() - started
    assert sorted(answered) == [0, 1, 2] and errors == {}
    assert [s for s in transport.sends if s[0] == 0] == [(0, 0)]
    assert [s for s in transport.sends if s[0] == 3] == [(3, 0), (3, 1), (3, 2)]
    # target 3 waits 0.05 + 0.1 + 0.2 s (backoff 2) before it is given up
    assert 0.3 <= elapsed < 1.5
    assert transport.closed


def test_scheduler_stops_at_the_deadline():
    transport = FakeTransport({})
    cfg = Config("fake", timeout=5, retries=3, rate=10000,
                 deadline=time.monotonic() + 0.2)
    started = time.monotonic()
    answered, _ = Scheduler(transport, 10, cfg).run()
    assert answered == {} and time.monotonic() - started < 0.5


def test_rtt_estimator_clamps_between_min_and_max():
    est = RttEstimator()
    assert est.timeout(0.1, 0.5) == 0.5  # no sample yet: the maximum
    est.add(0.0001)
    assert est.timeout(0.1, 0.5) == 0.1
    for _ in range(5):
        est.add(2.0)
    assert est.timeout(0.1, 0.5) == 0.5


# ---------------------------------------------------------------- thread pool

def test_thread_pool_survives_raising_workers_and_always_shuts_down():
    targets = [f"192.0.2.{n}" for n in range(1, 41)]

    def probe(ip, cfg):  # the test hook: every third target's probe raises
        number = int(ip.rsplit(".", 1)[1])
        if number % 3 == 0:
            raise RuntimeError(f"boom {ip}")
        return (1.0, None) if number % 2 else None

    box: dict = {}
    runner = threading.Thread(target=lambda: box.update(
        result=sweep_pool(targets, Config("fake", timeout=0.1), workers=4, probe=probe)))
    runner.start()
    runner.join(10)
    assert not runner.is_alive(), "the pool hung on a raising worker"
    answered, errors = box["result"]
    raised = {i for i, ip in enumerate(targets) if int(ip.rsplit(".", 1)[1]) % 3 == 0}
    assert set(errors) == raised
    assert all(errors[i] == f"RuntimeError: boom {targets[i]}" for i in raised)
    assert set(answered) == {i for i, ip in enumerate(targets)
                             if int(ip.rsplit(".", 1)[1]) % 2 and i not in raised}
    assert not [t for t in threading.enumerate() if t.name.startswith("sweep-")]


def test_thread_pool_with_every_worker_raising_still_returns():
    def probe(ip, cfg):
        raise ValueError("always")

    answered, errors = sweep_pool([f"192.0.2.{n}" for n in range(1, 11)],
                                  Config("fake"), workers=3, probe=probe)
    assert answered == {} and len(errors) == 10


# ---------------------------------------------------------------- program errors

@pytest.mark.parametrize("args, message", [
    (["10.0.0.5/24"], "bad targets: 10.0.0.5/24 has host bits set"),
    (["10.0.0.0/8"], "bad targets: 16777214 addresses exceed the cap of 65536"),
    (["--targets", "10.0.0.1,nonsense"], "bad targets: 'nonsense' is not an IPv4 address"),
    ([], "bad targets: no targets given"),
    (["10.0.0.1", "--timeout", "0"], "--timeout must be in (0, 60]"),
    (["10.0.0.1", "--backend", "icmp"], "argument --backend: invalid choice"),
])
def test_sweep_refuses_bad_input_with_one_json_line(args, message):
    done = subprocess.run([*ISOLATE, sys.executable, "-m", "ops", "sweep", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["ok"] is False and message in doc["error"] and "\n" not in doc["error"]


def test_arpscan_refuses_oversized_ranges_the_same_way():
    done = subprocess.run([*ISOLATE, sys.executable, "-m", "ops", "arpscan", "10.0.0.0/14"],
                          cwd=REPO,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2
    assert "exceed the cap of 65536" in json.loads(done.stdout)["error"]
