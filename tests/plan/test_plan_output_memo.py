"""`plan`'s output memo (`assetsync.sync.plan_memo`): a plan printed again from it prints byte
for byte what a plan made without it prints, every input of the key makes a new plan, and what
must not be used (verbose and read-only plans, a damaged memo or one of another format, an
image plan under other encoders, a config error) is not. A hit is seen without patching
anything: it leaves the memo file (plan-output.bin, or plan-output-json.bin for `--json`) as it
was, while a kept plan replaces it (a new inode: it is written atomically).

The scan's counts ("N hashed, M unchanged since last scan") depend on the racy window of the stat
cache (a file changed within 2 s of being hashed is hashed again), so each run's counts are read
back from the stat cache itself (rows hashed since the run began) and checked against what the
run printed; runs are then compared exactly with only those two numbers masked."""

from __future__ import annotations

import contextlib
import io
import json
import marshal
import os
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assetsync.cli import main
from assetsync.scan.stat_table import RACY_WINDOW_NS
from assetsync.state.db import State
from assetsync.sync.plan_memo import JSON_MEMO_NAME, MEMO_NAME
from tests.state.test_carry import _png
from tests.sync_harness import credentials_env, make_tree, write_config

SECRET = "zq81-hush-value-4e7d"
_ENV = "GREETING={greeting}\nOTHER=other-value\nEMPTY=\n"
_HUMAN_COUNTS = re.compile(
    r"^(source .*: (\d+) files \()(\d+) hashed, (\d+)( unchanged since last scan\))$",
    re.MULTILINE)
_JSON_COUNTS = re.compile(r'"scan": \{"files": (\d+), "hashed": (\d+), "reused": (\d+)\}')


# --- the project ----------------------------------------------------------------------------


@dataclass
class Knobs:
    """What the config says: a private pattern (or none) and the shard size."""

    private: bool = False
    per_build: int = 6


class Site:
    """A Toolkit project (functions, package.json, .env) beside a 14-file source folder spread
    over services, its config pointing at the emulator, and `plan` run on it in-process."""

    def __init__(self, root: Path, emulator: Any, *, make: bool = True) -> None:
        self.root, self.emulator, self.knobs = root, emulator, Knobs()
        self.config = root / ".assetsync.toml"
        self.state_dir = root / ".assetsync"
        self.memo = self.state_dir / MEMO_NAME
        self.json_memo = self.state_dir / JSON_MEMO_NAME  # `--json` plans' own
        if make:
            self.make()

    def make(self) -> None:
        """Write the config, the project and the 14 files."""
        self.write_config()
        files = {
            "functions/hello.js": "exports.handler = (c, e, cb) => cb(null, 'hi');\n",
            "functions/admin/secret.protected.js": "exports.handler = (c, e, cb) => cb();\n",
            "package.json": json.dumps({"dependencies": {"lodash": "^4.17.21"}}),
            ".env": _ENV.format(greeting="hello-1"),
            "site/index.html": "<h1>hello</h1>\n",
        }
        for rel, text in files.items():
            (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.root / rel).write_text(text, encoding="utf-8")
        make_tree(self.root / "site", 14)

    def write_config(self) -> None:
        extra = f"[shard]\npublic_protected_per_build = {self.knobs.per_build}\n"
        if self.knobs.private:
            extra += '[visibility]\nprivate = ["d1/**"]\n'
        self.config.unlink(missing_ok=True)
        write_config(self.root, self.emulator, service="pom", extra=extra)

    def file(self, i: int) -> Path:
        return self.root / "site" / f"d{i % 10}" / f"f{i:04d}.txt"

    def memo_of(self, argv: tuple[str, ...]) -> Path:
        """The memo file a plan with these arguments reads and writes."""
        return self.json_memo if "--json" in argv else self.memo

    def stamp(self, *argv: str) -> tuple[int, int] | None:
        try:
            st_ = self.memo_of(argv).stat()
        except FileNotFoundError:
            return None
        return st_.st_ino, st_.st_mtime_ns

    def cli(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["-c", str(self.config), *argv])
        return code, out.getvalue(), err.getvalue()

    def sync(self) -> None:
        code, _out, err = self.cli("sync")
        assert code == 0, err

    def hashed_since(self, started_ns: int) -> int:
        """How many files the stat cache holds as hashed at or after `started_ns`."""
        with State.open(self.state_dir, readonly=True) as state:
            return sum(1 for row in state.stat_table().rows().values() if row[6] >= started_ns)

    def plan(self, *argv: str) -> Run:
        """`assetsync plan` as a user runs it; whether it left the memo as it was (a hit)."""
        before = self.stamp(*argv)
        started = time.time_ns()
        verbose = [a for a in argv if a == "-v"]  # the top-level flag: before the command
        code, out, err = self.cli(*verbose, "plan", *(a for a in argv if a != "-v"))
        hit = before is not None and self.stamp(*argv) == before
        hashed = self.hashed_since(started) if (self.state_dir / "state.db").exists() else -1
        return Run(code, out, err, hit, hashed)

    def reference(self, *argv: str) -> Run:
        """The plan made without the memo (which it then keeps)."""
        self.memo_of(argv).unlink(missing_ok=True)
        run = self.plan(*argv)
        assert not run.hit
        return run

    def aged(self, *argv: str) -> Run:
        """Plan until no file is in the stat cache's racy window (a scan hashes none: every
        later scan of the unchanged tree reuses every digest), then once more: a hit."""
        for _ in range(100):
            if self.plan(*argv).hashed == 0:
                break
            time.sleep(0.1)
        run = self.plan(*argv)
        assert run.hashed == 0 and run.hit, run
        return run


@dataclass
class Run:
    """One plan: exit status, stdout, stderr; whether the memo answered; files its scan hashed
    (read back from the stat cache)."""

    status: int
    out: str
    err: str
    hit: bool
    hashed: int

    @property
    def output(self) -> tuple[int, str, str]:
        return self.status, self.out, self.err

    @property
    def masked(self) -> tuple[int, str, str]:
        """The output with the scan's two counts masked, once checked to be this run's own."""
        human = _HUMAN_COUNTS.search(self.out)
        found = _JSON_COUNTS.search(self.out)
        if human is not None:
            files, hashed, reused = (int(human.group(i)) for i in (2, 3, 4))
            out = _HUMAN_COUNTS.sub(r"\1H hashed, R\5", self.out)
        else:
            assert found is not None, self.out
            files, hashed, reused = (int(found.group(i)) for i in (1, 2, 3))
            out = _JSON_COUNTS.sub(r'"scan": {"files": \1, "hashed": H, "reused": R}', self.out)
        assert (hashed, reused) == (self.hashed, files - self.hashed), (self.hashed, self.out)
        return self.status, out, self.err


def _agree(run: Run, reference: Run) -> None:
    """`run` prints what the memo-less `reference` printed: exactly when their scans hashed as
    many files, else but for the counts (each checked to be its own run's)."""
    assert run.masked == reference.masked
    if run.hashed == reference.hashed:
        assert run.output == reference.output


@pytest.fixture
def site(tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Site:
    for name, value in credentials_env(emulator).items():
        monkeypatch.setenv(name, value)
    return Site(tmp_path, emulator)


def _entries(site: Site) -> list[tuple[bytes, tuple[Any, ...]]]:
    fmt, entries = marshal.loads(site.memo.read_bytes())
    assert fmt == 1
    return list(entries)


def _tamper(site: Site, *, fmt: int | None = None, encoders: str | None = None) -> None:
    """Every kept entry prints TAMPERED instead (optionally under other image encoders, or in
    another memo format)."""
    old_fmt, entries = marshal.loads(site.memo.read_bytes())
    entries = [(key, (((1, "TAMPERED\n"),), status, enc if encoders is None else encoders))
               for key, (_chunks, status, enc) in entries]
    site.memo.write_bytes(marshal.dumps((old_fmt if fmt is None else fmt, entries), 4))


# --- the agreement property -----------------------------------------------------------------


_ARGS = st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans())  # json, full,
# prune-variables, --env other

_OPS = st.lists(st.one_of(
    st.tuples(st.just("edit"), st.integers(0, 15), st.binary(min_size=1, max_size=12)),
    st.tuples(st.just("add"), st.integers(0, 3)),
    st.tuples(st.just("remove"), st.integers(0, 15)),
    st.tuples(st.just("touch"), st.integers(0, 3)),
    st.tuples(st.just("edit_same_size"), st.integers(0, 3)),
    st.tuples(st.just("sync")),
    st.tuples(st.just("private"), st.booleans()),
    st.tuples(st.just("per_build"), st.sampled_from([6, 7])),
    st.tuples(st.just("env_value"), st.sampled_from(["hello-1", "hello-2", "hello-3"])),
    st.tuples(st.just("function"), st.sampled_from(["a", "b"])),
    st.tuples(st.just("args"), _ARGS),
    st.tuples(st.just("nothing")),
), min_size=1, max_size=7)


def _apply(site: Site, op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "edit":
        site.file(op[1]).parent.mkdir(parents=True, exist_ok=True)
        site.file(op[1]).write_bytes(op[2])
    elif kind == "add":
        (site.root / "site" / "new").mkdir(exist_ok=True)
        (site.root / "site" / "new" / f"n{op[1]}.txt").write_text(f"new {op[1]}")
    elif kind == "remove":
        site.file(op[1]).unlink(missing_ok=True)
    elif kind == "touch" and site.file(op[1]).exists():
        os.utime(site.file(op[1]))  # the same bytes, a new mtime: hashed again
    elif kind == "edit_same_size" and site.file(op[1]).exists():
        site.file(op[1]).write_bytes(site.file(op[1]).read_bytes()[::-1])
    elif kind == "sync":
        site.sync()
    elif kind in ("private", "per_build"):
        setattr(site.knobs, kind, op[1])
        site.write_config()
    elif kind == "env_value":  # the same keys, another value
        (site.root / ".env").write_text(_ENV.format(greeting=op[1]), encoding="utf-8")
    elif kind == "function":
        (site.root / "functions" / "hello.js").write_text(
            f"exports.handler = (c, e, cb) => cb(null, '{op[1]}');\n", encoding="utf-8")


def _argv(args: tuple[bool, bool, bool, bool]) -> list[str]:
    as_json, full, prune, other = args
    return [flag for flag, on in (("--json", as_json), ("--full", full),
                                  ("--prune-variables", prune)) if on] + (
        ["--env", "other"] if other else [])


_EXAMPLES = 10


@pytest.fixture
def aged_projects(tmp_path: Path, emulator: Any) -> list[Path]:
    """A project for each of the property's examples, made at once and left to age past the
    stat cache's racy window (one wait for all): their scans then hash only what an example
    changed, so the scan's counts tell touched and rewritten files apart. Examples beyond these
    (hypothesis shrinking a failure) make fresh ones."""
    roots = [tmp_path / f"aged{i}" for i in range(_EXAMPLES)]
    for root in roots:
        root.mkdir()
        Site(root, emulator)
    time.sleep(RACY_WINDOW_NS / 1e9 + 0.2)
    return roots


@settings(max_examples=_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=_OPS)
def test_a_plan_from_the_memo_always_prints_what_a_plan_without_it_prints(
        ops: list[tuple[Any, ...]], emulator: Any, monkeypatch: pytest.MonkeyPatch,
        aged_projects: list[Path]) -> None:
    emulator.state.reset()  # each example an empty account (the fixture resets per test)
    emulator.clock.reset()
    if aged_projects:
        root = aged_projects.pop()
        site = Site(root, emulator, make=False)
    else:
        root = Path(tempfile.mkdtemp(prefix="assetsync-output-memo-"))
        site = Site(root, emulator)
    try:
        for name, value in credentials_env(emulator).items():
            monkeypatch.setenv(name, value)
        argv: list[str] = []
        hits = 0
        # Planned before and after a first sync, then the example's steps: after a sync every
        # input shows in the plan (a .env value as "changed", --full as uploads).
        for op in [("nothing",), ("sync",), *ops]:
            if op[0] == "args":
                argv = _argv(op[1])
            else:
                _apply(site, op)
            first, second = site.plan(*argv), site.plan(*argv)
            reference = site.reference(*argv)
            # The same inputs (no file changed, the scan hashed as many) make the same key.
            if second.hashed == first.hashed:
                assert second.hit, (first, second)
            hits += first.hit + second.hit
            _agree(first, reference)
            _agree(second, reference)
        assert hits >= 1  # the very first step's second plan at least, almost always more
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- hits ----------------------------------------------------------------------------------


def test_an_unchanged_tree_is_printed_again_byte_for_byte(site: Site) -> None:
    human = site.aged()
    assert human.status == 0 and "3 services" in human.out
    as_json = site.plan("--json")
    assert not as_json.hit  # another mode: another entry
    again = site.plan("--json")
    assert again.hit and again.output == as_json.output
    both = site.plan()
    assert both.hit and both.output == human.output  # the human entry is still there
    assert site.reference().output == human.output
    assert site.reference("--json").output == as_json.output


def test_a_hit_prints_what_the_memo_holds(site: Site) -> None:
    """The control for every other test: an unchanged tree's plan is the kept one's."""
    site.aged()
    _tamper(site)
    run = site.plan()
    assert run.hit and run.output == (0, "TAMPERED\n", "")


def test_a_plan_that_fails_is_kept_and_printed_again_with_its_status(site: Site) -> None:
    (site.root / "site" / "bad#name.txt").write_text("a path Twilio refuses")
    first = site.aged()
    assert first.status == 1 and "bad#name.txt" in first.err
    assert site.plan().output == first.output == site.reference().output


# --- each input makes a new plan -----------------------------------------------------------


def _edit_same_size(site: Site) -> None:
    """A file changed within the racy window of a kept plan whose scan hashed it: the scan's
    counts are the kept plan's, only the file's digest tells the new content."""
    target = site.file(4)
    for _ in range(20):
        os.utime(target)
        touched = site.plan()  # hashes it, kept
        repeat = site.plan()  # hashes it again (racy): the same counts, a hit
        if repeat.hashed == touched.hashed == 1:
            assert repeat.hit
            target.write_bytes(bytes(reversed(target.read_bytes())))
            return
    raise AssertionError("the touched file left the racy window before the next plan")


def _private(site: Site) -> None:
    site.knobs.private = True
    site.write_config()


def _per_build(site: Site) -> None:
    site.knobs.per_build = 7
    site.write_config()


def _write(rel: str, text: str) -> Callable[[Site], None]:
    def write(site: Site) -> None:
        (site.root / rel).write_text(text, encoding="utf-8")

    return write


_CHANGES: dict[str, Callable[[Site], None]] = {
    "visibility": _private,
    "per_build": _per_build,
    "same_size_edit": _edit_same_size,
    "touch": lambda site: os.utime(site.file(3)),
    "env_value": _write(".env", _ENV.format(greeting=SECRET)),
    "function": _write("functions/hello.js", "// edited\n"),
    "package_json": _write("package.json", json.dumps({"dependencies": {"lodash": "^4.17.20"}})),
    "sync": Site.sync,
}


@pytest.mark.parametrize("change", sorted(_CHANGES))
def test_each_input_makes_a_new_plan_equal_to_a_memoless_one(site: Site, change: str) -> None:
    if change != "sync":
        site.sync()  # recorded: reuses, variable digests, dependencies to compare with
    before = site.aged()
    _CHANGES[change](site)
    run = site.plan()
    assert not run.hit
    reference = site.reference()
    _agree(run, reference)
    assert run.output != before.output  # the change shows: a replay would have been wrong
    if change == "env_value":
        assert "1 changed (GREETING)" in run.out
    if change == "touch":
        assert run.hashed == 1 and run.masked == before.masked  # only the counts moved


@pytest.mark.parametrize("flags", [("--full",), ("--prune-variables",), ("--env", "other")])
def test_each_flag_makes_a_plan_of_its_own(site: Site, flags: tuple[str, ...]) -> None:
    site.sync()
    (site.root / ".env").write_text("GREETING=hello-1\n")  # OTHER is kept unless pruned
    before = site.aged()
    run = site.plan(*flags)
    assert not run.hit and run.output != before.output
    assert site.plan().hit  # the plan without the flag is still kept
    assert site.plan(*flags).hit
    _agree(run, site.reference(*flags))


def test_a_strict_plan_keys_on_the_studio_flows_beside_the_source(site: Site) -> None:
    """With `[check] strict = true` the reference check also reads the Studio flow exports in
    the project folder, which the scan does not see: each one's content is in the key."""
    site.config.unlink()
    write_config(site.root, site.emulator, service="pom",
                 extra="[shard]\npublic_protected_per_build = 6\n[check]\nstrict = true\n")
    flow = site.root / "flow.json"
    flow.write_text(json.dumps({"description": "IVR", "states": []}))
    before = site.aged()
    assert before.status == 0
    flow.write_text(json.dumps({"description": "IVR", "states": [
        {"name": "greet", "type": "say-play",
         "properties": {"play": "https://pom-1234-dev.twil.io/audio/missing.mp3"}}]}))
    run = site.plan()
    assert not run.hit and run.status == 1 and "flow.json" in run.err
    _agree(run, site.reference())
    assert site.plan().hit  # the same flow again: kept


@pytest.mark.parametrize("variable", ["TWILIO_AUTH_TOKEN", "TWILIO_API_SECRET"])
def test_a_new_credential_makes_a_new_plan(site: Site, monkeypatch: pytest.MonkeyPatch,
                                           variable: str) -> None:
    """The secret check refuses a public file holding the credential in use, which the
    config's repr hides: the secret is in the key (keyed, never stored)."""
    new_secret = "0123456789abcdef" * 2
    if variable == "TWILIO_API_SECRET":
        monkeypatch.setenv("TWILIO_API_KEY", "SK" + "1" * 32)
        monkeypatch.setenv("TWILIO_API_SECRET", "f" * 32)
    (site.root / "site" / "config.js").write_text(f'const secret = "{new_secret}";\n')
    before = site.aged()
    assert before.status == 0
    monkeypatch.setenv(variable, new_secret)
    run = site.plan()
    reference = site.reference()
    assert reference.status == 1 and "config.js: holds the" in reference.err
    assert not run.hit
    _agree(run, reference)


# --- never kept, never read ----------------------------------------------------------------


def test_verbose_plans_neither_read_nor_write_the_memo(site: Site) -> None:
    assert site.plan("-v").status == 0 and site.plan("-v").status == 0
    assert not site.memo.exists()
    site.aged()
    _tamper(site)
    stamp = site.stamp()
    run = site.plan("-v")
    assert "TAMPERED" not in run.out and "scan_done" in run.err
    assert site.stamp() == stamp


def test_a_read_only_plan_neither_reads_nor_writes_the_memo(site: Site) -> None:
    site.aged()
    _tamper(site)
    stamp = site.stamp()
    with State.open(site.state_dir):  # another assetsync holds the state (say `watch`)
        code, out, err = site.cli("plan")
    assert code == 0 and "read-only" in err and "TAMPERED" not in out
    assert "3 services" in out
    assert site.stamp() == stamp
    site.memo.unlink()
    with State.open(site.state_dir):
        assert site.cli("plan")[0] == 0
    assert not site.memo.exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "other_format"])
def test_a_damaged_memo_is_ignored_and_written_again(site: Site, damage: str) -> None:
    expected = site.aged()
    data = site.memo.read_bytes()
    if damage == "other_format":
        _tamper(site, fmt=2)
    else:
        site.memo.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\x00\xffjunk" * 9,
                               "empty": b""}[damage])
    run = site.plan()
    assert not run.hit and run.output == expected.output
    assert len(_entries(site)) == 1  # written anew, in the current format
    assert site.plan().hit


def test_a_config_error_is_never_kept(site: Site) -> None:
    with site.config.open("a") as f:
        f.write("[sync]\nconcurency = 3\n")
    assert site.cli("plan")[0] == 2
    assert not site.state_dir.exists()
    site.write_config()
    assert site.plan().status == 0
    kept = site.memo.read_bytes(), site.stamp()
    (site.root / ".env").write_text("GREETING=one\nthis line is not dotenv\n")
    code, _out, err = site.cli("plan")
    assert code == 2 and ".env" in err and err.count("\n") == 1
    assert (site.memo.read_bytes(), site.stamp()) == kept


def test_a_variable_over_the_limit_is_kept_as_a_failed_plan_without_its_value(
        site: Site) -> None:
    """A Variable's value over Twilio's 450 bytes: an issue naming the key (exit 1), printed
    again as it was; the value is in neither the output nor the memo."""
    value = "v" * 449 + "-over"
    (site.root / ".env").write_text(f"GREETING={value}\n")
    first = site.aged()
    assert first.status == 1 and "GREETING" in first.err and value not in first.err
    assert site.plan().output == first.output == site.reference().output
    assert value.encode() not in site.memo.read_bytes()


def test_a_plan_of_files_that_cannot_be_published_is_kept_with_its_status(
        site: Site) -> None:
    site.knobs.per_build = 1  # 15 files, one per service: more services than an account holds
    site.write_config()
    first = site.aged()
    assert first.status == 1 and "max_services is 10" in first.err
    assert site.plan().output == first.output == site.reference().output


# --- what the memo holds -------------------------------------------------------------------


def test_the_memo_never_holds_a_variables_value(site: Site) -> None:
    (site.root / ".env").write_text(_ENV.format(greeting=SECRET))
    site.plan()
    site.plan("--json")
    site.sync()
    site.plan()
    (site.root / ".env").write_text(_ENV.format(greeting=SECRET[::-1]))
    run = site.plan()
    assert "1 changed (GREETING)" in run.out and SECRET[::-1] not in run.out
    assert site.memo.exists()
    for path in site.state_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data and SECRET[::-1].encode() not in data, path


def test_an_image_plan_is_kept_under_the_encoders_it_was_made_with(site: Site) -> None:
    for seed in range(2):
        (site.root / "site" / f"img{seed}.png").write_bytes(_png(seed))
    expected = site.aged()
    _key, (_chunks, _status, encoders) = _entries(site)[0]  # the latest
    assert "pillow=" in encoders
    _tamper(site)  # the control: read under the same encoders
    assert site.plan().output == (0, "TAMPERED\n", "")
    _tamper(site, encoders=encoders.replace("pillow=", "pillow=0.older-"))
    run = site.plan()
    assert not run.hit and run.output == expected.output
    assert site.plan().hit


# --- the state's change counter ------------------------------------------------------------

# Every table of the state a plan reads, named here (not taken from the schema module, whose list
# is what is tested): all but the stat cache's blob, whose rows are in the key themselves, and
# the two counters.
_PLANNED = ("meta", "services", "environments", "assets", "asset_versions", "builds", "pending",
            "build_manifests", "upload_intents", "functions", "function_versions",
            "function_intents", "carried", "variable_digests")
_NOT_PLANNED = {"stat_blob", "state_generation", "versions_generation"}


def test_every_table_of_the_state_is_counted_or_exempt(site: Site) -> None:
    """A table added to the state is added to `_PLANNED` (and gets its triggers) or exempted."""
    site.sync()
    with contextlib.closing(sqlite3.connect(site.state_dir / "state.db")) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {*_PLANNED, *_NOT_PLANNED}


def _generation(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT n FROM state_generation").fetchone()[0])


def _write_each_way(db: Path, table: str) -> list[int]:
    """Insert, update and delete one row of `table` directly; the counter after each."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        columns = conn.execute(f"PRAGMA table_info({table})").fetchall()
    fill = {"TEXT": "gen-test", "INTEGER": 7, "BLOB": b"gen-test"}
    names = [c[1] for c in columns]
    values = [fill[c[2]] for c in columns]
    first, last = names[0], names[-1]
    statements = [
        (f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
         values),
        (f"UPDATE {table} SET {last} = ? WHERE {first} = ?",
         [{"TEXT": "other", "INTEGER": 8, "BLOB": b"other"}[columns[-1][2]], values[0]]),
        (f"DELETE FROM {table} WHERE {first} = ?", [values[0]]),
    ]
    seen = []
    for sql, params in statements:
        with contextlib.closing(sqlite3.connect(db)) as conn, conn:
            assert conn.execute(sql, params).rowcount == 1
        seen.append(_generation(db))
    return seen


@pytest.mark.parametrize("table", _PLANNED)
def test_every_write_to_a_planned_table_moves_the_state_generation(site: Site,
                                                                   table: str) -> None:
    site.sync()
    db = site.state_dir / "state.db"
    start = _generation(db)
    for _ in range(2):
        site.plan()
        site.plan("--json")
    site.plan("-v")
    assert _generation(db) == start  # a plan writes nothing a plan reads: hits are possible
    seen = _write_each_way(db, table)  # a new random value each time (64 bits: never equal)
    assert len({start, *seen}) == 4


def test_a_direct_write_to_any_planned_table_makes_a_new_plan(site: Site) -> None:
    site.sync()
    before = site.aged()
    for table in _PLANNED:
        _write_each_way(site.state_dir / "state.db", table)
        run = site.plan()
        assert not run.hit, table
        assert run.output == before.output  # the same record as before: the same plan
        assert site.plan().hit
