"""The `[shard]` config section, group globs and the service naming scheme."""

from __future__ import annotations

import tomllib

import pytest

from assetsync.errors import ConfigError
from assetsync.limits import DEFAULT_BUILD_LIMITS, SERVICES_PER_ACCOUNT, BuildLimits
from assetsync.plan.shard import (
    MAX_SERVICE_NAME_LENGTH,
    ShardGroup,
    ShardOptions,
    compile_glob,
    parse_shard_section,
    service_name,
)


def test_empty_section_gives_documented_defaults() -> None:
    options = parse_shard_section({}, file="site.toml")
    assert options == ShardOptions()
    assert options.limits == DEFAULT_BUILD_LIMITS
    assert options.max_services == SERVICES_PER_ACCOUNT == 10
    assert options.groups == ()


def test_full_section_from_real_toml() -> None:
    table = tomllib.loads(
        """
        [shard]
        max_services = 50
        public_protected_per_build = 400
        private_per_build = 20
        functions_per_build = 0
        first_service = ["/fn-data/**"]
        [shard.groups]
        voice = ["/voice/**", "/hold-music/*.mp3"]
        site = "www/"
        """
    )["shard"]
    options = parse_shard_section(table, file="site.toml")
    assert options.limits == BuildLimits(public_protected=400, private=20, functions=0)
    assert options.max_services == 50
    assert options.first_service == ("/fn-data/**",)
    assert options.groups == (
        ShardGroup("voice", ("/voice/**", "/hold-music/*.mp3")),
        ShardGroup("site", ("www/",)),
    )


@pytest.mark.parametrize(
    ("table", "key", "fragment"),
    [
        ({"max_service": 3}, "shard.max_service", "unknown key"),
        ({"max_services": 0}, "shard.max_services", "integer >= 1"),
        ({"max_services": True}, "shard.max_services", "integer >= 1"),
        ({"private_per_build": "50"}, "shard.private_per_build", "integer >= 1"),
        ({"functions_per_build": -1}, "shard.functions_per_build", "integer >= 0"),
        ({"groups": ["/voice/**"]}, "shard.groups", "table of name"),
        ({"groups": {"voice": []}}, "shard.groups.voice", "non-empty list"),
        ({"groups": {"voice": [3]}}, "shard.groups.voice", "non-empty list"),
        ({"groups": {"voice": ["/voice/[ab"]}}, "shard.groups.voice", "invalid glob"),
        ({"groups": {"voice": [""]}}, "shard.groups.voice", "invalid glob"),
        ({"first_service": {"a": 1}}, "shard.first_service", "list of globs"),
        ({"first_service": ["/x/[a"]}, "shard.first_service", "invalid glob"),
        ({"urls_file": "urls.json"}, "shard.urls_file", "moved to [sync] urls_file"),
    ],
)
def test_bad_values_name_file_and_key(table: dict[str, object], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_shard_section(table, file="site.toml")
    message = str(info.value)
    assert message.startswith("site.toml: [shard] ")
    assert fragment in message
    assert "\n" not in message
    assert info.value.key == key
    assert info.value.file == "site.toml"


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("/voice/**", ["/voice/a.mp3", "/voice/x/y.wav"], ["/voices/a.mp3", "/a/voice/b.mp3"]),
        ("voice/", ["/voice/a.mp3", "/voice/x/y.wav"], ["/voice"]),
        ("/img/*.png", ["/img/a.png"], ["/img/sub/a.png", "/img/a.jpg"]),
        ("**/*.png", ["/a.png", "/x/y/z.png"], ["/a.png.txt"]),
        ("/a/**/b.txt", ["/a/b.txt", "/a/x/y/b.txt"], ["/a/xb.txt"]),
        ("/f?.txt", ["/f1.txt"], ["/f12.txt", "/f/.txt"]),
        ("/[ab]-[!0-9].txt", ["/a-x.txt", "/b-y.txt"], ["/c-x.txt", "/a-1.txt"]),
        ("/a.b+c(d).txt", ["/a.b+c(d).txt"], ["/aXb+c(d).txt"]),
    ],
)
def test_glob_semantics(pattern: str, matches: list[str], misses: list[str]) -> None:
    regex = compile_glob(pattern)
    for path in matches:
        assert regex.match(path), (pattern, path)
    for path in misses:
        assert not regex.match(path), (pattern, path)


def test_service_names_follow_the_documented_scheme() -> None:
    assert service_name("media", 1) == "media"
    assert [service_name("media", i) for i in (2, 3, 10)] == ["media-2", "media-3", "media-10"]
    long = "x" * 49 + "-"
    derived = [service_name(long, i) for i in range(1, 101)]
    assert all(len(name) <= MAX_SERVICE_NAME_LENGTH for name in derived)
    assert len(set(derived)) == len(derived)
    assert derived[1] == "x" * 48 + "-2"
    assert "--" not in derived[1]
    with pytest.raises(ValueError):
        service_name("media", 0)
