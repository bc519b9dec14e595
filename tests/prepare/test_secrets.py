"""The secret check: credentials in public or protected files refuse the sync before any write
(one line naming the file and the kind, never the secret); private files and `[publish]
allow_secrets` publish; verdicts are cached by content digest, so a no-op sync reads no file.
The scanner itself (`assetsync.prepare.secrets`) is pure and chunk-independent."""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import assetsync
from assetsync.cli import main
from assetsync.config import load_config
from assetsync.prepare.secret_check import CACHE_NAME
from assetsync.prepare.secret_values import RULES_VERSION
from assetsync.prepare.secrets import (
    KNOWN_MIN_LENGTH,
    RULES,
    Finding,
    KnownSecret,
    SecretScan,
    find_secrets,
)
from assetsync.results import SyncEvent
from assetsync.sync.plan_memo import MEMO_NAME as PLAN_OUTPUT_MEMO
from assetsync.sync.run import sync
from tests.sync_harness import credentials_env, enter_cli, make_tree, write_config

# Test keys made for this file (not real credentials); the PEM body is random base64.
_PEM_BODY = ("MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
             "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n")
RSA_KEY = f"-----BEGIN RSA PRIVATE KEY-----\n{_PEM_BODY}-----END RSA PRIVATE KEY-----\n"
OPENSSH_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
               "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
               "-----END OPENSSH PRIVATE KEY-----\n")
SERVICE_ACCOUNT = json.dumps({
    "type": "service_account", "project_id": "demo-123", "private_key_id": "0" * 40,
    "private_key": "-----BEGIN PRIVATE KEY-----\n" + _PEM_BODY + "-----END PRIVATE KEY-----\n",
    "client_email": "bot@demo-123.iam.gserviceaccount.com",
}, indent=2)
AWS_KEY = "aws_access_key_id = AKIAQ3EGRAXRZ4MUFB7T\n"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
SLACK = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
TWILIO_PAIR = 'apiKey = "SK' + "0123456789abcdef" * 2 + '"\napiSecret = "' + "Ab3" * 10 + 'xy"\n'


# -------------------------------------------------------------------------- the pure scanner

@pytest.mark.parametrize(("text", "rule"), [
    (RSA_KEY, "private-key"),
    (OPENSSH_KEY, "private-key"),
    ("const key = " + json.dumps(RSA_KEY) + ";", "private-key"),  # escaped in a JS string
    (SERVICE_ACCOUNT, "gcp-service-account"),
    (AWS_KEY, "aws-access-key"),
    ("secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzzzzzzz',", "aws-secret-key"),
    (f"token={GITHUB}", "github-token"),
    (f"SLACK={SLACK}", "slack-token"),
    (f"stripe('{STRIPE}')", "stripe-live-key"),
    (TWILIO_PAIR, "twilio-api-key"),
])
def test_each_format_is_found_by_its_rule(text: str, rule: str) -> None:
    assert [f.rule for f in find_secrets(text.encode())] == [rule]


@pytest.mark.parametrize("text", [
    "To make a key: openssl genrsa; it starts with -----BEGIN RSA PRIVATE KEY-----.",
    "-----BEGIN PUBLIC KEY-----\n" + _PEM_BODY + "-----END PUBLIC KEY-----\n",
    "AKIAIOSFODNN7EXAMPLE is the key AWS's documentation uses",
    "Stripe.setPublishableKey('pk_live_4eC39HqLyjWDarjtT1zdp7dc')",
    "AccountSid: AC" + "0123456789abcdef" * 2,  # an identifier, not a credential
    "xghp_" + "a" * 36,  # the tail of a longer word
    "<img src='photo.jpg' alt='a long description of the picture'>" * 50,
])
def test_public_lookalikes_are_not_findings(text: str) -> None:
    assert find_secrets(text.encode()) == ()


def test_a_known_credential_is_matched_exactly_and_named_by_line() -> None:
    token = KnownSecret("account-auth-token", "the account's token", b"f" * 32)
    text = b"line one\nline two\nconst t = '" + b"f" * 32 + b"';\n"
    [found] = find_secrets(text, [token])
    assert (found.rule, found.line) == ("account-auth-token", 3)
    assert find_secrets(text.replace(b"f" * 32, b"f" * 31 + b"e"), [token]) == ()
    short = KnownSecret("short", "a short one", b"secret")  # would match ordinary text
    assert find_secrets(b"a secret", [short]) == ()


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([RSA_KEY, SERVICE_ACCOUNT, AWS_KEY, TWILIO_PAIR, f"x {GITHUB} y"]),
       st.integers(0, 9000), st.integers(0, 9000), st.data())
def test_findings_do_not_depend_on_where_chunks_end(secret: str, before: int, after: int,
                                                     data: st.DataObject) -> None:
    """Same findings, same lines, whatever the chunks (many short ones included)."""
    text = b"a\n" * (before // 2) + secret.encode() + b" z" * (after // 2)
    whole = find_secrets(text)
    assert whole
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=12)))
    scan = SecretScan()
    for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True):
        scan.feed(text[start:end])
    assert scan.findings() == whole


def test_a_file_fed_byte_by_byte_gives_the_same_findings() -> None:
    text = (b"x\n" * 3000) + SERVICE_ACCOUNT.encode() + b"\n" + TWILIO_PAIR.encode()
    scan = SecretScan()
    for i in range(len(text)):
        scan.feed(text[i:i + 1])
    assert scan.findings() == find_secrets(text)
    assert [(f.rule, f.line) for f in scan.findings()] == [
        ("gcp-service-account", 3002), ("twilio-api-key", 3008)]


def _imports(module: str) -> tuple[set[str], set[str]]:
    """The modules `assetsync/prepare/<module>.py` imports, and the names it calls."""
    tree = ast.parse((Path(assetsync.__file__).parent / "prepare" / module).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    calls = {n.func.id for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return imported, calls


def test_the_scanner_module_is_pure() -> None:
    imported, calls = _imports("secrets.py")
    # `assetsync.frozen` is the frozen dataclass decorator: pure, standard library only.
    assert imported <= {"__future__", "re", "collections.abc", "dataclasses", "assetsync.frozen",
                        "assetsync.prepare.secret_values"}
    assert not calls & {"open", "print", "input"}
    imported, calls = _imports("secret_values.py")
    assert imported <= {"__future__", "dataclasses", "assetsync.frozen"}
    assert not calls & {"open", "print", "input"}


def test_a_rule_change_comes_with_a_new_rules_version() -> None:
    """Cached verdicts are trusted under the `RULES_VERSION` they were found with: a change to
    any rule must bump it (assetsync/prepare/secret_values.py), then pin the new digest here."""
    rules = repr([(r.id, r.kind, r.token, r.covers, r.example,
                   [[(a.pattern.pattern, a.literal) for a in part] for part in r.parts])
                  for r in RULES])
    digest = hashlib.sha256(rules.encode()).hexdigest()[:16]
    assert (RULES_VERSION, digest) == (1, "fb0b2ff679a0974b")


# ---------------------------------------------------------------------- sync, plan and the CLI

@pytest.fixture
def project(tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two ordinary files, the config and the account's credentials in the environment."""
    write_config(tmp_path, emulator)
    make_tree(tmp_path / "site", 2)
    return enter_cli(tmp_path, emulator, monkeypatch)


def uploads(emulator: Any) -> int:
    """Acknowledged Asset Version uploads (the files; not a Function's)."""
    return sum(1 for e in emulator.state.request_log
               if e.kind == "upload" and e.method == "POST" and e.status == 201
               and "/Assets/" in e.path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _bad_files(sid: str, token: str) -> dict[str, tuple[str, str]]:
    """name -> (content, the kind the error names)."""
    return {
        "credentials.json": (SERVICE_ACCOUNT, "a Google service-account key"),
        "deploy-key.txt": (RSA_KEY, "a private key"),  # a .pem renamed: the name hides nothing
        "js/app.js": (f"const client = twilio(sid, '{token}');\n", "auth token"),
        "js/fetch.js": ("headers: {Authorization: 'Basic " + base64.b64encode(
            f"{sid}:{token}".encode()).decode() + "'}", "as an HTTP Basic header"),
        "notes.txt": ("\n" * 4 + AWS_KEY, "an AWS access key (line 5)"),
    }


@pytest.mark.parametrize("name", ["credentials.json", "deploy-key.txt", "js/app.js",
                                  "js/fetch.js", "notes.txt"])
def test_a_public_file_with_a_credential_refuses_the_sync_before_any_write(
    project: Path, emulator: Any, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    token = emulator.auth_token
    content, kind = _bad_files(emulator.account_sid, token)[name]
    target = project / "site" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    log = project / "sync.log"
    outputs = []
    for argv in (["sync"], ["sync", "--json"], ["-v", "-v", "sync", "--log-file", str(log)]):
        code, out, err = run(capsys, *argv)
        assert code == 1
        outputs += [out, err]
    assert "Traceback" not in outputs[1]
    [line] = [line for line in outputs[1].splitlines() if name in line]  # one line names it
    assert kind in line and "allow_secrets" in line
    doc = json.loads(outputs[2])
    assert doc["ok"] is False and name in doc["error"]
    # No request at all: the checks run before the first one.
    assert [(e.method, e.path) for e in emulator.state.request_log] == []
    assert uploads(emulator) == 0
    secret_parts = [token, "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMx", "AKIAQ3EGRAXRZ4MUFB7T"]
    for text in [*outputs, log.read_text()]:
        assert not any(part in text for part in secret_parts)
    assert not any(part.encode() in path.read_bytes() for part in secret_parts
                   for path in (project / ".assetsync").rglob("*") if path.is_file())

    code, _out, err = run(capsys, "plan")  # the offline plan shows the very same error
    assert code == 1 and [line for line in err.splitlines() if name in line and kind in line]


def test_private_files_and_allowed_files_publish(
    project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    site = project / "site"
    (site / "deploy-key.private.txt").write_text(RSA_KEY)  # served to functions only
    code, _out, err = run(capsys, "sync")
    assert code == 0, err
    assert uploads(emulator) == 3

    (site / "demo-key.txt").write_text(RSA_KEY)  # a documentation page's sample key
    emulator.state.request_log.clear()
    code, _out, err = run(capsys, "sync")
    assert code == 1 and "demo-key.txt" in err
    assert [(e.method, e.path) for e in emulator.state.request_log] == []
    config = project / ".assetsync.toml"
    config.write_text(config.read_text() + '[publish]\nallow_secrets = ["demo-*.txt"]\n')
    code, _out, err = run(capsys, "sync")
    assert code == 0, err
    assert uploads(emulator) == 1  # the allowed file


def _checked(events: list[SyncEvent]) -> tuple[int, int]:
    [event] = [e for e in events if e.kind == "secrets_checked"]
    return event.files, event.total


def test_a_no_op_sync_reads_no_file_and_new_credentials_scan_again(
    tmp_path: Path, emulator: Any
) -> None:
    write_config(tmp_path, emulator)
    make_tree(tmp_path / "site", 20)
    config = load_config(tmp_path / ".assetsync.toml", environ=credentials_env(emulator))
    events: list[SyncEvent] = []
    sync(config, on_event=events.append)
    assert _checked(events) == (20, 20)  # read once each

    for _ in range(2):  # the no-op (carried outcome), then the general path
        events.clear()
        sync(config, on_event=events.append, full=_ > 0)
        assert _checked(events) == (0, 20)

    (tmp_path / "site" / "d0" / "f0000.txt").write_text("changed")
    events.clear()
    sync(config, on_event=events.append)
    assert _checked(events) == (1, 20)

    # Other credentials (an API key of the account): an unchanged file may hold its secret, so
    # every verdict is taken again.
    key_sid, key_secret = "SK" + "0123456789abcdef" * 2, "ApiKeySecretOfThirtyTwoCharacter"
    emulator.state.api_keys = {key_sid: key_secret}
    (tmp_path / "site" / "d1" / "f0001.txt").write_text(f"key: {key_secret}")
    other = load_config(tmp_path / ".assetsync.toml", environ={
        "TWILIO_ACCOUNT_SID": emulator.account_sid, "TWILIO_API_KEY": key_sid,
        "TWILIO_API_SECRET": key_secret})
    events.clear()
    with pytest.raises(assetsync.AssetsyncError, match="d1/f0001.txt: holds the Twilio API key "
                                                       "secret in use .line 1."):
        sync(other, on_event=events.append)
    assert _checked(events) == (20, 20)
    assert key_secret.encode() not in (tmp_path / ".assetsync" / CACHE_NAME).read_bytes()


def test_an_all_clean_check_is_claimed_and_the_claim_covers_exactly_its_files(
    tmp_path: Path,
) -> None:
    """A check that found every file clean ends the cache with a claim line; the next check of
    the same files trusts it without the verdicts, any other list takes the verdicts (and
    reads only the new content), and a finding is never claimed."""
    make_tree(tmp_path / "site", 5)
    (tmp_path / ".assetsync.toml").write_text('[project]\nsource = "site"\nservice = "demo"\n')
    config = load_config(tmp_path / ".assetsync.toml", environ={})
    cache = tmp_path / ".assetsync" / CACHE_NAME

    def plan() -> tuple[int, int]:
        events: list[SyncEvent] = []
        assetsync.plan(config, on_event=events.append)
        return _checked(events)

    assert plan() == (5, 5)
    header, *verdicts, claim = cache.read_text().splitlines()
    assert len(verdicts) == 5 and claim.startswith("=") and len(claim) == 33
    # Only the header and the claim left: the claim alone says these five are clean.
    cache.write_text(f"{header}\n{claim}\n")
    assert plan() == (0, 5)
    (tmp_path / "site" / "d0" / "f0000.txt").write_text("changed")
    assert plan() == (5, 5)  # another list: the verdicts decide (and none is left)
    (tmp_path / "site" / "d0" / "f0000.txt").write_text("changed again")
    assert plan() == (1, 5)
    assert cache.read_text().splitlines()[-1] not in (claim, "")
    (tmp_path / "site" / "key.txt").write_text(AWS_KEY)
    assert plan() == (1, 6)
    assert not cache.read_text().splitlines()[-1].startswith("=")  # a finding: no claim
    assert plan() == (0, 6)
    cache.unlink()  # the verdicts and the claim go together
    assert plan() == (6, 6)


def test_a_plan_whose_verdicts_are_all_cached_loads_no_rule(tmp_path: Path) -> None:
    """The rules (their patterns compile at import) load only when some file is read or a
    finding is named: a plan whose every verdict is cached and clean does not import them (a
    fresh interpreter, as a user runs it); a cached finding is still refused by name."""
    make_tree(tmp_path / "site", 3)
    cfg = tmp_path / ".assetsync.toml"
    cfg.write_text('[project]\nsource = "site"\nservice = "demo"\n')
    code = (
        "import sys, io\n"
        "from assetsync.cli import main\n"
        "out, sys.stdout = sys.stdout, io.StringIO()\n"
        f"rc = main(['-c', {str(cfg)!r}, 'plan'])\n"
        "sys.stdout = out\n"
        "print(rc, 'assetsync.prepare.secrets' in sys.modules)\n"
    )

    def plan() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, cwd=tmp_path)

    assert [plan().stdout.split() for _ in range(3)] == [["0", "True"], ["0", "False"],
                                                          ["0", "False"]]
    (tmp_path / "site" / "key.txt").write_text(AWS_KEY)
    for _ in range(2):  # read and found, then refused from the cache
        # (planned each time: the plan's output memo, which would print it again without
        # reaching the secret check, is let go; test_plan_output_memo.py covers that memo)
        (tmp_path / ".assetsync" / PLAN_OUTPUT_MEMO).unlink(missing_ok=True)
        done = plan()
        assert done.stdout.split() == ["1", "True"]
        assert "key.txt: holds an AWS access key (line 1)" in done.stderr, done.stderr
    again = plan()  # printed again from the output memo: refused by name all the same
    assert again.stdout.split() == ["1", "False"] and again.stderr == done.stderr
    lines = (tmp_path / ".assetsync" / CACHE_NAME).read_text().splitlines()
    assert len([line for line in lines[1:] if not line.startswith("=")]) == 4  # one per content


def test_media_is_sniffed_not_scanned(tmp_path: Path, emulator: Any) -> None:
    write_config(tmp_path, emulator)
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    (tmp_path / "site" / "a.png").write_bytes(png)
    config = load_config(tmp_path / ".assetsync.toml", environ=credentials_env(emulator))
    events: list[SyncEvent] = []
    sync(config, on_event=events.append)
    [event] = [e for e in events if e.kind == "secrets_checked"]
    assert (event.files, event.bytes) == (1, 64)  # its type, from its first 64 bytes


# ------------------------------------------------- the fast scan against the straightforward one

def _reference_scan(data: bytes, known: list[KnownSecret]) -> tuple[Finding, ...]:
    """Every pattern over all of `data`, one `finditer` each: what the scanner must find."""
    found = [Finding(k.id, k.kind, data.count(b"\n", 0, data.find(k.value)) + 1)
             for k in known if len(k.value) >= KNOWN_MIN_LENGTH and k.value in data]
    complete = []
    for rule in RULES:
        starts = []
        for part in rule.parts:
            hits = [m.start() for alternative in part
                    for m in alternative.pattern.finditer(data)
                    if not (rule.example and m.group().endswith(rule.example))
                    and not (rule.token and m.start() and data[m.start() - 1] in _WORD_BYTES)]
            if not hits:
                break
            starts.append(min(hits))
        else:
            complete.append((rule, min(starts)))
    covered = {c for rule, _ in complete for c in rule.covers}
    found += [Finding(rule.id, rule.kind, data.count(b"\n", 0, start) + 1)
              for rule, start in complete if rule.id not in covered]
    return tuple(found)


_WORD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_PLANTED = [RSA_KEY, OPENSSH_KEY, SERVICE_ACCOUNT, AWS_KEY, GITHUB, SLACK, STRIPE, TWILIO_PAIR,
            "AKIAIOSFODNN7EXAMPLE", "glpat-" + "x1_Y2-z3" * 3, "SG." + "a" * 22 + "." + "b" * 43,
            "npm_" + "N0" * 18, "GOCSPX-" + "g" * 28, "shpat_" + "0f" * 16,
            "AccountKey=" + "k" * 86 + "==", "PuTTY-User-Key-File-3: ssh-ed25519\nPrivate-Lines: 1",
            "https://hooks.slack.com/services/T0000AAAA/B0000BBBB/" + "w" * 24,
            "auth_token = '" + "0123456789abcdef" * 2 + "'\nAC" + "fedcba9876543210" * 2,
            "secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzzzzzzz'", "x" + GITHUB,
            # the shortest matches (16 bytes), alone between binary bytes
            "PuTTY-User-Key-File-2: ", "Private-Lines: 7", 'service_account"',
            'private_key": "-----BEGIN', "AKIAQ3EGRAXRZ4MUFB7T"]
_KNOWN = [KnownSecret("account-auth-token", "the token", b"Tok3nTok3nTok3nTok3n"),
          KnownSecret("basic-auth", "not text", b"\x81binary\x82secret\x83value")]
_PIECES = st.one_of(
    st.tuples(st.sampled_from([*_PLANTED, *(k.value.decode("latin-1") for k in _KNOWN)]),
              st.booleans()).map(
        lambda p: f"\0{p[0]}\x81" if p[1] else p[0]),  # alone between binary bytes, or not
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    # mostly bytes >= 0x80, which no format holds: binary, searched only in its runs of text
    st.binary(max_size=600).map(lambda b: bytes(x | 0x80 for x in b).decode("latin-1")),
    st.text(alphabet="abcAKIxo_-=:'\" \n\t\0\x80sk", max_size=60),  # text that nearly matches
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=12), st.lists(st.integers(0, 5000), max_size=4))
def test_the_fast_scan_finds_exactly_what_every_pattern_finds(pieces: list[str],
                                                                 cuts: list[int]) -> None:
    """Binary stretches are skipped, text is searched in its runs: the same findings and lines as
    every pattern over the whole bytes, whole or in chunks."""
    data = "".join(pieces).encode("latin-1", "replace")
    expected = _reference_scan(data, _KNOWN)
    assert find_secrets(data, _KNOWN) == expected
    scan = SecretScan(_KNOWN)
    bounds = sorted(min(c, len(data)) for c in cuts)
    for start, end in zip([0, *bounds], [*bounds, len(data)], strict=True):
        scan.feed(data[start:end])
    assert scan.findings() == expected


@pytest.mark.parametrize(("parts", "rule"), [
    ([b"PuTTY-User-Key-File-2: ", b"Private-Lines: 7"], "putty-key"),
    ([b'service_account"', b'private_key": "-----BEGIN'], "gcp-service-account"),
    ([b"AKIAQ3EGRAXRZ4MUFB7T"], "aws-access-key"),
])
def test_the_shortest_formats_are_found_between_binary_bytes(parts: list[bytes],
                                                              rule: str) -> None:
    noise = bytes(range(128, 256)) * 40  # no text byte: the scan skips it
    data = noise + b"\0".join(parts) + noise
    assert [(f.rule, f.line) for f in find_secrets(data)] == [(rule, 1)]


def test_a_match_that_ends_where_a_chunk_ends_waits_for_the_next_byte() -> None:
    """A token cut by a chunk boundary right after its 28th character: the chunk alone would
    match, but the next chunk goes on with `-`, so the whole file holds no Google secret (the
    token is longer than the format) — found by the property above."""
    data = (b"\0" * 18 + b"GOCSPX-" + b"g" * 28 + b"-----BEGIN RSA PRIVATE KEY-----\n"
            + b"MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
            + b"-----END RSA PRIVATE KEY-----\n")
    whole = find_secrets(data)
    for cut in (53, 52, 54, len(data) - 1):
        scan = SecretScan()
        scan.feed(data[:cut])
        scan.feed(data[cut:])
        assert scan.findings() == whole, cut
    assert "google-oauth-secret" not in {f.rule for f in whole}
    ending = b"x GOCSPX-" + b"g" * 28  # at the very end of a file it is one
    scan = SecretScan()
    scan.feed(ending)
    assert [f.rule for f in scan.findings()] == ["google-oauth-secret"]
