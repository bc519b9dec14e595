"""What a command prints, recorded as it goes out: `recording()` passes every write to stdout
and stderr through and keeps it, in order, so that `plan` can keep its output
(`assetsync.sync.plan_memo`) and print it again for the same inputs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

__all__ = ["Recording", "recording"]


class _Tee:
    """A text stream that writes through to `stream` and notes each write as `(number, text)`
    in `chunks` (1 stdout, 2 stderr)."""

    def __init__(self, stream: TextIO, number: int, chunks: list[tuple[int, str]]) -> None:
        self._stream, self._number, self._chunks = stream, number, chunks

    def write(self, text: str) -> int:
        self._chunks.append((self._number, text))
        return self._stream.write(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding, ...
        return getattr(self._stream, name)


class _Warned(logging.Handler):
    """Counts the records of WARNING and above that reach the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


class Recording:
    """The chunks written while `recording()` ran, and whether anything was logged at WARNING
    or above meanwhile (a logged line goes to the log's own stream: no replay would show it)."""

    def __init__(self) -> None:
        self.chunks: list[tuple[int, str]] = []
        self.warned = _Warned()

    @property
    def replayable(self) -> bool:
        """Everything printed went through stdout and stderr as recorded."""
        return self.warned.count == 0


@contextmanager
def recording() -> Iterator[Recording]:
    """Record what is written to `sys.stdout` and `sys.stderr` until the block ends."""
    found = Recording()
    out, err = sys.stdout, sys.stderr
    root = logging.getLogger()
    sys.stdout = _Tee(out, 1, found.chunks)
    sys.stderr = _Tee(err, 2, found.chunks)
    root.addHandler(found.warned)
    try:
        yield found
    finally:
        sys.stdout, sys.stderr = out, err
        root.removeHandler(found.warned)
