"""`assetsync check`: references in functions, TwiML, HTML and Studio flows, against the publish
set and the channel rules, through main() on real project folders."""

from __future__ import annotations

import json
import struct
import wave
from pathlib import Path

import pytest
from PIL import Image

from assetsync.check.references import js_references, url_path
from assetsync.cli import main
from assetsync.media.channels import CHANNELS

CONFIG = """
[project]
source = "assets"
service = "ivr"
environment = "dev"

[target]
api = "local"
"""


def _wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack("<800h", *([0] * 800)))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".assetsync.toml").write_text(CONFIG)
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "readme.txt").write_text("hello")
    (tmp_path / "functions").mkdir()
    return tmp_path


def _check(project: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(["-c", str(project / ".assetsync.toml"), "check", "--json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, json.loads(out)


VOICE = """exports.handler = function (context, event, callback) {
  const twiml = new Twilio.twiml.VoiceResponse();
  twiml.say('Welcome');
  twiml.play('/audio/welcome.wav');
  callback(null, twiml);
};
"""


def test_a_play_of_a_missing_prompt_fails_until_the_file_is_published(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "functions" / "voice.js").write_text(VOICE)
    code, data = _check(project, capsys)
    assert code == 1
    [finding] = data["findings"]
    assert finding["file"] == "functions/voice.js" and finding["line"] == 4
    assert finding["path"] == "/audio/welcome.wav" and finding["severity"] == "error"
    _wav(project / "assets" / "audio" / "welcome.wav")
    code, data = _check(project, capsys)
    assert code == 0 and data["findings"] == [] and data["references"] == 1


def test_the_human_output_is_one_line_per_finding(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "functions" / "voice.js").write_text(VOICE)
    assert main(["-c", str(project / ".assetsync.toml"), "check"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("error: functions/voice.js:4: /audio/welcome.wav: no file")
    assert out[-1].endswith("1 error(s), 0 warning(s)")


def test_visibility_and_content_type_fit_the_use(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _wav(project / "assets" / "audio" / "secret.private.wav")
    (project / "assets" / "notes.txt").write_text("not audio")
    (project / "assets" / "call.protected.wav").write_bytes(b"")
    _wav(project / "assets" / "call.protected.wav")
    (project / "functions" / "ivr.js").write_text(
        "exports.handler = (context, event, callback) => {\n"
        "  const r = new Twilio.twiml.VoiceResponse();\n"
        "  r.play(`https://${context.DOMAIN_NAME}/audio/secret.wav`);\n"
        "  r.play('/notes.txt');\n"
        "  r.play('/call.wav');\n"
        "  const body = Runtime.getAssets()['/audio/secret.wav'].open();\n"
        "  const helper = require(Runtime.getFunctions()['lib/missing'].path);\n"
        "  callback(null, r);\n"
        "};\n")
    (project / "assets" / "index.html").write_text(
        '<html><body>\n<img src="call.wav">\n<a href="/readme.txt">read</a>\n</body></html>\n')
    code, data = _check(project, capsys)
    assert code == 1
    by_line = {(f["file"], f["line"]): f for f in data["findings"]}
    assert "private" in by_line[("functions/ivr.js", 3)]["message"]
    assert "<Play> plays only" in by_line[("functions/ivr.js", 4)]["message"]
    assert ("functions/ivr.js", 5) not in by_line  # protected is fine for Twilio's own fetch
    assert ("functions/ivr.js", 6) not in by_line  # getAssets() of a private file is fine
    assert by_line[("functions/ivr.js", 7)]["path"] == "/lib/missing"
    assert "no function" in by_line[("functions/ivr.js", 7)]["message"]
    assert by_line[("assets/index.html", 2)]["severity"] == "warning"  # protected in a browser
    assert ("assets/index.html", 3) not in by_line
    assert data["errors"] == 3 and data["warnings"] == 1


def test_twiml_and_studio_flows_are_read(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _wav(project / "assets" / "audio" / "menu.wav")
    (project / "assets" / "twiml").mkdir()
    (project / "assets" / "twiml" / "menu.xml").write_text(
        "<Response>\n  <Play>../audio/menu.wav</Play>\n  <Play>/audio/gone.wav</Play>\n"
        "</Response>\n")
    flow = {"description": "IVR", "states": [
        {"name": "greet", "type": "say-play",
         "properties": {"play": "https://ivr-1234-dev.twil.io/audio/missing.mp3"}},
        {"name": "sms", "type": "send-message",
         "properties": {"media_url": "https://ivr-1234-dev.twil.io/card.png"}}]}
    Image.new("RGB", (4, 4), "red").save(project / "assets" / "card.png")
    (project / "flow.json").write_text(json.dumps(flow, indent=2))
    code, data = _check(project, capsys)
    assert code == 1
    got = {(f["file"], f["path"]) for f in data["findings"]}
    assert got == {("assets/twiml/menu.xml", "/audio/gone.wav"),
                   ("flow.json", "/audio/missing.mp3")}


def test_whatsapp_media_rules_apply_when_the_function_sends_whatsapp(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "assets" / "card.gif").write_bytes(b"GIF89a" + b"\0" * 64)
    (project / "functions" / "reply.js").write_text(
        "exports.handler = async (context, event, callback) => {\n"
        "  const client = context.getTwilioClient();\n"
        "  await client.messages.create({ to: 'whatsapp:+15550100', from: 'whatsapp:+15550101',\n"
        "    mediaUrl: [`https://${context.DOMAIN_NAME}/card.gif`] });\n"
        "  callback(null, 'ok');\n};\n")
    code, data = _check(project, capsys)
    assert code == 1
    [finding] = data["findings"]
    assert finding["line"] == 4 and "WhatsApp does not accept" in finding["message"]


def test_url_paths_of_other_sites_and_computed_urls_are_not_references() -> None:
    assert url_path("https://example.com/a.wav") is None
    assert url_path("https://x-1-dev.twil.io/a%20b.wav") == "/a b.wav"
    assert url_path("${base}/a.wav") is None
    assert url_path("http://127.0.0.1:4280/_serve/x-1-dev.twil.io/p/a.mp3") == "/p/a.mp3"
    refs = js_references("f.js", "// twiml.play('/old.wav')\nrouter.get('/api', h)\n")
    assert refs == []


def test_every_channel_row_names_its_source_and_date() -> None:
    for rule in CHANNELS.values():
        assert rule.source.startswith("[") and rule.checked.count("-") == 2 and rule.types
