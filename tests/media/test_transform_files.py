"""The transform stage over real files: replacement, variants, cache, determinism, issues."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import xxhash

from assetsync.media.options import OptimizeOptions, parse_optimize_section
from assetsync.media.stage import TransformResult, transform_files
from assetsync.models import DIGEST_PREFIX, PublishedFile, Visibility
from assetsync.prepare.classify import content_type_for
from assetsync.results import SyncEvent
from assetsync.scan.rules import hash_file
from tests.test_media_helpers import decode, encode, graphic_rgba, jpeg_with_secrets, noise, photo


def _tree(root: Path, files: dict[str, bytes],
          visibility: Visibility = Visibility.PUBLIC) -> list[PublishedFile]:
    published = []
    for rel, data in sorted(files.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        published.append(PublishedFile(f"/{rel}", visibility, hash_file(path), len(data), rel,
                                       str(path), content_type_for(rel)))
    return published


def _options(**profiles: dict[str, object]) -> OptimizeOptions:
    table: dict[str, object] = {"effort": 1, "profiles": profiles}
    return parse_optimize_section(table, file="test.toml")


def _run(tmp_path: Path, files: list[PublishedFile], options: OptimizeOptions,
         **kw: object) -> TransformResult:
    return transform_files(files, options, source=tmp_path / "src",
                           cache_dir=tmp_path / "state" / "transform", **kw)  # type: ignore[arg-type]


def _by_path(result: TransformResult) -> dict[str, PublishedFile]:
    return {f.path: f for f in result.files}


def test_images_are_replaced_by_smaller_cached_output(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src", {
        "img/photo.jpg": jpeg_with_secrets(),
        "img/logo.png": encode(graphic_rgba(), "PNG", compress_level=0),
        "notes.txt": b"hello\n",
    })
    result = _run(tmp_path, files, _options(), workers=1)
    out = _by_path(result)
    assert set(out) == {"/img/photo.jpg", "/img/logo.png", "/notes.txt"}
    for path in ("/img/photo.jpg", "/img/logo.png"):
        new, old = out[path], next(f for f in files if f.path == path)
        assert new.size < old.size
        data = Path(new.content_path).read_bytes()
        assert len(data) == new.size
        assert new.digest == DIGEST_PREFIX + xxhash.xxh3_128_hexdigest(data)
        assert (tmp_path / "state" / "transform") in Path(new.content_path).parents
        assert new.source == old.source and new.visibility == old.visibility
    assert out["/img/photo.jpg"].content_type == "image/jpeg"
    assert b"SecretCam" not in Path(out["/img/photo.jpg"].content_path).read_bytes()
    assert out["/notes.txt"] == next(f for f in files if f.path == "/notes.txt")
    assert result.stats.images == 2 and result.stats.optimized == 2
    assert result.stats.bytes_after < result.stats.bytes_before
    assert {r.outcome for r in result.reports} == {"optimized"}


def test_variants_get_derived_paths_and_the_same_visibility(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src", {"mms/a.png": encode(photo(), "PNG"),
                                     "mms/sub/b.jpg": encode(photo(), "JPEG"),
                                     "web/c.jpg": encode(photo(), "JPEG")},
                  visibility=Visibility.PROTECTED)
    options = _options(mms={"globs": ["mms/**"]},
                       thumbs={"globs": ["*.jpg"], "path": "/t/{dir}/{stem}-small.{ext}",
                               "max_width": 50, "max_height": 50})
    out = _by_path(_run(tmp_path, files, options, workers=1))
    assert {p for p, f in out.items() if f.variant == "mms"} == {"/mms/mms/a.jpg",
                                                                "/mms/mms/sub/b.jpg"}
    assert {p for p, f in out.items() if f.variant == "thumbs"} == {"/t/mms/sub/b-small.jpg",
                                                                   "/t/web/c-small.jpg"}
    small = out["/t/web/c-small.jpg"]
    assert small.visibility == Visibility.PROTECTED and small.source == "web/c.jpg"
    assert max(decode(Path(small.content_path).read_bytes()).size) <= 50
    assert out["/mms/mms/a.jpg"].content_type == "image/jpeg"


def test_second_run_hits_the_cache_and_is_identical(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src", {"a.jpg": encode(photo(), "JPEG", quality=90),
                                     "b.png": encode(photo(), "PNG")})
    options = _options(mms={"globs": ["*"]})
    first = _run(tmp_path, files, options, workers=1)
    second = _run(tmp_path, files, options, workers=1)
    assert first.stats.encoded == 4 and first.stats.cache_hits == 0
    assert second.stats.encoded == 0 and second.stats.cache_hits == 4
    assert first.files == second.files
    # Same content under another name shares the cache entry: encoded once.
    twin = _tree(tmp_path / "src", {"copy.jpg": (tmp_path / "src/a.jpg").read_bytes()})
    assert _run(tmp_path, twin, options, workers=1).stats.encoded == 0


@pytest.mark.parametrize("same_size", [False, True])
def test_a_damaged_cache_file_is_re_encoded_not_published(tmp_path: Path,
                                                          same_size: bool) -> None:
    files = _tree(tmp_path / "src", {"a.jpg": encode(photo(), "JPEG", quality=90)})
    first = _run(tmp_path, files, _options(), workers=1)
    cached = Path(first.files[0].content_path)
    good = cached.read_bytes()
    damaged = bytes(len(good)) if same_size else b"\xff\xd8garbage"
    written = cached.stat().st_mtime_ns
    cached.write_bytes(damaged)
    # Damage comes later than the write; make that visible even on a coarse clock.
    os.utime(cached, ns=(written, written + 1_000_000_000))
    second = _run(tmp_path, files, _options(), workers=1)
    assert second.stats.encoded == 1
    assert Path(second.files[0].content_path).read_bytes() == good
    assert second.files[0].digest == first.files[0].digest
    assert _run(tmp_path, files, _options(), workers=1).stats.encoded == 0


def test_changing_the_recipe_misses_the_cache(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src", {"a.jpg": jpeg_with_secrets()})
    _run(tmp_path, files, _options(), workers=1)
    kept = _run(tmp_path, files, parse_optimize_section({"keep_metadata": True, "effort": 1},
                                                        file="t.toml"), workers=1)
    assert kept.stats.encoded == 1
    assert b"SecretCam" in Path(kept.files[0].content_path).read_bytes()


def test_output_is_byte_identical_across_caches_and_worker_counts(tmp_path: Path) -> None:
    sources = {f"p{i}.png": encode(photo(seed=i), "PNG") for i in range(3)}
    sources["j.jpg"] = jpeg_with_secrets(orientation=6)
    files = _tree(tmp_path / "src", sources)
    options = _options(mms={"globs": ["*"], "max_bytes": 20_000})
    inline = transform_files(files, options, source=tmp_path / "src",
                             cache_dir=tmp_path / "c1", workers=1)
    pooled = transform_files(files, options, source=tmp_path / "src",
                             cache_dir=tmp_path / "c2", workers=2)
    assert [f.digest for f in inline.files] == [f.digest for f in pooled.files]
    assert [f.path for f in inline.files] == [f.path for f in pooled.files]
    for a, b in zip(inline.files, pooled.files, strict=True):
        assert Path(a.content_path).read_bytes() == Path(b.content_path).read_bytes()
    assert pooled.stats.variants == 4


def test_corrupt_image_is_published_as_is_with_a_warning(tmp_path: Path) -> None:
    good = encode(photo(), "JPEG")
    files = _tree(tmp_path / "src", {"bad.jpg": good[: len(good) // 2], "ok.jpg": good})
    result = _run(tmp_path, files, _options(), workers=1)
    assert _by_path(result)["/bad.jpg"] == files[0]
    (issue,) = result.issues
    assert issue.path == "bad.jpg" and issue.severity == "warning"
    assert "published as is" in issue.message and "\n" not in issue.message
    strict = parse_optimize_section({"strict": True, "effort": 1}, file="t.toml")
    (issue,) = _run(tmp_path, files, strict, workers=1).issues
    assert issue.severity == "error"


def test_budget_failure_is_an_error_naming_the_file_and_best_size(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src", {"big.png": encode(noise(300, 300), "PNG")})
    options = _options(mms={"globs": ["*"], "max_bytes": 100, "format": "jpeg"})
    result = _run(tmp_path, files, options, workers=1)
    assert all(f.variant is None for f in result.files)
    (issue,) = result.issues
    assert issue.severity == "error" and issue.path == "big.png"
    assert "best size reached" in issue.message and "'mms'" in issue.message


def test_type_comes_from_content_and_excludes_are_left_alone(tmp_path: Path) -> None:
    png = encode(graphic_rgba(), "PNG", compress_level=0)
    files = _tree(tmp_path / "src", {"looks.jpg": png, "raw/keep.png": png,
                                     "fake.png": b"not an image at all"})
    options = parse_optimize_section({"exclude": ["raw/**"], "effort": 1}, file="t.toml")
    out = _by_path(_run(tmp_path, files, options, workers=1))
    assert out["/looks.jpg"].content_type == "image/png" and out["/looks.jpg"].size < len(png)
    assert out["/raw/keep.png"].size == len(png)
    assert out["/fake.png"].content_path == str(tmp_path / "src/fake.png")


def test_content_type_follows_the_content_even_when_nothing_is_re_encoded(
        tmp_path: Path) -> None:
    png = encode(graphic_rgba(), "PNG")
    files = _tree(tmp_path / "src", {"misnamed.jpg": png, "right.png": png})
    options = parse_optimize_section({"lossless": False}, file="t.toml")
    out = _by_path(_run(tmp_path, files, options, workers=1))
    assert out["/misnamed.jpg"].content_type == "image/png"
    assert out["/misnamed.jpg"].content_path == str(tmp_path / "src/misnamed.jpg")
    assert out["/right.png"].content_type == "image/png"


def test_variant_path_collision_is_an_error(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src", {"a.png": encode(photo(), "PNG"),
                                     "a.jpg": encode(photo(), "JPEG")})
    options = _options(flat={"globs": ["*"], "path": "/{stem}.{ext}", "format": "jpeg"})
    result = _run(tmp_path, files, options, workers=1)
    assert any(i.severity == "error" and "already published from" in i.message for i in result.issues)
    assert len({f.path for f in result.files}) == len(result.files)


def test_oversized_input_is_not_decoded(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src", {"a.png": encode(photo(), "PNG")})
    options = parse_optimize_section({"max_input_bytes": 100}, file="t.toml")
    result = _run(tmp_path, files, options, workers=1)
    assert result.files == tuple(files) and "max_input_bytes" in result.issues[0].message


def test_progress_events_count_every_encode(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src", {f"{i}.jpg": encode(photo(seed=i), "JPEG") for i in range(3)})
    events: list[SyncEvent] = []
    _run(tmp_path, files, _options(), workers=1, on_event=events.append)
    assert events[0].kind == "transform_started" and events[0].total == 3
    assert [e.files for e in events[1:]] == [1, 2, 3]
    assert {e.path for e in events[1:]} == {"0.jpg", "1.jpg", "2.jpg"}
    events.clear()
    _run(tmp_path, files, _options(), workers=1, on_event=events.append)
    assert events == []  # all cached: nothing to report


def test_an_unusable_cache_folder_never_stops_the_run(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src", {"a.jpg": encode(photo(), "JPEG", quality=90)})
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    result = transform_files(files, _options(), source=tmp_path / "src", cache_dir=blocker,
                             workers=1)
    assert result.files == tuple(files)
    (issue,) = result.issues
    assert issue.severity == "warning" and "transform cache" in issue.message


def test_file_types_are_remembered_by_content_digest(tmp_path: Path) -> None:
    """A type is sniffed once per content: a rerun over the same digests opens no file to
    find it (the stored type is used even if the bytes on disk were swapped behind the
    digest's back), and new content (a new digest) is sniffed afresh."""
    heic = b"\x00\x00\x00\x18ftypheic" + bytes(64)
    files = _tree(tmp_path / "src", {"mms/photo.jpg": heic})
    options = _options(mms={"globs": ["mms/**"]})
    first = _run(tmp_path, files, options, workers=1)
    assert [i.message.split(" is ")[0] for i in first.issues] == ["HEIC"]
    cache = tmp_path / "state" / "transform" / "sniffed.txt"
    kept = cache.read_bytes()
    assert kept == files[0].digest.encode() + b" heic image/heic\n"
    swapped = tmp_path / "src" / "mms" / "photo.jpg"
    swapped.write_bytes(b"just text now\n")  # same PublishedFile (digest) as before
    again = _run(tmp_path, files, options, workers=1)
    assert again.issues == first.issues  # the remembered type, not the bytes
    rescanned = _tree(tmp_path / "src", {"mms/photo.jpg": b"just text now\n"})
    assert _run(tmp_path, rescanned, options, workers=1).issues == ()
    # The new content's type is appended; what was known stays as it was written.
    assert cache.read_bytes() == kept + rescanned[0].digest.encode() + b" \n"


def test_a_damaged_type_cache_is_ignored_and_rewritten(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src", {"mms/photo.jpg": b"\x00\x00\x00\x18ftypheic" + bytes(64)})
    options = _options(mms={"globs": ["mms/**"]})
    cache = tmp_path / "state" / "transform" / "sniffed.txt"
    cache.parent.mkdir(parents=True)
    (cache.parent / "sniffed.json").write_text("{}")  # an earlier version's cache
    digest = files[0].digest.encode()
    # Junk, a line a crash cut short, a type that is no type, bytes that are no text.
    for junk in (b"{not json", digest + b" jpeg ima", digest + b" 7\n", b"\xff\xfe\n"):
        cache.write_bytes(junk)
        result = _run(tmp_path, files, options, workers=1)
        assert len(result.issues) == 1 and "HEIC" in result.issues[0].message
        assert cache.read_bytes() == digest + b" heic image/heic\n"
    assert not (cache.parent / "sniffed.json").exists()
