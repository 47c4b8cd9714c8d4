"""``statvfs`` many mounts without ever hanging on one (a dead NFS server, say).

Mounts that cannot wait on anything but memory (local block and memory filesystems
reached through such filesystems only: ``ops._mounts.can_hang`` says which) are
stat'ed right here, in order: no fork, no pipe, no ``select`` import. For the others
one forked child stats the mounts in order and streams one record per mount through
a pipe (4-byte length + marshal: no json/re import on the host's hot path). The
parent waits at most ``timeout`` seconds for each line; past
that it SIGKILLs the child (which may stay stuck in D state: it is abandoned, never
waited for), records the mount as timed out and forks a fresh child for the rest.
The child's stdin/stdout/stderr point at /dev/null, so an abandoned child never
holds an SSH session's pipes open.
"""
import _signal  # signal without its enum wrappers: start-up time matters here
import marshal
import os
import time

_ABANDONED = []


def default_stat(path):
    """The statvfs fields df uses, plus the device number (to spot bind mounts).

    ``dev`` is None when ``stat()`` is refused although ``statvfs()`` worked (root on
    another user's FUSE mount): the figures stand, the mount is just never deduplicated."""
    st = os.statvfs(path)
    try:
        dev = os.stat(path).st_dev
    except (PermissionError, OSError):
        dev = None
    return {
        "f_bsize": st.f_bsize, "f_frsize": st.f_frsize, "f_blocks": st.f_blocks,
        "f_bfree": st.f_bfree, "f_bavail": st.f_bavail, "f_files": st.f_files,
        "f_ffree": st.f_ffree, "dev": dev,
    }


STAT = default_stat  # test hook: replace in-process; the forked child inherits it


def stat_mounts(paths, timeout, stat=None, in_process=None):
    """One result per path: the :func:`default_stat` dict, ``{"hidden": True}``,
    ``{"denied": True}`` or ``{"error": reason}``.

    ``in_process`` (a sequence of booleans, one per path; default all False) marks the
    paths whose statvfs cannot hang: those are stat'ed in this process, the others in
    an abandonable child with the per-mount ``timeout`` (seconds)."""
    stat = stat or STAT
    results = [None] * len(paths)
    forked = []
    for index, path in enumerate(paths):
        if in_process and in_process[index]:
            results[index] = _stat_one(stat, path)
        else:
            forked.append(index)
    if forked:
        chosen, others = [paths[i] for i in forked], [None] * len(forked)
        start = 0
        while start < len(chosen):
            start = _run_worker(chosen, start, timeout, stat, others)
        for index, record in zip(forked, others):
            results[index] = record
        _reap_abandoned()
    return results


def _stat_one(stat, path):
    """``stat(path)``, its expected errors turned into records (as df treats them)."""
    try:
        return stat(path)
    except FileNotFoundError:
        return {"hidden": True}
    except PermissionError:
        return {"denied": True}  # df skips EACCES mounts silently when listing all
    except OSError as exc:
        return {"error": "statvfs failed: %s" % (exc.strerror or exc)}


def _run_worker(paths, start, timeout, stat, results):
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(rfd)
        _child(paths, start, stat, wfd)
    os.close(wfd)
    try:
        return _collect(pid, rfd, paths, start, timeout, results)
    finally:
        os.close(rfd)


def _child(paths, start, stat, wfd):  # pragma: no cover - runs in the child
    code = 1
    try:
        _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        for index in range(start, len(paths)):
            body = marshal.dumps((index, _stat_one(stat, paths[index])), 4)
            _write_all(wfd, len(body).to_bytes(4, "big") + body)
        code = 0
    finally:
        os._exit(code)


def _collect(pid, rfd, paths, start, timeout, results):
    """Read results until all are in (returns len) or one hangs/dies (returns next index)."""
    import select  # an extension module (a dlopen): only when some mount may hang

    buffer = b""
    index = start
    deadline = time.monotonic() + timeout
    while True:
        while len(buffer) >= 4 and len(buffer) >= 4 + int.from_bytes(buffer[:4], "big"):
            size = int.from_bytes(buffer[:4], "big")
            done, record = marshal.loads(buffer[4:4 + size])
            buffer = buffer[4 + size:]
            results[done] = record
            index = done + 1
            deadline = time.monotonic() + timeout
        if index >= len(paths):
            os.waitpid(pid, 0)
            return index
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _abandon(pid)
            results[index] = {"error": "statvfs timed out after %gs" % timeout}
            return index + 1
        ready, _, _ = select.select([rfd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(rfd, 65536)
        if not chunk:
            os.waitpid(pid, 0)
            results[index] = {"error": "statvfs worker died"}
            return index + 1
        buffer += chunk


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]


def _abandon(pid):
    try:
        os.kill(pid, _signal.SIGKILL)
    except OSError:
        pass
    _ABANDONED.append(pid)
    _reap_abandoned()


def _reap_abandoned():
    for pid in list(_ABANDONED):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _ABANDONED.remove(pid)
