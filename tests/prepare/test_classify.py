"""Classify: toolkit naming, visibility precedence, content types, path and size checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from assetsync.limits import MAX_PRIVATE_ASSET_BYTES, MAX_PUBLIC_ASSET_BYTES
from assetsync.models import PublishedFile, ScannedFile, Visibility
from assetsync.prepare.classify import (
    VisibilityRules,
    check_published,
    classify,
    content_type_for,
    published_name,
)
from assetsync.scan.globs import GlobSet, validate_glob

P, PR, PV = Visibility.PUBLIC, Visibility.PROTECTED, Visibility.PRIVATE


@pytest.mark.parametrize(
    ("rel", "path", "marked"),
    [
        ("logo.png", "/logo.png", None),
        ("img/logo.private.png", "/img/logo.png", PV),
        ("audio/hold.protected.mp3", "/audio/hold.mp3", PR),
        ("hello/example.protected.js", "/hello/example.js", PR),  # assets keep .js
        ("my dir/team photo.jpg", "/my-dir/team-photo.jpg", None),
        ("a.private.tar.gz", "/a.private.tar.gz", None),  # marker must precede the extension
        ("README.private", "/README.private", None),  # the toolkit needs an extension too
        ("notes.protectedx.txt", "/notes.protectedx.txt", None),
        ("tab\there.txt", "/tab-here.txt", None),
    ],
)
def test_toolkit_naming(rel: str, path: str, marked: Visibility | None) -> None:
    assert published_name(rel) == (path, marked)


def _scanned(rel: str, size: int = 1) -> ScannedFile:
    return ScannedFile(rel, size, "xxh3_128:" + "0" * 32)


def test_visibility_precedence_name_then_private_then_protected_then_default() -> None:
    rules = VisibilityRules(
        default=PR, protected=("audio/**", "*.wav"), private=("audio/secret/**",)
    )
    files = [
        _scanned("index.html"),
        _scanned("audio/a.mp3"),
        _scanned("audio/secret/b.mp3"),
        _scanned("audio/secret/c.public.mp3"),
        _scanned("audio/secret/d.protected.mp3"),
        _scanned("x.private.wav"),
    ]
    result = classify(files, rules, source=Path("/src"))
    got = {f.path: f.visibility for f in result.files}
    assert got == {
        "/index.html": PR,
        "/audio/a.mp3": PR,
        "/audio/secret/b.mp3": PV,
        "/audio/secret/c.public.mp3": PV,
        "/audio/secret/d.mp3": PR,
        "/x.wav": PV,
    }
    assert [f.path for f in result.files] == sorted(got)
    # the name overrode a glob that asked for something else: said, not an error
    assert [(i.path, i.severity) for i in result.issues] == [
        ("audio/secret/d.protected.mp3", "warning")
    ]
    first = result.files[0]
    assert first.content_path == "/src/audio/a.mp3" and first.source == "audio/a.mp3"


@pytest.mark.parametrize(
    ("name", "ctype"),
    [
        ("a.mp3", "audio/mpeg"),
        ("a.WAV", "audio/wav"),
        ("a.ogg", "audio/ogg"),
        ("a.amr", "audio/amr"),
        ("a.svg", "image/svg+xml"),
        ("a.webp", "image/webp"),
        ("a.jpeg", "image/jpeg"),
        ("a.json", "application/json"),
        ("a.css", "text/css"),
        ("a.html", "text/html"),
        ("a.js", "text/javascript"),
        ("a.woff2", "font/woff2"),
        ("a.unknownext", "application/octet-stream"),
        ("Makefile", "application/octet-stream"),
    ],
)
def test_content_types(name: str, ctype: str) -> None:
    assert content_type_for(name) == ctype


def _pub(path: str, source: str, vis: Visibility = P, size: int = 1) -> PublishedFile:
    return PublishedFile(path, vis, "d", size, source, f"/src/{source}", "image/png")


def test_path_rules_each_forbidden_character_and_length() -> None:
    files = [_pub(f"/a{c}b.png", f"a{c}b.png") for c in "#;,?:@+&$()'\""]
    files.append(_pub("/ok.png", "ok.png"))
    files.append(_pub("/" + "x" * 255, "long"))
    files.append(_pub("/" + "y" * 254, "fits"))
    files.append(_pub("/bell\x07.png", "bell"))
    issues = check_published(files)
    named = {i.path for i in issues}
    assert named == {f.source for f in files} - {"ok.png", "fits"}
    long_issue = next(i for i in issues if i.path == "long")
    assert "256 characters" in long_issue.message and "at most 255" in long_issue.message
    hash_issue = next(i for i in issues if i.path == "a#b.png")
    assert "contains '#'" in hash_issue.message and "rename" in hash_issue.message
    assert all(i.severity == "error" for i in issues)


def test_size_limits_per_visibility() -> None:
    files = [
        _pub("/pub.mp3", "pub.mp3", P, MAX_PUBLIC_ASSET_BYTES),
        _pub("/pub-big.mp3", "pub-big.mp3", P, MAX_PUBLIC_ASSET_BYTES + 1),
        _pub("/prot-big.mp3", "prot-big.mp3", PR, MAX_PUBLIC_ASSET_BYTES + 1),
        _pub("/priv.bin", "priv.bin", PV, MAX_PRIVATE_ASSET_BYTES),
        _pub("/priv-big.bin", "priv-big.bin", PV, MAX_PRIVATE_ASSET_BYTES + 1),
    ]
    issues = check_published(files)
    assert [i.path for i in issues] == ["priv-big.bin", "prot-big.mp3", "pub-big.mp3"]
    assert "10 MB limit for private" in issues[0].message
    assert "25 MB limit for protected" in issues[1].message


def test_two_sources_on_one_path_name_both() -> None:
    result = classify(
        [
            _scanned("logo.png"),
            _scanned("logo.private.png"),
            _scanned("a b.png"),
            _scanned("a-b.png"),
        ],
        VisibilityRules(),
        source=Path("/src"),
    )
    issues = check_published(result.files)
    assert len(issues) == 2
    text = " ".join(i.path + " " + i.message for i in issues)
    for name in ("logo.png", "logo.private.png", "a b.png", "a-b.png"):
        assert name in text


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "expected"),
    [
        ("*.psd", "a/b/c.psd", False, True),
        ("*.psd", "a/b.psd/c.png", False, True),  # a folder named like it covers its files
        ("drafts/", "drafts", True, True),
        ("drafts/", "drafts", False, False),
        ("drafts/", "x/drafts/y.png", False, True),
        ("raw/big.png", "raw/big.png", False, True),
        ("raw/big.png", "x/raw/big.png", False, False),
        ("/top.png", "top.png", False, True),
        ("/top.png", "sub/top.png", False, False),
        ("img/**/*.png", "img/a.png", False, True),
        ("img/**/*.png", "img/x/y/a.png", False, True),
        ("img/**/*.png", "other/img/a.png", False, False),
        ("**/cache", "a/b/cache/x", False, True),
        ("audio/**", "audio/x/y.mp3", False, True),
        ("file?.txt", "file1.txt", False, True),
        ("file[0-9].txt", "filex.txt", False, False),
        ("file[!0-9].txt", "filex.txt", False, True),
    ],
)
def test_glob_semantics(pattern: str, path: str, is_dir: bool, expected: bool) -> None:
    assert GlobSet([pattern]).match(path, is_dir) is expected


@pytest.mark.parametrize("pattern", ["", "   ", "!keep.png", "[abc", "a**b", "../x", "/"])
def test_invalid_globs_say_why(pattern: str) -> None:
    assert validate_glob(pattern)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="ab.p/ \t_-éX", min_size=1, max_size=12), min_size=1,
                max_size=3))
@example(["..a"])
@example(["d.x", ".hidden"])
@example(["a b", "c.private.png"])
def test_the_usual_name_path_equals_the_general_one(parts: list[str]) -> None:
    from assetsync.prepare.classify import _marked_name_parts, _name_parts

    rel = "/".join(parts)
    assert _name_parts(rel) == _marked_name_parts(rel)
