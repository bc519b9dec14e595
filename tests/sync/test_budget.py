"""BuildBudget: rolling hour, reservations, sharing between instances and processes, bad ledgers."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from assetsync.sync.budget import WINDOW_S, BuildBudget, account_key, default_ledger_dir
from tests.watch_harness import FakeResult, FakeWallClock, Recorder, watching

SID = "AC" + "0123456789abcdef" * 2


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, clock: FakeClock, limit: int = 3) -> BuildBudget:
    return BuildBudget(account_key(SID, "serverless.twilio.com"), limit=limit, ledger_dir=tmp_path, clock=clock)


def test_reserve_until_spent_then_the_oldest_build_frees_a_slot_after_an_hour(tmp_path: Path) -> None:
    clock = FakeClock()
    budget = make(tmp_path, clock)
    first = budget.reserve()
    assert first is not None
    clock.now += 100
    assert budget.reserve() is not None
    assert budget.reserve() is not None
    assert budget.remaining() == 0
    assert budget.reserve() is None
    assert budget.next_available_at() == first.at + WINDOW_S
    clock.now = first.at + WINDOW_S - 1
    assert budget.reserve() is None
    clock.now = first.at + WINDOW_S
    assert budget.remaining() == 1
    assert budget.next_available_at() == clock.now
    assert budget.reserve() is not None


def test_settle_frees_an_unused_reservation_and_records_extra_builds(tmp_path: Path) -> None:
    clock = FakeClock()
    budget = make(tmp_path, clock)
    unused = budget.reserve()
    assert unused is not None
    budget.settle(unused, 0)
    assert budget.remaining() == 3
    multi = budget.reserve()
    assert multi is not None
    budget.settle(multi, 2)
    assert budget.used() == 2
    budget.record(2)
    # builds that happened are counted even past the limit; the next slot waits for two to expire
    assert budget.used() == 4
    assert budget.remaining() == 0
    assert budget.next_available_at() == multi.at + WINDOW_S


def test_two_instances_on_one_ledger_share_the_budget_and_keys_separate_accounts(tmp_path: Path) -> None:
    clock = FakeClock()
    one, two = make(tmp_path, clock), make(tmp_path, clock)
    assert one.reserve() is not None
    assert two.reserve() is not None
    assert one.remaining() == 1
    other_host = BuildBudget(account_key(SID, "localhost:8080"), limit=3, ledger_dir=tmp_path, clock=clock)
    assert other_host.remaining() == 3
    # a smaller share configured by one process counts everybody's builds against it
    small = BuildBudget(one.key, limit=2, ledger_dir=tmp_path, clock=clock)
    assert small.reserve() is None


def test_ledger_names_no_account_sid_and_no_secret(tmp_path: Path) -> None:
    clock = FakeClock()
    budget = make(tmp_path, clock)
    budget.record()
    key = account_key(SID, "serverless.twilio.com")
    assert SID not in key and len(key) == 32
    assert account_key(SID, "Serverless.Twilio.com") == key
    for path in tmp_path.iterdir():
        assert SID not in path.name
        assert SID not in path.read_text()


def test_clock_moved_back_counts_future_entries_as_now(tmp_path: Path) -> None:
    clock = FakeClock()
    budget = make(tmp_path, clock, limit=1)
    assert budget.reserve() is not None
    clock.now -= 86_400  # the wall clock jumped back a day
    assert budget.reserve() is None
    assert budget.next_available_at() == clock.now + WINDOW_S


def test_damaged_ledger_is_logged_and_restarted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    budget = make(tmp_path, clock)
    budget.path.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="assetsync.sync.budget"):
        assert budget.reserve() is not None
    assert "unreadable" in caplog.text
    assert json.loads(budget.path.read_text())["version"] == 1
    assert budget.used() == 1


def test_default_ledger_dir_precedence(tmp_path: Path) -> None:
    assert default_ledger_dir({"ASSETSYNC_BUDGET_DIR": str(tmp_path), "XDG_STATE_HOME": "/x"}) == tmp_path
    assert default_ledger_dir({"XDG_STATE_HOME": "/x"}) == Path("/x/assetsync/budget")
    assert default_ledger_dir({}) == Path.home() / ".local/state/assetsync/budget"


_WORKER = """
import sys
from pathlib import Path
from assetsync.sync.budget import BuildBudget
budget = BuildBudget(sys.argv[1], limit=100, ledger_dir=Path(sys.argv[2]))
print(sum(budget.reserve() is not None for _ in range(40)))
"""


def test_concurrent_processes_never_take_more_than_the_limit(tmp_path: Path) -> None:
    key = account_key(SID, "serverless.twilio.com")
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, key, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    taken = [int(p.communicate(timeout=60)[0]) for p in procs]
    assert sum(taken) == 100
    assert BuildBudget(key, ledger_dir=tmp_path).used() == 100


def test_limit_outside_the_account_limit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        BuildBudget("k", limit=101, ledger_dir=tmp_path)


def test_reserving_several_slots_is_all_or_none_and_settles_as_one(tmp_path: Path) -> None:
    clock = FakeClock()
    budget = make(tmp_path, clock, limit=5)
    three = budget.reserve(3)
    assert three is not None and budget.used() == 3
    assert budget.reserve(3) is None and budget.used() == 3  # two left: nothing taken
    assert budget.next_available_at(3) == three.at + WINDOW_S
    assert budget.next_available_at(2) == clock.now
    budget.settle(three, 2)  # the sync built two of its three services
    assert budget.used() == 2 and budget.remaining() == 3
    assert budget.reserve(99) is None  # more than the limit counts as the whole limit
    assert budget.next_available_at(99) == three.at + WINDOW_S


@dataclass(frozen=True, slots=True)
class ShardedResult:
    """The shape of a sharded sync's result that watch reads: one result per service."""

    services: tuple[FakeResult, ...]


def test_watch_of_a_sharded_site_never_builds_past_the_budget(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    wall = FakeWallClock()
    budget = BuildBudget(account_key(SID, "127.0.0.1"), limit=7, ledger_dir=tmp_path / "budget",
                         clock=wall)
    used: list[int] = []

    def three_builds(paths: frozenset[str] | None, /, **_kw: object) -> ShardedResult:
        used.append(budget.used())  # what the ledger held while this sync ran
        return ShardedResult(tuple(FakeResult(f"ZB{len(used)}{i}") for i in range(3)))

    recorder = Recorder(site, inner=three_builds)
    with watching(site, recorder, budget) as running:
        (site / "one.txt").write_text("1")
        recorder.wait_outcomes(2)
        (site / "two.txt").write_text("2")
        waiting = running.wait_event(lambda e: e.status.state == "budget")
        # 3 + 3 builds made, 1 slot left: the next sync of three services waits for the hour.
        assert budget.used() == 6 and len(recorder.calls) == 2
        assert waiting.status.next_build_at == wall.now + WINDOW_S
        wall.now += WINDOW_S
        recorder.wait_for_path("two.txt")
        recorder.wait_outcomes(3)
    # During each sync the ledger held its reservation plus the builds before it: one slot before
    # the first result, then three (one per service); the limit was never passed.
    assert used == [1, 3 + 3, 3]
    assert budget.used() == 3
