"""Build the one-file remote payload: a reproducible zipapp of ``ops/``.

The archive holds a top-level ``__main__.py`` plus every ``ops/*.py``; entries are
sorted, dated 1980-01-01, mode 0644 and deflated, so the same sources always give
the same bytes (and name: ``fleetops-<16 hex of sha256>.pyz``).
Run it with ``python3 fleetops-....pyz <program> [args]``.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import io
import marshal
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

OPS_DIR = Path(__file__).resolve().parent.parent / "ops"
MAIN = b"from ops.__main__ import main\nimport sys\nsys.exit(main())\n"
_EPOCH = (1980, 1, 1, 0, 0, 0)
_MODE = 0o100644 << 16
_cache: dict[tuple, bytes] = {}
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


def zipapp_name(sha256: str) -> str:
    return f"fleetops-{sha256[:16]}.pyz"


def _sources(source: Path) -> list[Path]:
    return sorted(p for p in source.glob("*.py") if p.is_file())


def _fingerprint(source: Path, files: list[Path]) -> tuple:
    stats = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return (str(source.resolve()), stats)


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = _MODE
    info.create_system = 3
    return info


def _unchecked_pyc(source: bytes, name: str) -> bytes:
    """Bytecode for hosts running this control machine's Python version (zipimport uses a
    ``.pyc`` beside the ``.py`` when its magic matches, else compiles the source).

    Unchecked hash-based (PEP 552): valid whatever the host's clock or time zone, and
    the bytes depend only on the source, so the archive stays reproducible."""
    code = compile(source, name, "exec", dont_inherit=True, optimize=0)
    return bytes(importlib.util.MAGIC_NUMBER + (1).to_bytes(4, "little")
                 + importlib.util.source_hash(source) + marshal.dumps(code))


def build_bytes(source: Path = OPS_DIR) -> bytes:
    """The archive bytes for ``source`` (an ``ops/`` directory), cached per process."""
    files = _sources(source)
    if not any(p.name == "__main__.py" for p in files):
        raise FileNotFoundError(f"{source}: no __main__.py, not an ops directory")
    key = _fingerprint(source, files)
    if key not in _cache:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(_entry("__main__.py"), MAIN, compresslevel=9)
            for path in files:
                source_bytes = path.read_bytes()
                archive.writestr(_entry(f"ops/{path.name}"), source_bytes, compresslevel=9)
                archive.writestr(_entry(f"ops/{path.stem}.pyc"),
                                 _unchecked_pyc(source_bytes, f"ops/{path.name}"),
                                 compresslevel=9)
        _cache[key] = buffer.getvalue()
    return _cache[key]


def build_zipapp(out_dir: Path | None = None, source: Path = OPS_DIR) -> Zipapp:
    """Build (once per process) and write the zipapp to ``out_dir``.

    Without ``out_dir`` it goes to a private (0700) per-process temporary directory,
    removed at exit, so ``path`` is always a real file.
    """
    data = build_bytes(Path(source))
    digest = hashlib.sha256(data).hexdigest()
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
