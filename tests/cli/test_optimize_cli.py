"""`assetsync optimize`: per-file report, JSON, path selection, errors as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assetsync.cli import main
from tests.test_media_helpers import encode, graphic_rgba, jpeg_with_secrets, noise, photo


def _project(tmp_path: Path, optimize: str = "") -> Path:
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    (site / "img" / "photo.jpg").write_bytes(jpeg_with_secrets())
    (site / "img" / "logo.png").write_bytes(encode(graphic_rgba(), "PNG", compress_level=0))
    (site / "mms").mkdir()
    (site / "mms" / "card.png").write_bytes(encode(photo(), "PNG"))
    (site / "readme.txt").write_text("hi\n")
    config = tmp_path / ".assetsync.toml"
    config.write_text('[project]\nsource = "site"\nservice = "demo"\n\n'
                      '[optimize]\neffort = 1\n' + optimize)
    return config


def test_report_lists_every_file_and_caches_in_the_state_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _project(tmp_path, '[optimize.profiles.mms]\nglobs = ["mms/**"]\n')
    code = main(["-c", str(config), "optimize", "--report", "--workers", "1"])
    out = capsys.readouterr().out
    assert code == 0
    for path in ("/img/photo.jpg", "/img/logo.png", "/mms/card.png", "/mms/mms/card.jpg"):
        assert path in out
    assert "readme.txt" not in out
    assert "3 image(s)" in out and "1 variant(s)" in out and "4 encoded" in out
    assert any((tmp_path / ".assetsync" / "transform" / "objects").rglob("*.jpg"))
    main(["-c", str(config), "optimize", "--report", "--workers", "1"])
    again = capsys.readouterr().out
    assert "0 encoded, 4 from cache" in again and "cached" in again


def test_json_output_has_sizes_savings_and_totals(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _project(tmp_path)
    assert main(["-c", str(config), "optimize", "--json", "--workers", "1"]) == 0
    payload = json.loads(capsys.readouterr().out)
    rows = {row["path"]: row for row in payload["files"]}
    assert set(rows) == {"/img/photo.jpg", "/img/logo.png", "/mms/card.png"}
    for row in rows.values():
        assert row["after"] < row["before"] and row["saving_pct"] > 0
        assert row["outcome"] == "optimized" and row["cached"] is False
    totals = payload["totals"]
    assert totals["bytes_saved"] == totals["bytes_before"] - totals["bytes_after"] > 0
    assert payload["issues"] == []


def test_paths_select_files_and_a_path_outside_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _project(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["-c", str(config), "optimize", "--json", "--workers", "1", "site/img"]) == 0
    rows = [row["path"] for row in json.loads(capsys.readouterr().out)["files"]]
    assert sorted(rows) == ["/img/logo.png", "/img/photo.jpg"]
    assert main(["-c", str(config), "optimize", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not inside the source folder" in err and err.count("\n") == 1


def test_source_flag_works_without_a_config(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(tmp_path).unlink()
    monkeypatch.chdir(tmp_path)
    assert main(["optimize", "--source", "site", "--workers", "1"]) == 0
    assert "3 image(s)" in capsys.readouterr().out
    assert not (tmp_path / ".assetsync").exists()
    assert main(["optimize", "--workers", "1"]) == 2  # no config and no --source
    assert "no such config file" in capsys.readouterr().err


def test_budget_failure_exits_1_naming_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _project(tmp_path, '[optimize.profiles.tiny]\nglobs = ["mms/**"]\n'
                                'max_bytes = 100\nformat = "jpeg"\n')
    (tmp_path / "site" / "mms" / "card.png").write_bytes(encode(noise(200, 200), "PNG"))
    assert main(["-c", str(config), "optimize", "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert "error: mms/card.png: variant 'tiny':" in out and "best size reached" in out


def test_bad_optimize_key_is_one_line_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _project(tmp_path, "colour = 3\n")
    assert main(["-c", str(config), "optimize"]) == 2
    err = capsys.readouterr().err
    assert "[optimize] colour" in err and ".assetsync.toml" in err and err.count("\n") == 1


def test_prune_drops_what_the_current_settings_no_longer_use(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _project(tmp_path, '[optimize.profiles.mms]\nglobs = ["mms/**"]\n')
    cache = tmp_path / ".assetsync" / "transform"
    assert main(["-c", str(config), "optimize", "--workers", "1"]) == 0
    with_variant = sorted(p.name for p in (cache / "objects").rglob("*.*"))
    assert len(with_variant) == 4
    config.write_text(config.read_text().replace('globs = ["mms/**"]', 'globs = ["none/**"]'))
    capsys.readouterr()
    assert main(["-c", str(config), "optimize", "--workers", "1", "--prune"]) == 0
    out = capsys.readouterr().out
    assert "0 encoded, 3 from cache" in out
    remaining = sorted(p.name for p in (cache / "objects").rglob("*.*"))
    assert len(remaining) == 3 and set(remaining) < set(with_variant)
    assert len(list((cache / "index").rglob("*.json"))) == 3
    freed = int(out.split("pruned ")[1].split(" bytes")[0].replace(",", ""))
    assert freed > 0
    assert main(["-c", str(config), "optimize", "--prune", "site/img"]) == 2


def test_report_says_when_a_variant_keeps_its_source(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _project(tmp_path, '[optimize.profiles.whatsapp]\nglobs = ["wa/**"]\n')
    wa = tmp_path / "site" / "wa"
    wa.mkdir()
    source = encode(photo(900, 600), "JPEG", quality=60)
    (wa / "photo.jpg").write_bytes(source)
    assert main(["-c", str(config), "optimize", "--report", "--workers", "1"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "/whatsapp/wa/photo.jpg" in x)
    assert "variant: source kept: it fits the channel as it is" in line
    assert main(["-c", str(config), "optimize", "--json", "--workers", "1"]) == 0
    rows = {r["path"]: r for r in json.loads(capsys.readouterr().out)["files"]}
    assert rows["/whatsapp/wa/photo.jpg"]["after"] <= len(source)
