"""Config: keys, defaults, precedence (flag > env > file > default), credentials, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from assetsync.config import Config, Credentials, load_config, parse_config, target_key
from assetsync.errors import ConfigError
from assetsync.models import Visibility

SID = "AC" + "0123456789abcdef" * 2
MINIMAL = '[project]\nsource = "site"\nservice = "demo"\n'


def _parse(text: str, environ: dict[str, str] | None = None, **overrides: object) -> Config:
    return parse_config(
        text, file="/proj/.assetsync.toml", environ=environ or {}, overrides=overrides or None
    )


def test_minimal_config_defaults_and_paths() -> None:
    cfg = _parse(MINIMAL)
    assert cfg.source == Path("/proj/site")
    assert cfg.state_dir == Path("/proj/.assetsync")
    assert cfg.root == Path("/proj")
    assert cfg.environment == "dev"
    assert cfg.target.api == "local" and cfg.credentials is None
    assert cfg.visibility.default is Visibility.PUBLIC
    assert cfg.sync.concurrency == 10 and cfg.sync.build_timeout_s == 300.0
    assert cfg.ignore == ()


def test_full_config() -> None:
    cfg = _parse(
        MINIMAL
        + """
environment = "prod"
state_dir = "../state"
[target]
api = "http://127.0.0.1:8080/"
upload_url = "http://127.0.0.1:8081"
region = "au1"
[visibility]
default = "protected"
private = ["secret/**"]
protected = ["*.mp3"]
[ignore]
patterns = ["*.psd", "raw/"]
[sync]
concurrency = 4
build_timeout_s = 60
urls_file = "urls.json"
"""
    )
    assert cfg.environment == "prod"
    assert cfg.state_dir == Path("/state")
    assert cfg.target.api == "http://127.0.0.1:8080"
    assert cfg.target.upload_url == "http://127.0.0.1:8081" and cfg.target.region == "au1"
    assert cfg.visibility.default is Visibility.PROTECTED
    assert cfg.visibility.private == ("secret/**",)
    assert cfg.ignore == ("*.psd", "raw/")
    assert cfg.sync.concurrency == 4 and cfg.sync.build_timeout_s == 60.0
    assert cfg.sync.urls_file == "/proj/urls.json"


def test_precedence_flag_over_env_over_file() -> None:
    text = MINIMAL + '[target]\napi = "twilio"\napi_url = "https://file.example"\n'
    assert _parse(text).target.api_url == "https://file.example"
    env = {"ASSETSYNC_API_URL": "https://env.example"}
    assert _parse(text, env).target.api_url == "https://env.example"
    flagged = _parse(text, env, **{"target.api_url": "https://flag.example"})
    assert flagged.target.api_url == "https://flag.example"
    assert _parse(text, {"TWILIO_EDGE": "sydney"}).target.edge == "sydney"
    assert _parse(MINIMAL, {}, **{"project.environment": "stage"}).environment == "stage"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (MINIMAL + "[bogus]\nx = 1\n", "[bogus]"),
        (MINIMAL + "colour = 'red'\n", "[project] colour"),
        ('[project]\nservice = "demo"\n', "[project] source"),
        (MINIMAL.replace('"demo"', '"has space"'), "[project] service"),
        (MINIMAL + "[sync]\nconcurrency = 'ten'\n", "[sync] concurrency"),
        (MINIMAL + "[sync]\nconcurrency = true\n", "[sync] concurrency"),
        (MINIMAL + "[sync]\nbuild_timeout_s = -1\n", "[sync] build_timeout_s"),
        (MINIMAL + "[target]\napi = 'ftp://x'\n", "[target] api"),
        (MINIMAL + "[visibility]\ndefault = 'secret'\n", "[visibility] default"),
        (MINIMAL + "[ignore]\npatterns = ['[abc']\n", "[ignore] patterns"),
        (MINIMAL + "[ignore]\npatterns = '*.psd'\n", "[ignore] patterns"),
        (MINIMAL + "[visibility]\nprivate = ['!x']\n", "[visibility] private"),
        (MINIMAL + "state_dir = 'site'\n", "[project] state_dir"),
    ],
)
def test_bad_config_names_file_and_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        _parse(text)
    message = str(info.value)
    assert message.startswith("/proj/.assetsync.toml: ")
    assert key in message
    assert info.value.file == "/proj/.assetsync.toml"


def test_invalid_toml_names_the_file() -> None:
    with pytest.raises(ConfigError, match=r"/proj/.assetsync.toml: not valid TOML"):
        _parse("[project\n")


TWILIO = MINIMAL + '[target]\napi = "twilio"\n'


def test_local_target_ignores_twilio_variables() -> None:
    assert _parse(MINIMAL, {"TWILIO_ACCOUNT_SID": SID}).credentials is None


def test_credentials_from_env_and_hidden_in_repr() -> None:
    cfg = _parse(TWILIO, {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "tok-secret"})
    assert cfg.credentials == Credentials(SID, SID, "tok-secret")
    assert "tok-secret" not in repr(cfg) and "<hidden>" in repr(cfg.credentials)
    key = _parse(
        TWILIO,
        {"TWILIO_ACCOUNT_SID": SID, "TWILIO_API_KEY": "SKxyz", "TWILIO_API_SECRET": "s3cret"},
    )
    assert key.credentials is not None
    assert (key.credentials.username, key.credentials.account_sid) == ("SKxyz", SID)
    assert "s3cret" not in str(key)


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({"TWILIO_ACCOUNT_SID": SID}, "TWILIO_AUTH_TOKEN"),
        ({"TWILIO_AUTH_TOKEN": "tok-zzz"}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_API_KEY": "SK1", "TWILIO_API_SECRET": "tok-zzz"}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_ACCOUNT_SID": "nope", "TWILIO_AUTH_TOKEN": "tok-zzz"}, "TWILIO_ACCOUNT_SID"),
    ],
)
def test_incomplete_credentials_name_the_missing_variable(
    environ: dict[str, str], name: str
) -> None:
    with pytest.raises(ConfigError, match=name) as info:
        _parse(TWILIO, environ)
    assert "tok-zzz" not in str(info.value)  # never echoes a secret


def test_require_credentials_says_what_to_set() -> None:
    cfg = _parse(TWILIO)
    with pytest.raises(ConfigError, match="set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"):
        cfg.require_credentials()


def test_target_key_has_no_secret() -> None:
    cfg = _parse(TWILIO, {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "tok-secret"})
    assert SID in target_key(cfg) and "tok-secret" not in target_key(cfg)
    assert target_key(_parse(MINIMAL)) == "local"


def test_delegated_sections_parsed_by_their_modules() -> None:
    cfg = _parse(MINIMAL + "[watch]\nquiet_window_s = 0.5\n")
    assert getattr(cfg.watch, "quiet_window_s", None) == 0.5
    with pytest.raises(ConfigError, match=r"\[watch\]"):
        _parse(MINIMAL + "[watch]\nnonsense = 1\n")


def test_load_config_finds_file_in_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".assetsync.toml").write_text(MINIMAL)
    monkeypatch.chdir(tmp_path)
    assert load_config(None, environ={}).source == tmp_path / "site"


def test_load_config_missing_file_says_run_init(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="assetsync init"):
        load_config(None, environ={})


# --- typed sections, the environment read once, errors attributed to where a value came from --


def test_feature_sections_are_typed_values_with_defaults() -> None:
    from assetsync.media.options import OptimizeOptions
    from assetsync.plan.shard_options import ShardOptions
    from assetsync.watch.options import WatchOptions

    cfg = _parse(MINIMAL)
    assert cfg.optimize == OptimizeOptions()
    assert cfg.watch == WatchOptions()
    assert cfg.shard == ShardOptions()
    tuned = _parse(MINIMAL + "[optimize]\neffort = 4\n[shard]\nmax_services = 3\n")
    assert tuned.optimize is not None and tuned.optimize.effort == 4
    assert tuned.shard is not None and tuned.shard.max_services == 3


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({"TWILIO_ACCOUNT_SID": "nope", "TWILIO_AUTH_TOKEN": "tok"}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_ACCOUNT_SID": SID}, "TWILIO_AUTH_TOKEN"),
        ({"ASSETSYNC_API_URL": "ftp://example"}, "ASSETSYNC_API_URL"),
        ({"ASSETSYNC_UPLOAD_URL": "example.com"}, "ASSETSYNC_UPLOAD_URL"),
    ],
)
def test_environment_errors_name_the_variable_not_the_file(
    environ: dict[str, str], name: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _parse(TWILIO, environ)
    message = str(info.value)
    assert message.startswith(f"{name}: ") and "\n" not in message
    assert ".assetsync.toml" not in message  # the value never came from the file
    assert info.value.exit_code == 2


def test_a_bad_flag_names_the_flag() -> None:
    with pytest.raises(ConfigError) as info:
        _parse(MINIMAL, **{"project.environment": "Bad Env!"})
    message = str(info.value)
    assert message.startswith("--env: expected 1-16 letters") and "'Bad Env!'" in message
    assert ".assetsync.toml" not in message


def test_the_client_gets_the_environment_through_the_config() -> None:
    # TWILIO_REGION / TWILIO_EDGE are read by the config alone; the endpoints follow from it.
    from assetsync.remote.client import resolve_endpoints

    cfg = _parse(TWILIO, {"TWILIO_REGION": "au1", "TWILIO_ACCOUNT_SID": SID,
                          "TWILIO_AUTH_TOKEN": "tok"})
    assert cfg.target.region == "au1"
    assert resolve_endpoints(cfg.target)[0] == "https://serverless.sydney.au1.twilio.com/v1"


def test_a_profile_name_that_is_no_channel_warns() -> None:
    text = MINIMAL + '[optimize.profiles.voices]\nglobs = ["ivr/**"]\n'
    cfg = _parse(text)
    assert len(cfg.warnings) == 1
    line = cfg.warnings[0]
    assert line.startswith("/proj/.assetsync.toml: [optimize.profiles.voices]: ")
    assert "did you mean [optimize.profiles.voice]?" in line and "\n" not in line
    # Known channel names, and any name that says its channel, pass without a word.
    for body in ('[optimize.profiles.mms]\nglobs = ["a/**"]\n',
                 '[optimize.profiles.web]\nglobs = ["a/**"]\n',
                 '[optimize.profiles.ivr]\nglobs = ["a/**"]\nchannel = "voice"\n'):
        assert _parse(MINIMAL + body).warnings == ()


def test_the_cli_prints_config_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from assetsync.cli import main

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<p>hi</p>\n")
    (tmp_path / ".assetsync.toml").write_text(
        MINIMAL + '[optimize.profiles.whatsap]\nglobs = ["img/**"]\n')
    monkeypatch.chdir(tmp_path)
    assert main(["plan"]) == 0
    err = capsys.readouterr().err
    assert "warning: " in err and "did you mean [optimize.profiles.whatsapp]?" in err


# --- finding the config like git finds .git ----------------------------------------------------


def _project(tmp_path: Path) -> Path:
    (tmp_path / "site" / "img" / "icons").mkdir(parents=True)
    (tmp_path / "site" / "img" / "icons" / "a.txt").write_text("a")
    (tmp_path / ".assetsync.toml").write_text(MINIMAL)
    return tmp_path


def test_load_config_looks_upward_from_a_subfolder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path)
    monkeypatch.chdir(root / "site" / "img" / "icons")
    cfg = load_config(None, environ={})
    # Relative paths stay relative to the config's folder, not the working folder.
    assert cfg.config_path == root / ".assetsync.toml"
    assert cfg.source == root / "site" and cfg.state_dir == root / ".assetsync"


def test_the_search_stops_at_the_top_of_a_git_work_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assetsync.config import find_config

    root = _project(tmp_path)
    repo = root / "site" / "img"
    (repo / ".git").mkdir()  # another project's repository, inside this one's folder
    assert find_config(repo / "icons") is None
    assert find_config(root / "site") == root / ".assetsync.toml"
    monkeypatch.chdir(repo / "icons")
    with pytest.raises(ConfigError, match="no such config file, here or in any folder above; run `assetsync init`"):
        load_config(None, environ={})


def test_commands_from_a_subfolder_use_the_config_above(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from assetsync.cli import main

    root = _project(tmp_path)
    monkeypatch.chdir(root / "site" / "img")
    assert main(["plan", "--json"]) == 0
    assert "/img/icons/a.txt" in capsys.readouterr().out
    assert main(["init"]) == 2
    err = capsys.readouterr().err
    assert f"{root / '.assetsync.toml'} already exists" in err and err.count("\n") == 1
    assert not (root / "site" / "img" / ".assetsync.toml").exists()


def test_the_cli_names_a_bad_flag_and_a_bad_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from assetsync.cli import main

    root = _project(tmp_path)
    monkeypatch.chdir(root)
    assert main(["status", "--env", "Bad Env!"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--env: expected 1-16 letters" in err
    assert ".assetsync.toml" not in err
    (root / ".assetsync.toml").write_text(MINIMAL + '[target]\napi = "twilio"\n')
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "not-a-sid")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tok-secret-zzz")
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "TWILIO_ACCOUNT_SID: expected 'AC'" in err
    assert ".assetsync.toml" not in err and "tok-secret-zzz" not in err
