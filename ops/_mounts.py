"""Mount table parsing, filtering and ``df -P`` arithmetic (pure: no I/O here).

Everything in this module works on plain values so it can be tested on recorded
``/proc/self/mounts`` samples and fixed statvfs tuples.
"""
# No re/fnmatch/collections at import: they cost milliseconds of start-up on every host
# and run (re pulls in enum); the globs below import fnmatch only when given.


class Mount(tuple):
    """One mount table entry: (device, mountpoint, fstype, options, root).

    ``root`` is the directory of the filesystem mounted there (mountinfo's 4th field):
    ``/`` for a whole filesystem, a subdirectory for a bind mount of it; /proc/self/mounts
    does not say, so it is ``/`` there."""

    __slots__ = ()

    def __new__(cls, device, mountpoint, fstype, options, root="/"):
        return tuple.__new__(cls, (device, mountpoint, fstype, options, root))

    device = property(lambda self: self[0])
    mountpoint = property(lambda self: self[1])
    fstype = property(lambda self: self[2])
    options = property(lambda self: self[3])
    root = property(lambda self: self[4])


# node_exporter's defaults for the filesystem collector: mount points
# ^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)
PSEUDO_ROOTS = ("/dev", "/proc", "/sys")
PSEUDO_PARENTS = ("/run/credentials/", "/var/lib/docker/", "/var/lib/containers/storage/")
# Per-pod and per-container mounts (kubelet volumes and secrets, container rootfs and shm
# of containerd, CRI-O, k3s, OpenShift): excluded as node_exporter is deployed on
# Kubernetes (kube-prometheus: ^/(...|run/k3s/containerd/.+|var/lib/kubelet/pods/.+)),
# unless the program runs with --include-containers.
CONTAINER_PARENTS = (
    "/var/lib/kubelet/pods/", "/var/lib/kubelet/plugins/", "/run/containerd/",
    "/var/run/containerd/", "/var/lib/containerd/", "/run/k3s/containerd/",
    "/var/lib/rancher/k3s/agent/containerd/", "/run/containers/storage/",
    "/var/run/containers/storage/", "/run/crio/", "/var/run/crio/", "/run/docker/",
    "/var/run/docker/", "/var/lib/origin/openshift.local.volumes/",
)
# ... and filesystem types.
PSEUDO_FSTYPES = frozenset((
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
    "devtmpfs", "fusectl", "hugetlbfs", "iso9660", "mqueue", "nsfs", "overlay", "proc",
    "procfs", "pstore", "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "erofs", "sysfs",
    "tracefs",
))
NETWORK_FSTYPES = frozenset((
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "sshfs", "fuse.sshfs", "glusterfs",
    "fuse.glusterfs", "ceph", "fuse.ceph", "cephfs", "9p", "afs", "ncpfs", "lustre", "gpfs",
    "beegfs", "davfs", "fuse.davfs2", "fuse.s3fs", "fuse.rclone", "fuse.gcsfuse", "coda",
))
#: Filesystems whose statvfs the kernel answers from memory (the superblock's counters):
#: no server, daemon or automount behind them, so they are stat'ed without a child.
#: vfat/exfat are not among them (the first statfs may scan the FAT on the device).
LOCAL_FSTYPES = frozenset(("ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "ramfs",
                           "overlay"))
LEVELS = ("ok", "unknown", "warn", "crit")  # ascending severity
_OCTAL = "01234567"


def unescape(field):
    r"""Undo the kernel's octal escapes (``\040`` space, ``\011`` tab, ``\012``, ``\134``)."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        chunk = field[i + 1:i + 4]
        if field[i] == "\\" and len(chunk) == 3 and all(c in _OCTAL for c in chunk):
            out.append(chr(int(chunk, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mounts(text):
    r"""Parse ``/proc/self/mounts`` text into :class:`Mount` tuples (malformed lines skipped).

    Only the kernel's separators count: lines end at ``\n`` and fields are split on a
    single space (the kernel escapes space, tab, newline and backslash in fields as
    ``\ooo``); a form feed, CR, NBSP or U+2028 is part of a path, never a separator."""
    mounts = []
    for line in text.split("\n"):
        fields = line.split(" ")
        if len(fields) < 4 or not all(fields[:4]):
            continue
        device, mountpoint, fstype, options = (unescape(f) for f in fields[:4])
        mounts.append(Mount(device, mountpoint, fstype, options))
    return mounts


def parse_mountinfo(text):
    """Parse ``/proc/self/mountinfo`` (proc(5)): ``ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS
    [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS``, into :class:`Mount` tuples with ``root``."""
    mounts = []
    for line in text.split("\n"):
        fields = line.split(" ")
        try:
            dash = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < dash + 3:
            continue
        root, mountpoint, options = (unescape(f) for f in fields[3:6])
        fstype, device = unescape(fields[dash + 1]), unescape(fields[dash + 2])
        mounts.append(Mount(device, mountpoint, fstype, options, root))
    return mounts


def _under_any(point, parents):
    return any(point.startswith(parent) and len(point) > len(parent) for parent in parents)


def is_container(mount):
    """A per-pod or per-container mount (see :data:`CONTAINER_PARENTS`)."""
    return _under_any(mount.mountpoint, CONTAINER_PARENTS)


def is_pseudo(mount):
    point = mount.mountpoint
    if mount.fstype in PSEUDO_FSTYPES:
        return True
    if any(point == root or point.startswith(root + "/") for root in PSEUDO_ROOTS):
        return True
    return _under_any(point, PSEUDO_PARENTS)


def is_network(mount):
    """Network filesystem by type, or by a ``host:/path`` / ``//host/share`` device."""
    if mount.fstype in NETWORK_FSTYPES:
        return True
    device = mount.device
    return device.startswith("//") or (":" in device and not device.startswith("/"))


def _walk_safe(mount):
    """A filesystem a path lookup can cross without waiting on anything: a local one, or
    a kernel pseudo filesystem other than autofs (which mounts on demand)."""
    fstype = mount.fstype
    if fstype not in LOCAL_FSTYPES and (fstype not in PSEUDO_FSTYPES or fstype == "autofs"):
        return False
    return not is_network(mount)


def unsafe_points(mounts):
    """The mountpoints of ``mounts`` (the whole table) whose filesystem a lookup or a
    statvfs may wait on: network, FUSE, autofs and unknown types."""
    return frozenset(m.mountpoint for m in mounts if not _walk_safe(m))


def can_hang(mount, unsafe):
    """Whether ``statvfs(mount.mountpoint)`` may block: unless the mount is of a
    :data:`LOCAL_FSTYPES` type and no mountpoint on its path (``/``, each parent
    directory, itself) is in ``unsafe`` (see :func:`unsafe_points`: an NFS parent
    revalidates its dentries on lookup, an autofs one mounts)."""
    if mount.fstype not in LOCAL_FSTYPES or is_network(mount):
        return True
    point = mount.mountpoint
    if point in unsafe or "/" in unsafe:
        return True
    at = point.find("/", 1)
    while at > 0:
        if point[:at] in unsafe:
            return True
        at = point.find("/", at + 1)
    return False


def glob_match(path, pattern):
    if path == pattern:
        return True
    if not ("*" in pattern or "?" in pattern or "[" in pattern):
        return False  # a plain path: no need for fnmatch (and re)
    import fnmatch

    return fnmatch.fnmatchcase(path, pattern)


def _matches(path, patterns):
    return any(glob_match(path, pattern) for pattern in patterns)


def select_mounts(mounts, local=False, include=(), exclude=(), skip_fstypes=(),
                  containers=False):
    """Return ``(selected, skipped)``; ``skipped`` holds ``(mount, reason)`` pairs.

    A mountpoint listed twice (over-mounted) keeps its last entry: that is what
    ``statvfs`` sees. Pseudo filesystems are dropped with reason ``"pseudo"``, per-pod
    and per-container mounts with ``"container"`` unless ``containers``.
    """
    last = {}  # insertion-ordered; re-inserting moves an over-mounted point to its last place
    for mount in mounts:
        last.pop(mount.mountpoint, None)
        last[mount.mountpoint] = mount
    selected, skipped = [], []
    for mount in last.values():
        reason = _skip_reason(mount, local, include, exclude, skip_fstypes)
        if reason is None and not containers and is_container(mount):
            reason = "container"
        if reason:
            skipped.append((mount, reason))
        else:
            selected.append(mount)
    return selected, skipped


def _skip_reason(mount, local, include, exclude, skip_fstypes):
    if is_pseudo(mount):
        return "pseudo"
    if mount.fstype in skip_fstypes:
        return "fstype %s skipped" % mount.fstype
    if local and is_network(mount):
        return "network filesystem (--local)"
    if include and not _matches(mount.mountpoint, include):
        return "not included"
    if exclude and _matches(mount.mountpoint, exclude):
        return "excluded"
    return None


def ceil_pct(part, total):
    """``ceil(part * 100 / total)`` in integers, as coreutils df rounds (0 when total is 0)."""
    if total <= 0:
        return 0
    return -(-part * 100 // total)


INVALID_COUNT = 1 << 63  # a counter with its top bit set is a driver's -1, not a figure


def _sane(*counts):
    return all(0 <= count < INVALID_COUNT for count in counts)


def df_numbers(st):
    """``df -P`` figures from a statvfs result (any object with the ``f_*`` attributes).

    Impossible counters give None where df prints ``-``: a free or available count above
    the total, or any count with its top bit set (space and inodes judged separately)."""
    frsize = st.f_frsize or st.f_bsize
    numbers = dict.fromkeys(("size_bytes", "used_bytes", "avail_bytes", "use_pct",
                             "inodes_total", "inodes_used", "inodes_pct"))
    if _sane(st.f_blocks):
        numbers["size_bytes"] = st.f_blocks * frsize
    if _sane(st.f_blocks, st.f_bfree, st.f_bavail) and st.f_bfree <= st.f_blocks \
            and st.f_bavail <= st.f_blocks:
        used_blocks = st.f_blocks - st.f_bfree
        numbers.update(used_bytes=used_blocks * frsize, avail_bytes=st.f_bavail * frsize,
                       use_pct=ceil_pct(used_blocks, used_blocks + st.f_bavail))
    if _sane(st.f_files, st.f_ffree) and st.f_ffree <= st.f_files:
        inodes_used = st.f_files - st.f_ffree
        numbers.update(inodes_total=st.f_files, inodes_used=inodes_used,
                       inodes_pct=ceil_pct(inodes_used, st.f_files) if st.f_files else None)
    return numbers


def validate_pair(warn, crit, what):
    """Raise ValueError unless ``0 < warn <= crit <= 100``."""
    if not 0 < warn <= crit <= 100:
        raise ValueError("%s thresholds need 0 < warn <= crit <= 100, got warn %s crit %s"
                         % (what, warn, crit))
    return warn, crit


def parse_override(text):
    """``/srv/data=70:85`` -> ``("/srv/data", 70, 85)`` (the pattern may be a glob)."""
    pattern, sep, pair = text.rpartition("=")
    warn_text, colon, crit_text = pair.partition(":")
    if not sep or not pattern or not colon:
        raise ValueError("threshold override %r: expected MOUNTPOINT=WARN:CRIT" % text)
    try:
        warn, crit = float(warn_text), float(crit_text)
    except ValueError:
        raise ValueError("threshold override %r: WARN and CRIT must be numbers" % text) from None
    validate_pair(warn, crit, "space (%s)" % pattern)
    return pattern, tidy_number(warn), tidy_number(crit)


def tidy_number(value):
    return int(value) if float(value).is_integer() else value


def space_limits(mountpoint, default, overrides):
    """The (warn, crit) pair for a mountpoint: first matching override, else the default."""
    for pattern, warn, crit in overrides:
        if glob_match(mountpoint, pattern):
            return warn, crit
    return default


def classify(numbers, space, inodes):
    """``(level, over)``: over lists ``space_warn|space_crit|inodes_warn|inodes_crit``."""
    over = []
    for name, pct, (warn, crit) in (("space", numbers.get("use_pct"), space),
                                    ("inodes", numbers.get("inodes_pct"), inodes)):
        if pct is None:
            continue
        if pct >= crit:
            over.append(name + "_crit")
        elif pct >= warn:
            over.append(name + "_warn")
    level = "ok"
    if any(item.endswith("_crit") for item in over):
        level = "crit"
    elif over:
        level = "warn"
    return level, over


def worst(levels):
    """The most severe of ``levels`` (``ok`` < ``unknown`` < ``warn`` < ``crit``)."""
    return max(levels, key=LEVELS.index, default="ok")


def dedup_by_device(records):
    """Keep one record per ``st_dev``: bind mounts count once, chosen as GNU df does.

    ``records`` (in mount-table order) are dicts with ``mountpoint``, optional ``device``,
    ``root`` (mountinfo's root of the mount, ``/`` if unknown), ``network`` and ``dev``
    (None when the stat failed: such records are always kept). A later record with the
    same ``dev`` replaces the kept one when its device is a path and the kept one's is
    not, or when its mountpoint is shorter *and* its root is not deeper (coreutils
    df.c ``filter_mount_list``: a subdirectory bound elsewhere never names the
    filesystem). Two network mounts of different sources are both kept.
    Returns ``(kept, dropped)``.
    """
    best = {}
    extra = []
    for record in records:
        dev = record.get("dev")
        if dev is None:
            continue
        seen = best.get(dev)
        if seen is None:
            best[dev] = record
        elif record.get("network") and seen.get("network") \
                and record.get("device") != seen.get("device"):
            extra.append(record)
        elif _df_prefers(record, seen):
            best[dev] = record
    winners = set(id(r) for r in best.values()) | set(id(r) for r in extra)
    kept, dropped = [], []
    for record in records:
        keep = record.get("dev") is None or id(record) in winners
        (kept if keep else dropped).append(record)
    return kept, dropped


def _df_prefers(record, seen):
    device, seen_device = record.get("device") or "", seen.get("device") or ""
    if "/" in device and "/" not in seen_device:
        return True
    nearer = len(seen["mountpoint"]) > len(record["mountpoint"])
    deeper = len(seen.get("root") or "/") < len(record.get("root") or "/")
    return nearer and not deeper


HUMAN_UNITS = "KMGTPEZYRQ"


def human_size(value):
    """df -h style sizes (powers of 1024, rounded up as GNU df does): ``512B``, ``1.5K``,
    ``20G``, on to ``E``, ``Z``, ``Y``, ``R``, ``Q``. Exact integer arithmetic."""
    if value is None:
        return "-"
    value = int(value)
    if value < 0:
        return "-" + human_size(-value)
    if value < 1024:
        return "%dB" % value
    for power, unit in enumerate(HUMAN_UNITS, 1):
        base = 1024 ** power
        tenths = -(-value * 10 // base)
        if tenths < 100:
            return "%d.%d%s" % (tenths // 10, tenths % 10, unit)
        whole = -(-value // base)
        if whole < 1024 or unit == HUMAN_UNITS[-1]:
            return "%d%s" % (whole, unit)


def shown(text):
    """``text`` for people (tables, mail, saved reports): bytes that were not UTF-8
    (surrogate escapes from ``os.fsdecode``) as ``\\xNN``, control and other unprintable
    characters as Python escapes (``\\n``, ``\\x1b``), so a mount name can neither break
    a row nor reach a terminal raw. The JSON document keeps the exact name instead."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            out.append("\\x%02x" % (code - 0xDC00))
        elif char.isprintable():
            out.append(char)
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(out)
