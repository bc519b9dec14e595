"""Atomic file replacement: a reader, or a crash, sees the old file or the new, never a torn one."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(
    path: Path, data: bytes, *, mode: int | None = None, durable: bool = True
) -> None:
    """Write `data` to `path` through a temporary file in the same folder, fsync'd, then renamed.

    Args:
        path: the file to create or replace; its parent folders are created.
        data: the whole new content.
        mode: permission bits for the new file (mkstemp's default is 0600).
        durable: fsync before the rename. Only a cache whose reader takes a torn or empty file
            for an empty cache may pass False: after a power loss it may find one.

    Raises:
        OSError: the folder or file cannot be written; no temporary file is left behind.
    """
    import tempfile  # here: importing this module (every command does) need not load it

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
