"""The non-ICMP-socket transports: TCP connect and the ``ping`` binary.

Both keep a bounded number of probes in flight and fit the Scheduler interface
(``room``, ``send``, ``wait``, ``cancel``, ``close``) like :class:`IcmpTransport`.
"""
import errno
import re
import resource
import selectors
import shutil
import socket
import struct
import subprocess
import time

MAX_PING_PROCESSES = 64
MAX_TCP_SOCKETS = 512
ALIVE_ERRNOS = (0, errno.ECONNREFUSED, errno.EISCONN)
_RTT = re.compile(rb"time[=<]([0-9.]+) ?ms")


class TcpTransport(object):
    """Non-blocking connects to every port of a target; open or refused = alive."""

    def __init__(self, targets, ports):
        self.targets = targets
        self.ports = list(ports)
        self.selector = selectors.DefaultSelector()
        self.flight = {}  # (idx, attempt) -> {"socks": [...], "sent": t, "failed": n}
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        limit = MAX_TCP_SOCKETS if soft < 0 else min(MAX_TCP_SOCKETS, max(8, soft - 64))
        self.max_flight = max(1, limit // len(self.ports))

    def room(self):
        return self.max_flight - len(self.flight)

    def slack(self, attempt):
        return 0.0

    def send(self, idx, attempt):
        key = (idx, attempt)
        entry = {"socks": [], "sent": time.monotonic(), "failed": 0, "error": None}
        self.flight[key] = entry
        for port in self.ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.setblocking(False)
            code = sock.connect_ex((self.targets[idx], port))
            if code in (0, errno.EINPROGRESS, errno.ECONNREFUSED):
                entry["socks"].append(sock)
                self.selector.register(sock, selectors.EVENT_WRITE, (key, port))
            else:
                sock.close()
                entry["failed"] += 1
                entry["error"] = "connect: %s" % (errno.errorcode.get(code, code),)
        if entry["failed"] == len(self.ports):
            del self.flight[key]
            return entry["error"]
        return None

    def cancel(self, idx, attempt):
        entry = self.flight.pop((idx, attempt), None)
        for sock in entry["socks"] if entry else ():
            self._close(sock)

    def _close(self, sock):
        try:
            self.selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    def wait(self, timeout):
        found = []
        if not self.flight:
            time.sleep(max(0.0, timeout))
            return found
        for key_obj, _ in self.selector.select(max(0.0, timeout)):
            key, port = key_obj.data
            sock = key_obj.fileobj
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            entry = self.flight.get(key)
            self._close(sock)
            if entry is None:
                continue
            entry["socks"].remove(sock)
            if code in ALIVE_ERRNOS:
                rtt = (time.monotonic() - entry["sent"]) * 1000.0
                found.append((key[0], key[1], rtt, {"port": port,
                                                    "tcp": "open" if code != errno.ECONNREFUSED
                                                    else "refused"}))
                self.cancel(*key)
            elif not entry["socks"]:
                self.flight.pop(key, None)
        return found

    def close(self):
        for key in list(self.flight):
            self.cancel(*key)
        self.selector.close()


_FLOAT_WAIT = {}


def float_wait_supported(binary):
    if binary not in _FLOAT_WAIT:
        _FLOAT_WAIT[binary] = _float_wait_supported(binary)
    return _FLOAT_WAIT[binary]


def _float_wait_supported(binary):
    """iputils >= 20210202 takes fractions of a second for -W; older ones and busybox
    take whole seconds. Asks ``ping -V`` (prints the version, sends nothing)."""
    try:
        done = subprocess.run([binary, "-V"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return False
    match = re.search(rb"iputils[- ]s?(\d{8})", done.stdout)
    return bool(match) and int(match.group(1)) >= 20210202


class PingTransport(object):
    """One ``ping -n -c1 -W <s> <ip>`` process per probe (argv list, no shell)."""

    def __init__(self, targets, timeout, backoff):
        self.targets = targets
        self.timeout = timeout
        self.backoff = backoff
        self.binary = shutil.which("ping") or "ping"
        self.integer_w = not float_wait_supported(self.binary)
        self.selector = selectors.DefaultSelector()
        self.flight = {}  # (idx, attempt) -> (Popen, sent)

    def room(self):
        return MAX_PING_PROCESSES - len(self.flight)

    def slack(self, attempt):
        """Extra time the scheduler grants a probe: process start-up, whole-second -W."""
        seconds = self.timeout * (self.backoff ** attempt)
        return float(self._wait_arg(attempt)) - seconds + 0.3

    def _wait_arg(self, attempt):
        seconds = self.timeout * (self.backoff ** attempt)
        if self.integer_w:
            return str(max(1, int(seconds + 0.999)))
        return "%.3f" % max(0.001, seconds)

    def send(self, idx, attempt):
        argv = [self.binary, "-n", "-c1", "-W", self._wait_arg(attempt), self.targets[idx]]
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
        except OSError as exc:
            return "ping: %s" % (exc.strerror or exc)
        self.flight[(idx, attempt)] = (proc, time.monotonic())
        self.selector.register(proc.stdout, selectors.EVENT_READ, (idx, attempt))
        return None

    def cancel(self, idx, attempt):
        item = self.flight.pop((idx, attempt), None)
        if item is None:
            return
        proc = item[0]
        self.selector.unregister(proc.stdout)
        if proc.poll() is None:
            proc.kill()
        proc.communicate()

    def wait(self, timeout):
        found = []
        if not self.flight:
            time.sleep(max(0.0, timeout))
            return found
        for key_obj, _ in self.selector.select(max(0.0, timeout)):
            key = key_obj.data
            proc, sent = self.flight.pop(key)
            self.selector.unregister(proc.stdout)
            out, _ = proc.communicate()
            match = _RTT.search(out)
            if proc.returncode == 0 and match:
                found.append((key[0], key[1], float(match.group(1)), None))
            elif proc.returncode == 0:
                found.append((key[0], key[1], (time.monotonic() - sent) * 1000.0, None))
        return found

    def close(self):
        for key in list(self.flight):
            self.cancel(*key)
        self.selector.close()
