"""`plan`'s output memo: what the last plans of a state folder printed, kept in
`<state_dir>/plan-output.bin` under a key of everything that output depends on, so that `plan`
on an unchanged tree prints it again after its scan, without preparing, reading the records or
planning, or loading the modules that do (issue 26: a published 10,000-file site's plan).

The key is a BLAKE2b, keyed with the state's own random key (the one Variables' digests use:
`State.variable_digest_key`), of:
- the memo's format, assetsync's version and the stat of its every source file (an edited
  checkout plans afresh), and Python's version (the built-in MIME table);
- the output mode and the flags that change a plan (`--json`, `--full`, `--prune-variables`);
  `-v` plans are never kept;
- the whole config's repr (every section, environment and `--env-file` included), and the
  credentials in use, secret too, which its repr hides: the secret check refuses a public file
  that holds it (only ever inside this keyed digest);
- the state's generation (`State.state_generation`: triggers give it a new random value on
  every write to a table a plan reads);
- the functions project as loaded: each function's digest, package.json's Dependencies, the
  .env's keys and values (only ever inside this keyed digest), its issues and warnings;
- the scan: every file's path, size and digest, its issues, and how many files it hashed and
  reused (the plan prints those counts);
- with `[check] strict = true`, the Studio flow exports beside the source that the reference
  check reads (`assetsync.check.project.studio_files`): each one's path and content.

A plan whose images went through the transform step is kept with the image encoders' versions
and replayed only under the same ones; one with audio is never kept (its encoder's version is
not read without loading it). Neither is a plan that failed, that logged a warning, or one made
from a read-only state (another assetsync holds it). The memo is a cache: unreadable, damaged or
of another format, it is ignored and written anew (never fsync'd). Tests hold a replayed plan
equal to one made without the memo.
"""

from __future__ import annotations

import logging
import marshal
import os
import sys
from array import array
from collections.abc import Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

from assetsync.atomic import write_atomic
from assetsync.config import Config
from assetsync.frozen import frozen
from assetsync.scan.scan_files import ScanFiles
from assetsync.sync.plan_inputs import PlanInputs

try:  # CPython's own BLAKE2, without `hashlib`, which loads OpenSSL's bindings (~3 ms)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter without the built-in module
    from hashlib import blake2b

__all__ = ["JSON_MEMO_NAME", "MEMO_NAME", "PlanOutput", "PlanOutputs", "output_key"]

log = logging.getLogger(__name__)

MEMO_NAME = "plan-output.bin"  # the human plans'
# `--json` plans' apart: a 10,000-file site's is 2.3 MB, which a human plan should not read.
JSON_MEMO_NAME = "plan-output-json.bin"
# Bump when what an entry holds, or what a plan prints from the same inputs, changes meaning.
_FORMAT = 1
_MARSHAL_VERSION = 4
_KEEP = 2  # entries per file: a plan of two environments, say, or before and after a change
_REL, _SIZE, _DIGEST = itemgetter(0), itemgetter(1), itemgetter(2)  # of a `ScannedFile`


@frozen
class PlanOutput:
    """What one plan printed, in order: (stream, text) chunks, 1 stdout and 2 stderr; its exit
    status; the image encoders' versions it depends on ("": none)."""

    chunks: tuple[tuple[int, str], ...]
    status: int
    encoders: str = ""

    def replay(self) -> int:
        """Print the chunks again, each to its stream; the exit status."""
        streams = {1: sys.stdout, 2: sys.stderr}
        for stream, text in self.chunks:
            streams[stream].write(text)
        sys.stdout.flush()
        sys.stderr.flush()
        return self.status


def _source_files_stat() -> tuple[tuple[str, int, int], ...]:
    """Each source file of the assetsync package: (path, size, mtime_ns), sorted (an edited
    checkout plans afresh; a package that is not plain files, a zip say, gives none: its
    version stands for it)."""
    found: list[tuple[str, int, int]] = []
    folders = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
    try:
        while folders:
            with os.scandir(folders.pop()) as entries:
                for entry in entries:
                    if entry.name.endswith(".py"):
                        st = entry.stat()
                        found.append((entry.path, st.st_size, st.st_mtime_ns))
                    elif entry.is_dir() and entry.name != "__pycache__":
                        folders.append(entry.path)
    except OSError:
        return ()
    return tuple(sorted(found))


def _credentials_part(config: Config) -> tuple[str, ...]:
    """The credentials in use, the secret included (`repr(config)` hides it, and the secret
    check looks for it in every public file: `known_secrets`)."""
    c = config.credentials
    return (c.account_sid, c.username, c.password) if c is not None else ()


def _project_part(inputs: PlanInputs) -> str:
    """The functions project as the plan reads it, as text equal in every process (the .env's
    values included: they only ever go into the keyed digest)."""
    p = inputs.project
    if p is None:
        return ""
    variables = sorted(p.variables.items()) if p.variables is not None else None
    return repr((str(p.folder), p.functions, p.dependencies, p.package_json, variables,
                 p.env_file, p.issues, p.warnings))


def _snapshot_part(inputs: PlanInputs) -> bytes:
    """An xxh3_128 (as every content digest here is) of the scan's rows by columns (paths,
    sizes, digests: NUL cannot be in a name), its issues and its counts: the keyed digest then
    runs over 16 bytes instead of a 10,000-file site's ~600 KB, in C-level joins."""
    import xxhash  # loaded by the scan already

    snap = inputs.snapshot
    files = snap.files
    if isinstance(files, ScanFiles):  # a walk's: its columns, no record made per file
        rels, sizes, digests = files.columns()
    else:
        rows = list(files.values())
        rels, sizes, digests = map(_REL, rows), map(_SIZE, rows), map(_DIGEST, rows)
    digest = xxhash.xxh3_128()
    digest.update("\0".join(rels).encode("utf-8", "surrogateescape"))
    digest.update(array("Q", sizes))
    digest.update("\0".join(digests).encode("ascii"))
    digest.update(marshal.dumps((len(snap.files), tuple((i.path, i.message) for i in snap.issues),
                                 snap.hashed, snap.bytes_hashed, snap.reused), _MARSHAL_VERSION))
    return digest.digest()


def output_key(config: Config, inputs: PlanInputs, *, mode: str,
               flags: Sequence[bool]) -> bytes | None:
    """The memo key of a plan of these inputs printed in `mode` ("human", "json") with these
    flags; None when the state has no key of its own to make it with (no migrated state)."""
    from assetsync import __version__

    secret = inputs.state.variable_digest_key()
    if not secret:
        return None
    digest = blake2b(key=secret[:64], digest_size=32)
    digest.update(marshal.dumps((
        _FORMAT, __version__, sys.version, _source_files_stat(), mode, tuple(flags),
        repr(config), _credentials_part(config), inputs.state.state_generation()),
        _MARSHAL_VERSION))
    digest.update(_project_part(inputs).encode("utf-8", "surrogatepass"))
    digest.update(_snapshot_part(inputs))
    if config.check.strict:
        digest.update(_flows_part(config))
    return digest.digest()


def _flows_part(config: Config) -> bytes:
    """The Studio flow exports a strict plan's reference check reads (they live outside the
    source folder, so the scan does not see them): each one's path and content."""
    import xxhash

    from assetsync.check.project import studio_files  # a strict plan loads it anyway

    digest = xxhash.xxh3_128()
    for path in studio_files(config.root, config):
        try:
            content = path.read_bytes()
        except OSError as exc:  # as the check reads it: an unreadable file is skipped
            content = f"unreadable: {exc.errno}".encode()
        digest.update(marshal.dumps((str(path), len(content)), _MARSHAL_VERSION))
        digest.update(content)
    return digest.digest()


class PlanOutputs:
    """The memo of one state folder's plans in one output mode ("human", "json"): `find` a kept
    output, `keep` a new one (written at once)."""

    def __init__(self, state_dir: Path, mode: str) -> None:
        self._path = state_dir / (JSON_MEMO_NAME if mode == "json" else MEMO_NAME)
        self._entries: list[tuple[bytes, tuple[Any, ...]]] = []  # most recent first
        try:
            data = self._path.read_bytes()
        except OSError:
            return
        try:
            fmt, entries = marshal.loads(data)
            if fmt == _FORMAT:
                self._entries = [(bytes(k), tuple(v)) for k, v in entries]
        except (EOFError, ValueError, TypeError) as exc:
            log.debug("plan memo %s ignored: %s", self._path, exc)

    def find(self, key: bytes) -> PlanOutput | None:
        """The output kept under `key`, if its encoders (if any) are still the ones here."""
        for kept, value in self._entries:
            if kept != key:
                continue
            try:
                chunks, status, encoders = value
                found = PlanOutput(tuple((int(s), str(t)) for s, t in chunks), int(status),
                                   str(encoders))
            except (TypeError, ValueError) as exc:
                log.debug("plan memo %s: an entry ignored: %s", self._path, exc)
                return None
            if found.encoders:
                from assetsync.media.cache import encoder_versions  # imports Pillow

                if found.encoders != encoder_versions():
                    return None
            return found
        return None

    def keep(self, key: bytes, output: PlanOutput) -> None:
        """Keep `output` under `key` as the most recent entry, the oldest beyond `_KEEP` let
        go, and write the memo (one that cannot be written is only logged)."""
        entry = (key, (output.chunks, output.status, output.encoders))
        self._entries = [entry, *(e for e in self._entries if e[0] != key)][:_KEEP]
        try:
            data = marshal.dumps((_FORMAT, self._entries), _MARSHAL_VERSION)
            write_atomic(self._path, data, durable=False)  # a cache: a torn file is ignored
        except (OSError, ValueError) as exc:
            log.debug("plan memo not saved in %s: %s", self._path, exc)
