"""`assetsync plan`, `init` and `state` through main(): the fixture tree's plan for every
visibility and ignore case, bad inputs (each named, the rest planned), exit codes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from assetsync.cli import main
from assetsync.state.db import State

REPO = Path(__file__).resolve().parents[2]

# What the repository's .assetsync.toml must publish from fixtures/site, and how.
EXPECTED = {
    "/index.html": "public",
    "/css/site.css": "public",
    "/data/menu.json": "public",
    "/img/logo.png": "public",
    "/img/icon.svg": "public",
    "/img/spinner.gif": "public",
    "/img/team-photo.jpg": "public",  # whitespace -> '-'
    "/audio/welcome.mp3": "public",
    "/audio/hold-music.wav": "protected",  # hold-music.protected.wav (toolkit marker)
    "/data/pricing.json": "private",  # pricing.private.json (toolkit marker)
    "/audio/ivr/menu.wav": "protected",  # [visibility] protected glob
    "/data/internal/roster.json": "private",  # [visibility] private glob
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repository's config and fixture tree."""
    shutil.copytree(REPO / "fixtures" / "site", tmp_path / "fixtures" / "site")
    shutil.copy(REPO / ".assetsync.toml", tmp_path / ".assetsync.toml")
    return tmp_path


def _plan_json(
    project: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    code = main(["-c", str(project / ".assetsync.toml"), "plan", "--json", *extra])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_fixture_plan_every_visibility_and_ignore_case(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data, err = _plan_json(project, capsys)
    assert code == 0, err
    assert data["valid"] is True and data["issues"] == []
    got = {u["path"]: u["visibility"] for u in data["uploads"]}
    assert got == EXPECTED  # nothing ignored or denied slipped in, nothing missing
    assert data["create_assets"] == sorted(EXPECTED)
    assert data["counts"]["public"] == 8 and data["counts"]["protected"] == 2
    assert data["counts"]["private"] == 2
    sources = {u["source"] for u in data["uploads"]}
    for never in (".env", "img/.DS_Store", "drafts/logo-draft.png", "img/logo.psd"):
        assert never in {
            p.relative_to(project / "fixtures/site").as_posix()
            for p in (project / "fixtures/site").rglob("*")
            if p.is_file()
        }
        assert never not in sources
    types = {u["path"]: u["content_type"] for u in data["uploads"]}
    assert types["/audio/welcome.mp3"] == "audio/mpeg"
    assert types["/img/icon.svg"] == "image/svg+xml"
    assert types["/audio/hold-music.wav"] == "audio/wav"


def test_human_output_and_second_run_uses_the_stat_cache(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-c", str(project / ".assetsync.toml"), "plan"]) == 0
    out = capsys.readouterr().out
    assert "12 new assets, 12 uploads" in out
    assert "upload protected /audio/ivr/menu.wav" in " ".join(out.split())
    assert "8 public + 2 protected = 10 of 1000, 2 private of 50" in out
    # the stat cache is in the state folder: entries are there after the first run
    with State.open(project / ".assetsync") as state:
        assert len(state.stat_entries()) == 12


def test_bad_files_each_named_exit_1_rest_still_planned(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = project / "fixtures" / "site"
    (site / "img" / "bad#name.png").write_bytes(b"x")
    (site / "img" / "logo.private.png").write_bytes(b"dup")  # same path as img/logo.png
    with open(site / "audio" / "huge.mp3", "wb") as f:  # sparse: no disk space needed
        f.truncate(25_000_001)
    os.symlink("/etc/hostname", site / "outside.txt")
    code, data, err = _plan_json(project, capsys)
    assert code == 1
    assert data["valid"] is False
    errors = {(i["path"], i["severity"]) for i in data["issues"] if i["severity"] == "error"}
    assert {p for p, _s in errors} == {
        "img/bad#name.png",
        "img/logo.private.png",
        "audio/huge.mp3",
        "outside.txt",
    }
    by_path = {i["path"]: i["message"] for i in data["issues"]}
    assert "contains '#'" in by_path["img/bad#name.png"]
    assert "img/logo.png" in by_path["img/logo.private.png"]
    assert "25 MB" in by_path["audio/huge.mp3"]
    assert "outside the source folder" in by_path["outside.txt"]
    planned = {u["path"] for u in data["uploads"]}
    assert planned == set(EXPECTED) - {"/img/logo.png"}  # the rest of the run went on
    assert err == ""  # --json: issues are in the document, stdout is one JSON value
    code = main(["-c", str(project / ".assetsync.toml"), "plan"])
    human_err = capsys.readouterr().err
    assert code == 1
    assert "error: img/bad#name.png: published path '/img/bad#name.png' contains '#'" in human_err
    assert "4 file(s) cannot be published" in human_err


def test_after_a_sync_the_plan_is_a_noop_and_an_edit_is_one_upload(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """plan and sync prepare files the same way (optimized images included)."""
    cfg = str(project / ".assetsync.toml")
    assert main(["-c", cfg, "sync"]) == 0
    capsys.readouterr()
    code, data, _err = _plan_json(project, capsys)
    assert code == 0 and data["noop"] is True
    assert len(data["reuses"]) == len(EXPECTED) and data["uploads"] == []
    (project / "fixtures/site/css/site.css").write_text("body { color: red; }\n")
    code, data, _err = _plan_json(project, capsys)
    assert [u["path"] for u in data["uploads"]] == ["/css/site.css"]
    assert data["create_assets"] == [] and data["needs_build"] is True
    (project / "fixtures/site/img/logo.png").unlink()
    code, data, _err = _plan_json(project, capsys)
    assert data["drops"] == ["/img/logo.png"]


def test_source_dot_never_publishes_its_config_or_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.png").write_bytes(b"a")
    cfg = tmp_path / "publish[1].toml"  # any name, glob characters included
    cfg.write_text('[project]\nsource = "."\nservice = "demo"\n')
    assert main(["-c", str(cfg), "plan", "--json"]) == 0
    assert main(["-c", str(cfg), "plan", "--json"]) == 0  # the state folder exists now
    out = capsys.readouterr().out.splitlines()
    assert [u["path"] for u in json.loads(out[-1])["uploads"]] == ["/a.png"]


def test_config_error_is_one_line_exit_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = project / ".assetsync.toml"
    cfg.write_text(cfg.read_text() + "\n[sync]\nconcurency = 3\n")
    assert main(["-c", str(cfg), "plan"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{cfg}: [sync] concurency: unknown key" in err


def test_missing_source_folder_is_one_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(project / "fixtures")
    assert main(["-c", str(project / ".assetsync.toml"), "plan"]) == 2  # a config problem
    err = capsys.readouterr().err
    assert "fixtures/site does not exist: fix [project] source" in err and err.count("\n") == 1


def test_plan_runs_read_only_beside_a_lock_holder(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = str(project / ".assetsync.toml")
    assert main(["-c", cfg, "plan", "--json"]) == 0  # creates the state
    capsys.readouterr()
    with State.open(project / ".assetsync"):  # e.g. `assetsync watch` running
        code, data, err = _plan_json(project, capsys)
        assert code == 0 and {u["path"] for u in data["uploads"]} == set(EXPECTED)
        assert f"another assetsync is running (pid {os.getpid()})" in err
        assert "read-only" in err
        export = project / "state.json"
        assert main(["-c", cfg, "state", "export", "-o", str(export)]) == 0
        assert main(["-c", cfg, "state", "import", str(export)]) == 3  # a writer: refused
    assert "another assetsync is running" in capsys.readouterr().err


def test_environment_flag_overrides_config(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data, _err = _plan_json(project, capsys, "--environment", "stage")
    assert code == 0 and data["environment"] == "stage"


def test_init_writes_a_template_that_plans_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "a.png").write_bytes(b"a")
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    text = (tmp_path / ".assetsync.toml").read_text()
    assert 'source = "static"' in text and "#" in text
    capsys.readouterr()
    assert main(["plan", "--json"]) == 0
    assert [u["path"] for u in json.loads(capsys.readouterr().out)["uploads"]] == ["/a.png"]
    assert main(["init"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / ".assetsync.toml").read_text() == text


def test_state_export_import_cli(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(project / ".assetsync.toml")
    assert main(["-c", cfg, "plan", "--json"]) == 0
    capsys.readouterr()
    out_file = project / "state.json"
    assert main(["-c", cfg, "state", "export", "-o", str(out_file)]) == 0
    exported = json.loads(out_file.read_text())
    assert len(exported["tables"]["stat_cache"]) == 12
    shutil.rmtree(project / ".assetsync")
    assert main(["-c", cfg, "state", "import", str(out_file)]) == 0
    with State.open(project / ".assetsync") as state:
        assert len(state.stat_entries()) == 12
    out_file.write_text("{not json")
    assert main(["-c", cfg, "state", "import", str(out_file)]) == 1
    assert "is not JSON" in capsys.readouterr().err


def test_channel_warnings_for_types_the_channel_rejects_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 5.3: a file under a channel profile whose type that channel does not take is a
    warning in the plan (by content, not by name), and the plan stays valid."""
    site = tmp_path / "site"
    (site / "mms").mkdir(parents=True)
    (site / "stickers").mkdir()
    # An iPhone photo saved as .jpg: HEIC by content (ISO-BMFF `ftyp` box, brand `heic`).
    (site / "mms" / "photo.jpg").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    (site / "stickers" / "wave.webp").write_bytes(b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(64))
    (site / "mms" / "notes.txt").write_text("plain text is no image: no image-type warning\n")
    cfg = tmp_path / "site.toml"
    cfg.write_text(
        '[project]\nsource = "site"\nservice = "media"\n'
        '[optimize.profiles.mms]\nglobs = ["mms/**"]\n'
        '[optimize.profiles.stickers]\nglobs = ["stickers/**"]\nchannel = "mms"\nvariant = false\n'
    )
    code = main(["-c", str(cfg), "plan", "--json"])
    out, _err = capsys.readouterr()
    data = json.loads(out)
    assert code == 0 and data["valid"] is True
    warned = {i["path"]: i["message"] for i in data["issues"] if i["severity"] == "warning"}
    assert set(warned) == {"mms/photo.jpg", "stickers/wave.webp"}
    assert "HEIC is not transcoded by Twilio for MMS" in warned["mms/photo.jpg"]
    assert "(profile 'mms')" in warned["mms/photo.jpg"]
    assert "WEBP" in warned["stickers/wave.webp"] and "'stickers'" in warned["stickers/wave.webp"]
    assert {u["path"] for u in data["uploads"]} == {
        "/mms/photo.jpg", "/stickers/wave.webp", "/mms/notes.txt"}
    code = main(["-c", str(cfg), "plan"])
    err = capsys.readouterr().err
    assert code == 0
    assert "warning: mms/photo.jpg: HEIC is not transcoded by Twilio for MMS" in err


def _site(root: Path, public: int, private: int = 0) -> Path:
    site = root / "site"
    for i in range(public):
        (site / "img").mkdir(parents=True, exist_ok=True)
        (site / "img" / f"{i:04d}.txt").write_text(f"public {i}\n")
    for i in range(private):
        (site / "data").mkdir(parents=True, exist_ok=True)
        (site / "data" / f"{i:04d}.private.json").write_text(f'{{"n": {i}}}\n')
    return site


def test_sharded_plan_shows_counts_per_service_and_every_move(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 7.4: with [shard], per-service counts against each limit, and the files that
    move (after a sync recorded where each file lives) with their reason."""
    _site(tmp_path, public=5, private=2)
    cfg = tmp_path / "site.toml"
    head = '[project]\nsource = "site"\nservice = "media"\n[shard]\n'
    cfg.write_text(head + "public_protected_per_build = 3\nprivate_per_build = 1\n")
    code = main(["-c", str(cfg), "plan", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["valid"] is True
    shard = data["shard"]
    counts = {s["service"]: (s["public_protected"], s["private"]) for s in shard["services"]}
    assert counts == {"media": (3, 1), "media-2": (2, 1)}
    assert shard["limits"]["public_protected"] == 3 and shard["limits"]["private"] == 1
    assert shard["moves"] == []
    assert {u["service"] for u in data["uploads"]} == {"media", "media-2"}
    assert len(data["uploads"]) == 7 and data["counts"]["private"] == 2
    assert all(s["uploads"] == a + b for s, (a, b) in
               zip(shard["services"], counts.values(), strict=True))

    in_second = [u["source"] for u in data["uploads"] if u["service"] == "media-2"]
    second_paths = sorted(u["path"] for u in data["uploads"] if u["service"] == "media-2")
    assert main(["-c", str(cfg), "sync"]) == 0
    capsys.readouterr()
    # A lower limit overflows the first service: exactly the excess moves, and says why.
    cfg.write_text(head + "public_protected_per_build = 2\nprivate_per_build = 1\n")
    code = main(["-c", str(cfg), "plan", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    moves = data["shard"]["moves"]
    assert len(moves) == 1 and moves[0]["from"] == "media" and moves[0]["reason"] == "overflow"
    moved = moves[0]["path"]
    assert moved in data["drops"]  # dropped from its old service ...
    assert {u["path"]: u["service"] for u in data["uploads"]}[moved] == moves[0]["to"]  # ... added
    for s in data["shard"]["services"]:
        assert s["public_protected"] <= 2 and s["private"] <= 1

    assert main(["-c", str(cfg), "plan"]) == 0
    out = capsys.readouterr().out
    assert "media: 2/2 public+protected, 1/1 private, 0/50 functions" in out
    assert f"{moved}: media -> {moves[0]['to']} (overflow: its service would pass" in out
    assert "1 file(s) move to another service" in out

    # Every file of the second service deleted: it is retired (sync deletes its environments,
    # as Twilio refuses an empty build), so its files are dropped.
    cfg.write_text(head + "public_protected_per_build = 3\nprivate_per_build = 1\n")
    for source in in_second:
        (tmp_path / "site" / source).unlink()
    code = main(["-c", str(cfg), "plan", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["shard"]["retired"] == ["media-2"]
    assert [s["service"] for s in data["shard"]["services"]] == ["media"]
    assert data["drops"] == second_paths and data["uploads"] == []
    assert main(["-c", str(cfg), "plan"]) == 0
    assert "media-2: holds no file now; sync deletes its environments" in capsys.readouterr().out


def test_site_over_one_build_without_shard_section_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No [shard] section: a site over one build's limits is spread as `sync` spreads it,
    and one line says so; when it cannot be spread at all, one error line and exit 1."""
    _site(tmp_path, public=0, private=51)
    cfg = tmp_path / "site.toml"
    cfg.write_text('[project]\nsource = "site"\nservice = "media"\n')
    code = main(["-c", str(cfg), "plan"])
    out, err = capsys.readouterr()
    assert code == 0
    lines = [line for line in err.splitlines() if "does not fit one build" in line]
    assert len(lines) == 1 and err.count("\n") == 1
    assert "51 private of 50" in lines[0] and "2 services (media, media-2)" in lines[0]
    assert "[shard]" in lines[0]
    assert "media: 0/1000 public+protected, 50/50 private" in out
    assert "media-2: 0/1000 public+protected, 1/50 private" in out

    cfg.write_text('[project]\nsource = "site"\nservice = "media"\n[shard]\nmax_services = 1\n')
    code = main(["-c", str(cfg), "plan", "--json"])
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert code == 1 and data["valid"] is False and data["shard"] is None
    errors = [i for i in data["issues"] if i["severity"] == "error"]
    assert len(errors) == 1  # the reason, not one line per limit on top of it
    assert "max_services is 1" in errors[0]["message"]
    assert len(data["uploads"]) == 51  # the listing is still complete


def test_a_plan_with_nothing_to_encode_imports_no_encoder_and_no_http(tmp_path: Path) -> None:
    """Start-up is most of a no-change plan's time: Pillow, oxipng, mozjpeg, httpx and the
    emulator are loaded only by work that needs them (a fresh interpreter, as a user runs it)."""
    import subprocess
    import sys

    _site(tmp_path, public=3)
    (tmp_path / "site" / "mms").mkdir()
    (tmp_path / "site" / "mms" / "photo.jpg").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    cfg = tmp_path / "site.toml"
    cfg.write_text('[project]\nsource = "site"\nservice = "media"\n'
                   '[optimize.profiles.mms]\nglobs = ["mms/**"]\n')
    code = (
        "import sys, io\n"
        "from assetsync.cli import main\n"
        "out, sys.stdout = sys.stdout, io.StringIO()\n"
        f"rc = main(['-c', {str(cfg)!r}, 'plan', '--json'])\n"
        "sys.stdout = out\n"
        "heavy = ('PIL', 'oxipng', 'mozjpeg_lossless_optimization', 'httpx', 'assetsync.emulator',"
        " 'assetsync.sync.run')\n"
        "print(rc, sorted(m for m in heavy if m in sys.modules))\n"
    )
    for _run in range(2):  # the second run also finds every type in the cache
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, cwd=tmp_path)
        assert done.stdout.strip() == "0 []", done.stderr
