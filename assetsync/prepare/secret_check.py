"""The preparation's secret check: every public or protected output read once per content and
scanned (`assetsync.prepare.secrets`), its verdict kept by content digest in the state folder.

Verdicts live in `<state_dir>/secrets.txt`: a header line, then one line per content digest
(`<digest>` when clean, `!<digest> <rule>:<line>,...` when not). A verdict depends on the content
(which the digest names), the rules (`RULES_VERSION`) and the credentials in use, so the header
holds the rules' version and a salted BLAKE2b of those credentials: a 128-bit digest of a
random 32-character token under a random salt tells nothing about it, and when the
credentials change every verdict is dropped (a file may hold the new token). With no
credentials (the embedded emulator) there is nothing to hide or to tell apart: the field is
`-` and no hash is computed. So a sync whose files did not change reads none of them here,
whatever path (carried outcome or not) prepared them, and loads neither the rules (compiled
patterns) nor hashlib: both are imported where they are first needed.

A check that found every content clean (none holds a credential, each could be read) ends the
file with a claim line, `=<key>`: the xxh3_128 of the checked digests, in order. The next check
of the very same list under the same header reads the header and that last line, not the
verdicts (10,000 files: a 420 KB file split into a set, ~3 ms, on every plan and no-op sync).
Any other list, a finding, new credentials or rules, or a rewritten file (a new salt) take the
full path; a claim line is never a digest, and a torn one matches no key.

What is read: a file's first 64 bytes, to sniff its type; image, audio and video content is
not scanned further (credential formats are text; media bytes would only cost time). Other
files are read whole in 1 MiB chunks, up to the 25 MB Twilio allows a public or protected asset
(a larger one is refused before this check): a credential at the end of a file is as public as
one at its start, so no byte that can be published is skipped, and the cost is paid once per
content (docs/sync.md has the figures).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import xxhash

from assetsync.atomic import write_atomic
from assetsync.limits import MAX_PUBLIC_ASSET_BYTES
from assetsync.models import PublishedFile, Visibility
from assetsync.prepare.classify import Issue
from assetsync.prepare.secret_values import RULES_VERSION, KnownSecret
from assetsync.results import EventCallback, SyncEvent
from assetsync.scan.globs import compile_glob_set

if TYPE_CHECKING:
    from assetsync.config import Config, Credentials
    from assetsync.prepare.secrets import Finding

__all__ = ["CACHE_NAME", "SecretVerdicts", "check_secrets", "known_secrets"]

log = logging.getLogger(__name__)

CACHE_NAME = "secrets.txt"
_HEADER = "assetsync-secrets"
_CHUNK = 1 << 20
# Files up to this size are read whole and scanned in batches (`_Reader`); larger ones in chunks.
_SMALL = 256 << 10
_SEPARATOR = b"\n\0\n"
_SNIFF_BYTES = 64
_MEDIA = ("image/", "audio/", "video/")
_DIGEST = attrgetter("digest")

# Exact credentials: ids and what a finding calls them.
_AUTH_TOKEN = KnownSecret("account-auth-token", "the account's Twilio auth token", b"")
_API_SECRET = KnownSecret("api-key-secret", "the Twilio API key secret in use", b"")
_BASIC = KnownSecret("basic-auth", "the Twilio credentials in use as an HTTP Basic header", b"")
# The header's fingerprint field when no credential is in use.
_NO_CREDENTIALS = "-"


def known_secrets(credentials: Credentials | None) -> tuple[KnownSecret, ...]:
    """The credentials in use, as exact secrets to look for (none for the embedded emulator):
    the secret itself, and `user:secret` in base64 as an `Authorization: Basic` header holds it
    (a page that calls the API with a precomputed header)."""
    if credentials is None or not credentials.password:
        return ()
    token = _AUTH_TOKEN if credentials.username == credentials.account_sid else _API_SECRET
    import base64  # only with credentials (never for the embedded emulator)

    pair = f"{credentials.username}:{credentials.password}".encode()
    return (KnownSecret(token.id, token.kind, credentials.password.encode("utf-8")),
            KnownSecret(_BASIC.id, _BASIC.kind, base64.b64encode(pair).rstrip(b"=")))


def _valid_salt(header: str, known: Sequence[KnownSecret]) -> bytes:
    """The salt of a cache whose header line is of these rules and these credentials, else
    b"" (its verdicts are not to be trusted)."""
    fields = header.rstrip("\n").split(" ")
    if len(fields) != 4 or fields[0] != _HEADER or fields[1] != str(RULES_VERSION):
        return b""
    try:
        salt = bytes.fromhex(fields[2])
    except ValueError:
        return b""
    return salt if salt and _fingerprint(known, salt) == fields[3] else b""


def _claim(digests: Sequence[str]) -> str:
    """The claim line saying that exactly these contents (in order) were all found clean."""
    listed = "\n".join(digests).encode("ascii")
    return f"={xxhash.xxh3_128_hexdigest(listed)}\n"


def _claimed_clean(path: Path, known: Sequence[KnownSecret], claim: str) -> bool:
    """Whether the cache at `path` ends with `claim` under a header of these rules and
    credentials: its first and last lines only (see the module doc)."""
    tail = claim.encode("ascii")
    try:
        with open(path, "rb") as handle:
            header = handle.readline(256)
            handle.seek(-len(tail), os.SEEK_END)
            if handle.read() != tail:
                return False
    except OSError:  # none, or shorter than a claim
        return False
    return bool(_valid_salt(header.decode("ascii", "replace"), known))


def _fingerprint(known: Sequence[KnownSecret], salt: bytes) -> str:
    if not known:
        return _NO_CREDENTIALS
    try:
        # `hashlib.blake2b` is this very function (CPython's own BLAKE2, never OpenSSL's);
        # importing hashlib would first load its OpenSSL bindings: ~3 ms of every run.
        from _blake2 import blake2b
    except ImportError:  # an interpreter without the module
        from hashlib import blake2b

    digest = blake2b(key=salt, digest_size=16)
    for secret in known:
        digest.update(len(secret.value).to_bytes(4, "big") + secret.value)
    return digest.hexdigest()


class SecretVerdicts:
    """The verdict cache of one state folder (see the module doc). Each run loads the file;
    `save()` writes what this run found out. A clean content is one `<digest>` line, a finding
    `!<digest> <rule>:<line>,...`: loading the usual file (all clean) is one split and one set.
    """

    def __init__(self, state_dir: Path, known: Sequence[KnownSecret]) -> None:
        self._path = state_dir / CACHE_NAME
        self._known = tuple(known)
        self._clean: set[str] = set()
        self._found: dict[str, str] = {}  # digest -> "rule:line,..."
        self._new: dict[str, str] = {}
        self._rewrite = False
        self._salt = b""
        try:
            text = self._path.read_bytes().decode("ascii")  # (no codec module to import)
        except (OSError, ValueError):
            text = ""
        header, _, body = text.partition("\n")
        self._salt = _valid_salt(header, self._known)
        if self._salt:
            self._load(body)
        else:
            import secrets as random_bytes  # only for a new or dropped cache

            self._salt = random_bytes.token_bytes(16)
            self._rewrite = True  # new, damaged, older rules or other credentials

    def _load(self, body: str) -> None:
        lines = body.split("\n")
        if lines.pop():
            self._rewrite = True  # a line a crash cut short: appending would extend it
        # Finding lines start with "!", claim lines with "=": neither matches a digest.
        self._clean = set(lines)
        if "!" in body:
            for line in lines:
                if line.startswith("!"):
                    digest, _, verdict = line[1:].partition(" ")
                    self._found[digest] = verdict

    def missing(self, digests: AbstractSet[str]) -> set[str]:
        """The digests without a verdict (set operations: 10,000s of digests on every run)."""
        rest = digests - self._clean
        return rest - self._found.keys() if rest and self._found else set(rest)

    def findings(self, digests: Iterable[str]) -> dict[str, str]:
        """Digest -> verdict, for those of `digests` whose content holds a credential."""
        if not self._found:
            return {}
        return {d: self._found[d] for d in digests if d in self._found}

    def put(self, digest: str, verdict: str) -> None:
        """Remember a new verdict ("" for clean)."""
        if verdict:
            self._found[digest] = verdict
        else:
            self._clean.add(digest)
        self._new[digest] = verdict

    def save(self, used: set[str], claim: str = "") -> None:
        """Append the new verdicts, or write those of `used` afresh (a new or damaged file, or
        one holding more than twice what this run used); then `claim` (see the module doc),
        when given."""
        if not self._rewrite and not self._new and not claim:
            return
        if len(self._clean) + len(self._found) > 2 * len(used):
            self._rewrite = True
        try:
            if self._rewrite:
                header = (f"{_HEADER} {RULES_VERSION} {self._salt.hex()} "
                          f"{_fingerprint(self._known, self._salt)}\n")
                kept = {d: "" for d in self._clean & used} | {
                    d: v for d, v in self._found.items() if d in used}
                # Not fsync'd: a cache, whose torn last line the loader notices.
                write_atomic(self._path, (header + _lines(kept) + claim).encode("ascii"),
                             durable=False)
            else:
                with open(self._path, "ab") as handle:
                    handle.write((_lines(self._new) + claim).encode("ascii"))
        except OSError as exc:  # a cache: the next run scans these files again
            log.warning("secret scan verdicts not cached in %s: %s", self._path, exc)
        self._rewrite, self._new = False, {}


def _lines(verdicts: dict[str, str]) -> str:
    return "".join(f"!{d} {v}\n" if v else f"{d}\n" for d, v in verdicts.items())


class _Reader:
    """Reads and scans the files without a verdict. Small files are scanned together, up to
    1 MiB at a time joined by a separator no pattern can cross (a newline, NUL, a newline):
    the scan's fixed cost per call (one pass per pattern) is then paid per batch, not per file.
    A batch with no finding clears all its files; one with a finding is scanned again file by
    file, which also keeps a two-part rule (a key here, its secret there) to one file."""

    def __init__(self, known: Sequence[KnownSecret]) -> None:
        self.known = known
        self.verdicts: dict[str, str] = {}  # digest -> verdict
        self.failed: dict[str, str] = {}  # digest -> why it could not be read
        self.files = self.bytes = 0
        self._batch: list[tuple[str, bytes]] = []
        self._batched = 0
        self._read: set[str] = set()

    def read_all(self, files: Iterable[PublishedFile], source: str) -> None:
        """Find the verdict of each file's content (each content read once)."""
        for file in files:
            if file.digest not in self._read:
                path = file.content_path
                self.read(file.digest,
                          path if path.startswith("/") else os.path.join(source, path))
        self.flush()

    def read(self, digest: str, path: str) -> None:
        """Find `digest`'s verdict from the file at `path` (now, or with its batch)."""
        # Here, not at the top: a run whose verdicts are all cached reads no file's type.
        from assetsync.media.sniff import sniff

        self._read.add(digest)
        try:
            with open(path, "rb") as handle:
                head = handle.read(_SNIFF_BYTES)
                media = sniff(head)
                if media is not None and media.mime.startswith(_MEDIA):
                    self._done(digest, "", len(head))
                    return
                data = head + handle.read(_SMALL + 1 - len(head))
                if len(data) > _SMALL:
                    self._scan_stream(digest, data, handle)
                    return
        except OSError as exc:
            self.failed[digest] = str(exc.strerror or exc)
            return
        self._batch.append((digest, data))
        self._batched += len(data)
        if self._batched >= _CHUNK:
            self.flush()

    def _scan_stream(self, digest: str, first: bytes, handle: BinaryIO) -> None:
        """A large file, in chunks, up to the public asset limit (see the module doc)."""
        from assetsync.prepare.secrets import SecretScan  # see the module doc

        scan = SecretScan(self.known)
        chunk, done = first, 0
        while chunk:
            scan.feed(chunk)
            done += len(chunk)
            if done >= MAX_PUBLIC_ASSET_BYTES:
                break
            chunk = handle.read(min(_CHUNK, MAX_PUBLIC_ASSET_BYTES - done))
        self._done(digest, _verdict(scan.findings()), done)

    def flush(self) -> None:
        """Scan the files batched so far."""
        batch, self._batch, self._batched = self._batch, [], 0
        if not batch:
            return
        from assetsync.prepare.secrets import find_secrets  # see the module doc

        if len(batch) > 1 and not find_secrets(_SEPARATOR.join(d for _, d in batch), self.known):
            for digest, data in batch:
                self._done(digest, "", len(data))
            return
        for digest, data in batch:
            self._done(digest, _verdict(find_secrets(data, self.known)), len(data))

    def _done(self, digest: str, verdict: str, size: int) -> None:
        self.verdicts[digest] = verdict
        self.files += 1
        self.bytes += size


def _verdict(findings: Iterable[Finding]) -> str:
    return ",".join(f"{f.rule}:{f.line}" for f in findings)


def _message(file: PublishedFile, verdict: str) -> str:
    # Only for a finding (cached or new): the rules name their kinds.
    from assetsync.prepare.secrets import RULES

    kinds = {rule.id: rule.kind for rule in RULES} | {
        k.id: k.kind for k in (_AUTH_TOKEN, _API_SECRET, _BASIC)}
    found = []
    for item in verdict.split(","):
        rule, _, line = item.partition(":")
        found.append(f"{kinds.get(rule, rule)} (line {line})")
    what = " and ".join(found)
    variant = f" (its {file.variant} variant)" if file.variant else ""
    return (f"holds {what}{variant}, which would be published as a {file.visibility.value} "
            "asset: remove it, make the file private (name.private.ext), or list it in "
            "[publish] allow_secrets if it is meant to be published")


def check_secrets(
    files: Iterable[PublishedFile],
    config: Config,
    *,
    save: bool = True,
    on_event: EventCallback | None = None,
) -> tuple[Issue, ...]:
    """One error per public or protected file that holds a credential (naming the file and
    the kind, never the secret); private files and `[publish] allow_secrets` matches are not
    read. Reads only contents without a cached verdict; `save`: keep the new verdicts (a
    read-only state leaves the cache alone).

    Emits `SyncEvent("secrets_checked", files=files read, bytes=bytes read, total=files
    checked)` when it checked any file.
    """
    checked = _to_check(files, config)
    if not checked:
        return ()
    known = known_secrets(config.credentials)
    order = list(map(_DIGEST, checked))
    claim = _claim(order)
    reader = _Reader(known)
    if _claimed_clean(config.state_dir / CACHE_NAME, known, claim):
        _checked(on_event, reader, len(checked))
        return ()
    cache = SecretVerdicts(config.state_dir, known)
    digests = set(order)
    missing = cache.missing(digests)
    if missing:
        reader.read_all((f for f in checked if f.digest in missing), str(config.source))
        for digest, verdict in reader.verdicts.items():
            cache.put(digest, verdict)
    found = cache.findings(digests)
    if save:
        cache.save(digests, "" if found or reader.failed else claim)
    _checked(on_event, reader, len(checked))
    if not found and not reader.failed:
        return ()
    return tuple(_issue(file, found.get(file.digest), reader.failed.get(file.digest))
                 for file in checked
                 if file.digest in found or file.digest in reader.failed)


def _to_check(files: Iterable[PublishedFile], config: Config) -> list[PublishedFile]:
    """The public and protected files that `[publish] allow_secrets` does not name."""
    allow = compile_glob_set(config.allow_secrets) if config.allow_secrets else None
    private = Visibility.PRIVATE  # a local: the loops below run once per file (10,000s)
    if allow is None:
        return [f for f in files if f.visibility is not private]
    return [f for f in files if f.visibility is not private and not allow.match(f.source)]


def _checked(on_event: EventCallback | None, reader: _Reader, total: int) -> None:
    if on_event is not None:
        on_event(SyncEvent("secrets_checked", files=reader.files, bytes=reader.bytes,
                           total=total))


def _issue(file: PublishedFile, verdict: str | None, failure: str | None) -> Issue:
    if failure is not None:
        return Issue(file.source, f"cannot be read to check it for credentials ({failure}); "
                     "nothing was uploaded")
    return Issue(file.source, _message(file, verdict or ""))
