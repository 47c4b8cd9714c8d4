"""Build the one-file remote payload: a reproducible zipapp of ``ops/``.

The archive holds :data:`BUNDLE`, a top-level ``__main__.py`` and every ``ops/*.py``;
entries are dated 1980-01-01 and mode 0644, the sources sorted and deflated, so the
same sources always give the same bytes (and name: ``fleetops-<16 hex of sha256>.pyz``).
Run it with ``python3 fleetops-....pyz <program> [args]``.

The first entry, :data:`BUNDLE` (stored, not deflated, at a fixed place), is the
bytecode for hosts running this control machine's Python version: its bytecode magic,
then a marshalled ``{module name: zlib(marshal(code))}`` of every ``ops`` module
(code compiled from the source alone: the bytes depend only on it). Such a host
imports ``ops`` straight from the archive bytes (``FINDER``: one unmarshal per module
used; no zipimport directory scan, no reopening the archive per module), both under
the shipping loader (``fleetops.ship.run``, which already holds the verified bytes) and
as ``python3 app.pyz``; any other python compiles the sources through zipimport.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import importlib.util
import io
import marshal
import os
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

OPS_DIR = Path(__file__).resolve().parents[2] / "ops"
#: Name of the archive's first entry, the bytecode bundle (see the module docstring).
BUNDLE = "fleetops-bundle.marshal"
# ``fleetops_bundle(data, path)``: import ``ops`` from the bundle in the archive bytes
# ``data`` (the file ``path``) when its magic is this python's; False otherwise (then
# zipimport does, from ``path`` on sys.path). Python >= 3.6 syntax, stdlib only. One
# source for both users: the archive's ``__main__.py`` (``python3 app.pyz``) and the
# shipping loader (``fleetops.ship.run``), which already holds the verified bytes.
FINDER = r'''
def fleetops_bundle(data, path):
    import sys, marshal, zlib
    name = b"@BUNDLE@"
    ext = sys.modules.get("_frozen_importlib_external")
    at = 30 + int.from_bytes(data[26:28], "little") + int.from_bytes(data[28:30], "little")
    end = at + int.from_bytes(data[18:22], "little")
    if (data[:4], data[8:10], data[30:30 + len(name)]) != (b"PK\3\4", b"\0\0", name) \
            or data[at:at + 4] != getattr(ext, "MAGIC_NUMBER", None) or end > len(data):
        return False
    codes = marshal.loads(memoryview(data)[at + 4:end])
    spec = type(sys.__spec__)

    class FleetopsBundle(object):
        @staticmethod
        def find_spec(fullname, where=None, target=None):
            if fullname not in codes:
                return None
            package = fullname == "ops"
            found = spec(fullname, FleetopsBundle, is_package=package, origin=path + "/" +
                         ("ops/__init__.py" if package else fullname.replace(".", "/") + ".py"))
            found.has_location = True
            return found

        @staticmethod
        def create_module(found):
            return None

        @staticmethod
        def exec_module(module):
            code = marshal.loads(zlib.decompress(codes[module.__spec__.name]))
            exec(code, module.__dict__)

        @staticmethod
        def get_source(fullname):
            import zipimport
            return zipimport.zipimporter(path).get_source(fullname)

    sys.meta_path.insert(0, FleetopsBundle)
    return True
'''.replace("@BUNDLE@", BUNDLE)
MAIN = (FINDER + """
import sys
try:
    with open(__loader__.archive, "rb") as _archive:
        fleetops_bundle(_archive.read(), __loader__.archive)
except (AttributeError, OSError, ValueError, EOFError, TypeError):
    pass
from ops.__main__ import main, finish
finish(main())
""").encode()
_EPOCH = (1980, 1, 1, 0, 0, 0)
_MODE = 0o100644 << 16
_cache: dict[str, tuple[bytes, Path | None]] = {}
_tmpdir: str | None = None


@dataclass(frozen=True)
class Zipapp:
    path: Path
    sha256: str
    size: int
    data: bytes = field(repr=False)

    @property
    def name(self) -> str:
        return zipapp_name(self.sha256)

    @functools.cached_property
    def blake2b(self) -> str:
        """BLAKE2b-256 of the archive (hex): what hosts verify a cached copy against before
        running it (their built-in blake2b hashes 240 KB in 0.27 ms, sha256 in 0.75 ms)."""
        return hashlib.blake2b(self.data, digest_size=32).hexdigest()


def zipapp_name(sha256: str) -> str:
    return f"fleetops-{sha256[:16]}.pyz"


def _sources(source: Path) -> list[Path]:
    return sorted(p for p in source.glob("*.py") if p.is_file())


def _inputs_key(sources: list[tuple[str, bytes]]) -> str:
    """Hash of everything the archive is made from (sources, launcher, bytecode version)."""
    digest = hashlib.sha256(importlib.util.MAGIC_NUMBER + MAIN + BUNDLE.encode())
    for name, data in sources:
        digest.update(name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def build_cache_dir() -> Path:
    """Where built archives are kept between runs (compiling the bytecode costs ~60 ms
    of every command otherwise): ``$XDG_CACHE_HOME/fleetops/control``, mode 0700."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "fleetops" / "control"


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = _MODE
    info.create_system = 3
    return info


def _module_name(filename: str) -> str:
    return "ops" if filename == "__init__.py" else f"ops.{filename[:-3]}"


def bundle_bytes(sources: list[tuple[str, bytes]]) -> bytes:
    """:data:`BUNDLE`'s content: ``MAGIC_NUMBER + marshal({module: zlib(marshal(code))})``
    (code compiled as ``ops/NAME.py``, like the ``.pyc`` entries; marshal version 4)."""
    modules = {}
    for name, data in sources:
        code = compile(data, f"ops/{name}", "exec", dont_inherit=True, optimize=0)
        modules[_module_name(name)] = zlib.compress(marshal.dumps(code), 9)
    return bytes(importlib.util.MAGIC_NUMBER) + marshal.dumps(modules, 4)


def _build(sources: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        bundle = _entry(BUNDLE)
        bundle.compress_type = zipfile.ZIP_STORED  # read in place by the loader
        archive.writestr(bundle, bundle_bytes(sources))
        archive.writestr(_entry("__main__.py"), MAIN, compresslevel=9)
        for name, data in sources:
            archive.writestr(_entry(f"ops/{name}"), data, compresslevel=9)
    return buffer.getvalue()


def _cached_build(source: Path) -> tuple[bytes, Path | None]:
    """Archive bytes for ``source`` and the build-cache file holding them (None if the
    cache is unusable): built once per process, and once per source change on disk."""
    files = _sources(source)
    if not any(p.name == "__main__.py" for p in files):
        raise FileNotFoundError(f"{source}: no __main__.py, not an ops directory")
    sources = [(p.name, p.read_bytes()) for p in files]
    key = _inputs_key(sources)
    if key not in _cache:
        _cache[key] = _load_or_build(key, sources)
    return _cache[key]


def _load_or_build(key: str, sources: list[tuple[str, bytes]]) -> tuple[bytes, Path | None]:
    path = build_cache_dir() / f"{key[:32]}.pyz"
    try:
        return path.read_bytes(), path
    except OSError:
        pass
    data = _build(sources)
    try:
        path.parent.parent.parent.mkdir(parents=True, exist_ok=True)
        for directory in (path.parent.parent, path.parent):
            directory.mkdir(mode=0o700, exist_ok=True)
        _write_atomic(path, data)
        _prune(path.parent, keep=8)
    except OSError:
        return data, None
    return data, path


def _prune(directory: Path, keep: int) -> None:
    """Keep the ``keep`` most recently built archives (other checkouts may share the cache)."""
    builds = sorted(directory.glob("*.pyz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in builds[keep:]:
        old.unlink(missing_ok=True)


def build_bytes(source: Path = OPS_DIR) -> bytes:
    """The archive bytes for ``source`` (an ``ops/`` directory)."""
    return _cached_build(Path(source))[0]


def build_zipapp(out_dir: Path | None = None, source: Path = OPS_DIR) -> Zipapp:
    """The zipapp of ``source``, written to ``out_dir`` as ``fleetops-<hash>.pyz``.

    Without ``out_dir`` ``path`` is the build-cache file (or, when the cache cannot be
    written, a file in a private per-process temporary directory removed at exit).
    """
    data, cached = _cached_build(Path(source))
    digest = hashlib.sha256(data).hexdigest()
    if out_dir is None and cached is not None:
        return Zipapp(path=cached, sha256=digest, size=len(data), data=data)
    path = Path(out_dir if out_dir is not None else _private_dir()) / zipapp_name(digest)
    if not (path.is_file() and path.read_bytes() == data):
        _write_atomic(path, data)
    return Zipapp(path=path, sha256=digest, size=len(data), data=data)


def _private_dir() -> str:
    global _tmpdir
    if _tmpdir is None or not os.path.isdir(_tmpdir):
        _tmpdir = tempfile.mkdtemp(prefix="fleetops-zipapp-")
        atexit.register(shutil.rmtree, _tmpdir, True)
    return _tmpdir


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".fleetops-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
