"""The sweep engine: send every probe at a bounded rate, collect replies, retry the
silent ones with backoff; one event loop, no threads.

A transport (``IcmpTransport``, ``TcpTransport``, ``PingTransport``) sends probe
``(idx, attempt)``, reports replies from ``wait(timeout)`` as
``(idx, attempt, rtt_ms, extra)`` and says how many more probes it can have in
flight (``room``). The :class:`Scheduler` owns time: attempt ``a`` of a target
expires ``wait * backoff**a`` seconds after it was sent, where ``wait`` comes from
the replies seen so far (:class:`RttEstimator`, between ``min_timeout`` and
``timeout``); a target that is still silent then is sent again until ``retries``
is used up (a late ICMP or ARP reply still counts). The loop always ends: when
every target is answered or given up, or at the deadline (``--deadline``, or an
upper bound computed from the targets, rate, timeouts and retries).
"""
import collections
import math
import threading
import time

from ops._icmp import IcmpTransport
from ops._probes import PingTransport, TcpTransport

MAX_BURST_S = 0.005  # how far the sender may catch up after a late wake-up
SENDS_PER_TURN = 256


class Config(object):
    """Probe settings shared by every mode (picklable, for the process pool)."""

    def __init__(self, backend, timeout=0.5, retries=1, backoff=1.5, rate=2000.0,
                 deadline=None, ports=(22, 80), min_timeout=0.1):
        self.backend = backend
        self.timeout = float(timeout)
        self.min_timeout = min(float(min_timeout), self.timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.rate = float(rate)
        self.deadline = deadline  # absolute time.monotonic() value, or None
        self.ports = tuple(ports)
        self.estimator = None  # an RttEstimator shared by the probes of one sweep

    def derive(self, **changes):
        copy = Config(self.backend, self.timeout, self.retries, self.backoff, self.rate,
                      self.deadline, self.ports, self.min_timeout)
        for name, value in changes.items():
            setattr(copy, name, value)
        return copy

    def __getstate__(self):
        state = dict(self.__dict__)
        state["estimator"] = None  # each process keeps its own
        return state


class RttEstimator(object):
    """Smoothed RTT and variation (RFC 6298 style) from the replies seen so far.

    The wait for a silent target is ``srtt + 4 * rttvar``, clamped between the
    configured minimum and maximum timeouts; before the first reply it is the
    maximum. On a fast network the silent targets thus cost a fraction of
    ``--timeout``; ``--min-timeout`` equal to ``--timeout`` turns this off.
    """

    def __init__(self):
        self.srtt = None
        self.rttvar = 0.0
        self.lock = threading.Lock()

    def add(self, rtt_s):
        with self.lock:
            if self.srtt is None:
                self.srtt, self.rttvar = rtt_s, rtt_s / 2.0
            else:
                self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt_s)
                self.srtt = 0.875 * self.srtt + 0.125 * rtt_s

    def timeout(self, low, high):
        if self.srtt is None:
            return high
        return max(low, min(high, self.srtt + 4.0 * self.rttvar))


def make_transport(cfg, targets):
    if cfg.backend in ("dgram", "raw"):
        return IcmpTransport(cfg.backend, targets)
    if cfg.backend == "tcp":
        return TcpTransport(targets, cfg.ports)
    if cfg.backend == "ping":
        return PingTransport(targets, cfg.timeout, cfg.backoff)
    raise ValueError("unknown backend %r" % cfg.backend)


class Scheduler(object):
    """Runs one sweep of ``count`` targets over ``transport``.

    In-flight probes wait in one FIFO per attempt number: within an attempt every
    probe has the same window, so the oldest one always expires first, even when
    the RTT estimate (and with it the window) changes mid-sweep.
    """

    def __init__(self, transport, count, cfg):
        self.transport = transport
        self.count = count
        self.cfg = cfg
        self.rtt = cfg.estimator or RttEstimator()
        self.answered = {}  # idx -> (rtt_ms, extra)
        self.errors = {}  # idx -> last one-line send error
        self.pending = set(range(count))
        self.queue = collections.deque((idx, 0) for idx in range(count))
        self.flight = [collections.deque() for _ in range(cfg.retries + 1)]
        self.next_slot = 0.0

    def _window(self, attempt):
        base = self.rtt.timeout(self.cfg.min_timeout, self.cfg.timeout)
        return base * (self.cfg.backoff ** attempt) + self.transport.slack(attempt)

    def bound(self, start):
        """The latest the loop may run: the deadline, else a generous upper bound."""
        cfg = self.cfg
        per_target = sum(cfg.timeout * cfg.backoff ** a + self.transport.slack(a)
                         for a in range(cfg.retries + 1))
        batches = math.ceil(self.count / float(max(1, self.transport.room())))
        sending = self.count * (cfg.retries + 1) / cfg.rate
        end = start + sending + batches * per_target + 2.0
        return end if cfg.deadline is None else min(end, cfg.deadline)

    def run(self):
        start = time.monotonic()
        end = self.bound(start)
        self.next_slot = start
        interval = 1.0 / self.cfg.rate
        try:
            while self.pending:
                now = time.monotonic()
                if now >= end:
                    break
                self._send_due(now, interval)
                self._collect(self._wake(end))
                self._expire(time.monotonic())
        finally:
            self.transport.close()
        return self.answered, self.errors

    def _send_due(self, now, interval):
        sent = 0
        while (self.queue and self.next_slot <= now + min(interval, 0.001)
               and sent < SENDS_PER_TURN and self.transport.room() > 0):
            idx, attempt = self.queue.popleft()
            if idx not in self.pending:
                continue
            error = self.transport.send(idx, attempt)
            if error:
                self.errors[idx] = error
            sent += 1
            self.next_slot = max(self.next_slot, now - MAX_BURST_S) + interval
            self.flight[attempt].append((now, idx))

    def _wake(self, end):
        wake = end
        for attempt, fifo in enumerate(self.flight):
            if fifo:
                wake = min(wake, fifo[0][0] + self._window(attempt))
        if self.queue and self.transport.room() > 0:
            wake = min(wake, self.next_slot)
        return wake - time.monotonic()

    def _collect(self, timeout):
        for idx, _attempt, rtt, extra in self.transport.wait(timeout):
            if idx not in self.answered:
                self.answered[idx] = (round(rtt, 3), extra)
                self.errors.pop(idx, None)
                self.rtt.add(rtt / 1000.0)
            self.pending.discard(idx)

    def _expire(self, now):
        for attempt, fifo in enumerate(self.flight):
            window = self._window(attempt)
            while fifo and (fifo[0][0] + window <= now or fifo[0][1] not in self.pending):
                _sent, idx = fifo.popleft()
                self.transport.cancel(idx, attempt)
                if idx not in self.pending:
                    continue
                if attempt < self.cfg.retries:
                    self.queue.append((idx, attempt + 1))
                else:
                    self.pending.discard(idx)


def sweep_fast(targets, cfg):
    """All of ``targets`` through one transport: (answered, errors) keyed by index."""
    if not targets:
        return {}, {}
    return Scheduler(make_transport(cfg, targets), len(targets), cfg).run()


def probe_one(ip, cfg):
    """One target, blocking: (rtt_ms, extra) or None; raises on a broken backend."""
    answered, errors = sweep_fast([ip], cfg)
    if 0 in answered:
        return answered[0]
    if 0 in errors:
        raise ProbeFailed(errors[0])
    return None


class ProbeFailed(Exception):
    """A probe that could not even be sent (the message is one line)."""
