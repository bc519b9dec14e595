"""A multipart upload body streamed from disk, hashing exactly the bytes it sends.

The upload host takes `Path`, `Visibility` and `Content` as multipart form fields (api-contract.md
§4). Building the body ourselves, rather than through an HTTP library's multipart helper, keeps the
file on disk (peak memory is one chunk), gives an exact `Content-Length`, and lets the body report
the xxh3_128 digest of what actually went over the wire: if the file changed between scan and
upload, the engine records the version under the content it really holds.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Mapping
from pathlib import PurePosixPath

import xxhash

from assetsync.errors import ScanError
from assetsync.frozen import frozen
from assetsync.models import DIGEST_PREFIX
from assetsync.remote.resources import AssetVersion

__all__ = ["BodyChangedError", "MultipartFile", "UploadedVersion"]

CHUNK_SIZE = 256 * 1024


@frozen
class UploadedVersion:
    """An acknowledged upload: the version, and the digest and size of the bytes sent."""

    version: AssetVersion
    digest: str
    size: int


class BodyChangedError(Exception):
    """The file shrank while it was being sent; the request is retried with a fresh body."""


def _quote(value: str) -> str:
    # RFC 7578 §4.2: names are quoted strings; escape the quote and line breaks.
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class MultipartFile:
    """`multipart/form-data` with text fields first and one file part last, read lazily.

    The file is opened at construction (so a missing file fails before any byte is sent) and
    closed by `close()`.
    """

    def __init__(
        self,
        fields: Mapping[str, str],
        file_field: str,
        file_path: str | os.PathLike[str],
        file_type: str,
        *,
        name: str,
    ) -> None:
        self.boundary = secrets.token_hex(16)
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        try:
            self._file = open(file_path, "rb")  # noqa: SIM115 - closed in close()
            self._size = os.fstat(self._file.fileno()).st_size
        except OSError as exc:
            raise ScanError(
                f"{file_path}: cannot be read for upload ({exc.strerror or exc}); "
                "check the file and sync again",
                path=str(file_path),
            ) from None
        head = bytearray()
        for key, value in fields.items():
            head += f"--{self.boundary}\r\n".encode()
            head += f'Content-Disposition: form-data; name="{_quote(key)}"\r\n\r\n'.encode()
            head += value.encode() + b"\r\n"
        filename = PurePosixPath(name).name or "content"
        head += f"--{self.boundary}\r\n".encode()
        head += (
            f'Content-Disposition: form-data; name="{_quote(file_field)}"; '
            f'filename="{_quote(filename)}"\r\n'
        ).encode()
        head += f"Content-Type: {file_type}\r\n\r\n".encode()
        self._head = bytes(head)
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._hash = xxhash.xxh3_128()
        self.sent_bytes = 0
        # Set once the closing boundary has been handed to the transport: only a body sent
        # whole can have made a version (a server does not act on an incomplete body).
        self.complete = False

    @property
    def length(self) -> int:
        """The exact body length (the `Content-Length` header)."""
        return len(self._head) + self._size + len(self._tail)

    def digest(self) -> str:
        """`xxh3_128:<hex>` of the file bytes sent so far (all of them once sent)."""
        return DIGEST_PREFIX + self._hash.hexdigest()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        # The head rides with the file's first chunk and the tail with its last: a file of one
        # chunk (most assets) is one write and one await, at the cost of copying that chunk.
        head, remaining = self._head, self._size
        while remaining > 0:
            chunk = self._file.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                raise BodyChangedError(f"{self._file.name} shrank during upload")
            self._hash.update(chunk)
            self.sent_bytes += len(chunk)
            remaining -= len(chunk)
            yield head + chunk + (self._tail if remaining == 0 else b"")
            head = b""
        if self._size == 0:
            yield head + self._tail
        self.complete = True

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._file.close()

    async def aclose(self) -> None:
        self.close()
