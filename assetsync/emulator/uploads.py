"""The upload host's request body: multipart `Path`, `Visibility`, `Content`, streamed to disk.

The `Content` part goes chunk by chunk into a temporary file (hashed on the way), so a 25 MB
upload never sits in memory; bytes past the size limit are read and thrown away so the client
still gets its 413 instead of a broken pipe. A body that ends before its closing boundary (or
before its Content-Length, see `assetsync.emulator.app`) is refused and nothing is kept: a
server never acts on a request it did not receive whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header

from assetsync.emulator.state import bad_request
from assetsync.emulator.storage import ContentWriter, Store

__all__ = ["Upload", "receive_upload"]

_MAX_TEXT_FIELD = 64 * 1024


@dataclass
class Upload:
    """What one multipart upload carried. `oversize`: Content passed `max_bytes` (not kept)."""

    fields: dict[str, str] = field(default_factory=dict)
    content: ContentWriter | None = None
    content_type: str = "application/octet-stream"
    oversize: bool = False


async def receive_upload(
    content_type: str, body: AsyncIterator[bytes], store: Store, max_bytes: int
) -> Upload:
    """Parse a multipart body; field names are matched case-insensitively (lower-case `path`,
    `visibility`, `content` were the upload host's first names, api-contract.md §4).

    Raises:
        EmulatorError: 400 when the body is not multipart/form-data.
    """
    media, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if media != b"multipart/form-data" or not boundary:
        raise bad_request(
            "Expected a multipart/form-data body with Path, Visibility and Content parts"
        )
    upload = Upload()
    part: dict[str, object] = {}
    header = {"name": b"", "value": b""}
    headers: dict[bytes, bytes] = {}
    text = bytearray()

    def on_part_begin() -> None:
        headers.clear()
        text.clear()
        part.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["name"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        headers[header["name"].lower()] = header["value"]
        header["name"] = header["value"] = b""

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace").lower()
        part["name"] = name
        if name == "content":
            if upload.content is not None:
                upload.content.discard()
            upload.content = store.new_content()
            upload.content_type = headers.get(b"content-type", b"application/octet-stream").decode(
                "latin-1"
            )

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part.get("name") == "content" and upload.content is not None:
            if upload.content.size + (end - start) > max_bytes:
                upload.oversize = True
            if not upload.oversize:
                upload.content.write(data[start:end])
        elif len(text) < _MAX_TEXT_FIELD:
            text.extend(data[start:end])

    def on_part_end() -> None:
        name = str(part.get("name", ""))
        if name and name != "content":
            upload.fields[name] = text.decode("utf-8", "replace")

    def on_end() -> None:
        part["ended"] = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_end": on_end,
        },
    )
    await _feed(parser, body, upload, lambda: bool(part.get("ended")))
    return upload


async def _feed(
    parser: MultipartParser, body: AsyncIterator[bytes], upload: Upload,
    ended: Callable[[], bool],
) -> None:
    """Parse the whole body; one that is malformed or incomplete keeps nothing (400)."""
    try:
        async for chunk in body:
            parser.write(chunk)
        parser.finalize()
        if not ended():
            raise ValueError("it ends before its closing boundary; nothing was stored")
    except Exception as exc:  # noqa: BLE001 - any failure here is a malformed body: 400
        if upload.content is not None:
            upload.content.discard()
        raise bad_request(f"Malformed multipart body: {exc}") from None
