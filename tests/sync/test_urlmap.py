"""The URL map: building, JSON/CSV rendering, and the atomic writer, on real files."""

from __future__ import annotations

import csv
import io
import json
import stat
from pathlib import Path

import pytest

from assetsync.errors import ConfigError
from assetsync.limits import BuildLimits
from assetsync.models import Visibility
from assetsync.plan.shard import ShardOptions, shard
from assetsync.sync.urlmap import (
    CSV_COLUMNS,
    UrlEntry,
    asset_url,
    build_url_map,
    render_csv,
    render_json,
    render_url_map,
    url_map_format,
    write_url_map,
)
from tests.plan.test_shard import published

DOMAINS = {"media": "media-1234-dev.twil.io", "media-2": "media-2-5678-dev.twil.io"}
FILES = [
    ("/img/b.png", Visibility.PUBLIC, "media-2"),
    ("/img/a.png", "public", "media"),
    ("/calls/hold music é.mp3", Visibility.PROTECTED, "media"),
    ("/keys/config.json", Visibility.PRIVATE, "media"),
]


def test_public_and_protected_files_get_urls_private_ones_none() -> None:
    entries = build_url_map(FILES, DOMAINS)
    assert [e.path for e in entries] == ["/calls/hold music é.mp3", "/img/a.png", "/img/b.png"]
    assert entries[1] == UrlEntry(
        path="/img/a.png",
        service="media",
        environment_domain="media-1234-dev.twil.io",
        url="https://media-1234-dev.twil.io/img/a.png",
        visibility=Visibility.PUBLIC,
    )
    assert entries[2].url == "https://media-2-5678-dev.twil.io/img/b.png"
    assert entries[0].url == "https://media-1234-dev.twil.io/calls/hold%20music%20%C3%A9.mp3"
    assert entries[0].visibility is Visibility.PROTECTED


def test_exclude_origin_and_missing_domain() -> None:
    entries = build_url_map(FILES, DOMAINS, exclude={"/img/a.png"}, origin="http://127.0.0.1:9")
    assert "/img/a.png" not in {e.path for e in entries}
    assert entries[-1].url == "http://127.0.0.1:9/img/b.png"
    with pytest.raises(ValueError, match="media-2"):
        build_url_map(FILES, {"media": "m.twil.io"})
    assert asset_url("d.twil.io", "/a+b/ü.txt") == "https://d.twil.io/a%2Bb/%C3%BC.txt"


def test_json_is_a_sorted_lookup_table() -> None:
    text = render_json(reversed(build_url_map(FILES, DOMAINS)))
    assert text.endswith("\n")
    table = json.loads(text)
    assert list(table) == ["/calls/hold music é.mp3", "/img/a.png", "/img/b.png"]
    assert table["/img/b.png"] == "https://media-2-5678-dev.twil.io/img/b.png"
    detailed = json.loads(render_json(build_url_map(FILES, DOMAINS), detailed=True))
    assert detailed[2] == {
        "path": "/img/b.png",
        "url": "https://media-2-5678-dev.twil.io/img/b.png",
        "visibility": "public",
        "service": "media-2",
        "environment_domain": "media-2-5678-dev.twil.io",
    }


def test_csv_round_trips_through_a_csv_reader() -> None:
    text = render_csv(build_url_map(FILES, DOMAINS))
    assert text.splitlines()[0] == ",".join(CSV_COLUMNS)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["path"] for r in rows] == ["/calls/hold music é.mp3", "/img/a.png", "/img/b.png"]
    assert rows[0]["visibility"] == "protected"
    assert rows[2]["service"] == "media-2"
    assert render_url_map([], "csv") == ",".join(CSV_COLUMNS) + "\n"
    assert render_url_map([], "json") == "{}\n"
    with pytest.raises(ValueError, match="xml"):
        render_url_map([], "xml")


def test_format_follows_the_file_suffix() -> None:
    assert url_map_format("urls.CSV") == "csv"
    assert url_map_format(Path("public/urls.json")) == "json"


def test_writer_is_atomic_idempotent_and_creates_folders(tmp_path: Path) -> None:
    target = tmp_path / "public" / "data" / "urls.csv"
    entries = build_url_map(FILES, DOMAINS)
    assert write_url_map(target, entries) is True
    assert target.read_text(encoding="utf-8") == render_csv(entries)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    before = target.stat()
    assert write_url_map(target, entries) is False
    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert write_url_map(target, entries[:1]) is True
    assert len(target.read_text(encoding="utf-8").splitlines()) == 2
    assert sorted(p.name for p in target.parent.iterdir()) == ["urls.csv"]  # no temp files left
    as_json = tmp_path / "urls.json"
    write_url_map(as_json, entries)
    assert json.loads(as_json.read_text(encoding="utf-8"))["/img/a.png"].startswith("https://")


def test_writer_keeps_the_existing_file_mode(tmp_path: Path) -> None:
    target = tmp_path / "urls.json"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o640)
    assert write_url_map(target, build_url_map(FILES, DOMAINS)) is True
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_unwritable_target_is_one_clear_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "site"
    blocker.write_text("a file where a folder should be", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        write_url_map(blocker / "urls.json", build_url_map(FILES, DOMAINS))
    message = str(info.value)
    assert "cannot write the URL map" in message and "[sync] urls_file" in message
    assert "\n" not in message
    assert info.value.key == "sync.urls_file"


def test_map_of_a_sharded_site_points_each_file_at_its_service() -> None:
    files = [published(f"/img/{i}.png") for i in range(5)] + [
        published("/p.bin", Visibility.PRIVATE)
    ]
    result = shard(
        files, {}, ShardOptions(limits=BuildLimits(public_protected=3)), base_service="media"
    )
    entries = build_url_map(
        ((f.path, f.visibility, result.assignment[f.path]) for f in files), DOMAINS
    )
    assert len(entries) == 5
    for entry in entries:
        assert entry.url == f"https://{DOMAINS[result.assignment[entry.path]]}{entry.path}"
    assert {e.service for e in entries} == {"media", "media-2"}
