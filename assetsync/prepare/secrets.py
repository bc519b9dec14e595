"""Credentials in file contents (pure: bytes in, findings out): private keys, the account's own
Twilio credentials, and the high-confidence token formats of the services a site is built on.

Every rule is a format with a fixed shape (a fixed prefix, an exact length, a checksum-like
marker) or an exact credential: nothing here guesses from entropy. The formats are the ones
the maintained scanners (detect-secrets' plugins, gitleaks' rules, GitHub secret scanning's
partner patterns) document; each rule names its source. Formats meant to be public are left
out on purpose: Stripe publishable keys (`pk_live_`), Google browser API keys (`AIza...`,
restricted by referrer and embedded in web pages by design), bare account or key SIDs.

Every pattern starts with a literal, and the scan jumps from one occurrence of it to the next
in C: with `bytes.find` when the literal is 8 bytes or longer (~4 GB/s whatever the text),
with `re`'s own prefix search otherwise (as fast for a rare first byte, and faster than `find`
for a short needle). One pattern is one pass (~3 GB/s each on a quiet machine, ~100 MB/s for
all the rules; bench/bench_secrets.py); a single alternation of all of them is slower on text,
where most bytes could start one of them. Names written in any case (`secretAccessKey`,
`AWS_SECRET_ACCESS_KEY`) are a few literal-led patterns, not `(?i)`, which would lose the jump.
`SecretScan` takes a file in chunks and also scans each seam between two chunks, so a finding
never depends on where a chunk ends and memory stays one chunk. A finding names the rule and
the line, never the matched text.

Binary content is skipped without the per-pattern passes: every match of every rule starts with
`_RUN` (16) bytes of printable ASCII or whitespace (the format's prefix and body), and random
bytes hold such a run about once in 5 MB. So one `bytes.translate` and one `find` (~1 GB/s
together) list the runs, the patterns (and the exact credentials made of text bytes, all at
least 16 long) are searched only inside them (`_regions`), and text, where the runs are most
of the bytes, is scanned whole as before. Exact: a match found on the whole bytes is found in
its run, and nothing else is (tests/prepare/test_secrets.py checks it against every pattern's
`finditer` over the whole bytes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from assetsync.frozen import frozen
from assetsync.prepare.secret_values import RULES_VERSION, KnownSecret

__all__ = [
    "KNOWN_MIN_LENGTH",
    "OVERLAP",
    "RULES",
    "RULES_VERSION",
    "Alternative",
    "Finding",
    "KnownSecret",
    "Rule",
    "SecretScan",
    "find_secrets",
]

# `RULES_VERSION` and `KnownSecret` live in `assetsync.prepare.secret_values`, so that a run
# whose verdicts are all cached does not compile these patterns: bump the version there when a
# rule here changes.

# Bytes on each side of a seam between two chunks: longer than any one match can be (a PEM
# header with its RFC 1421 header lines and the first base64 run is well under 1 KiB; the
# longest token format, GitHub's fine-grained PAT, is 93 characters).
OVERLAP = 4096

# An exact credential shorter than this would match ordinary text; Twilio's auth tokens and
# API key secrets are 32 characters.
KNOWN_MIN_LENGTH = 16

_Pattern = re.Pattern[bytes]


@frozen
class Alternative:
    """One pattern of a part; `literal`: its leading literal, found with `bytes.find` (empty:
    the pattern is searched with `re`)."""

    pattern: _Pattern
    literal: bytes = b""


@frozen
class Rule:
    """One kind of credential: each of `parts` (alternative patterns) must match somewhere in
    the file, in any order.

    `token`: a match must not continue a word on its left (the patterns check the right).
    `covers`: rules made redundant by this one's finding (a service-account key holds a
    private key). `example`: the suffix of the vendor's documentation examples, which are not
    credentials.
    """

    id: str
    kind: str
    parts: tuple[tuple[Alternative, ...], ...]
    token: bool = True
    covers: tuple[str, ...] = ()
    example: bytes = b""


@frozen
class Finding:
    """A credential found: which rule, what kind (for the message), and on which line."""

    rule: str
    kind: str
    line: int


_META = frozenset(b"[](){}?*+|^$.\\")
# From this length on, `bytes.find` (two-way search) beats `re`'s prefix scan on text.
_FIND_FROM = 8


def _leading_literal(pattern: bytes) -> bytes:
    """The literal every match of `pattern` starts with (escaped punctuation included)."""
    out = bytearray()
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == 0x5C and i + 1 < len(pattern) and not chr(pattern[i + 1]).isalnum():
            out.append(pattern[i + 1])  # an escaped metacharacter, e.g. "\."
            i += 2
            continue
        if c in _META:
            if c in b"?*{" and out:
                out.pop()  # the byte before an optional quantifier may be absent
            break
        out.append(c)
        i += 1
    return bytes(out)


def _one(*patterns: bytes) -> tuple[Alternative, ...]:
    """A part: any of these patterns (each starts with a literal; see the module doc)."""
    parts = []
    for source in patterns:
        literal = _leading_literal(source)
        if not literal:
            raise ValueError(f"secret pattern without a leading literal: {source!r}")
        by_find = len(literal) >= _FIND_FROM
        parts.append(Alternative(re.compile(source), literal if by_find else b""))
    return tuple(parts)


# A separator inside a PEM block, raw or as a JSON/JS string escape ("\n").
_SEP = rb"(?:\\[rn]|[ \t\r\n])"
_PEM = (rb"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----" + _SEP + rb"+"
        # RFC 1421 / OpenPGP armor header lines (Proc-Type, DEK-Info, Version, Comment)
        + rb"(?:[A-Za-z][A-Za-z-]*: ?[^\r\n\\]{0,200}" + _SEP + rb"+){0,8}"
        + rb"[A-Za-z0-9+/=]{40}")
# `name = "value"`, `name: 'value'`, `"name": "value"`: the assignment between a name and a value.
_IS = rb"[\"']?[ \t]*[:=][ \t]*[\"']"

RULES: tuple[Rule, ...] = (
    # detect-secrets' PrivateKeyDetector, gitleaks' `private-key`: the armor header, here with
    # key material after it, so a page that only names the header is not refused.
    Rule("private-key", "a private key", (_one(_PEM),), token=False),
    # PuTTY's .ppk format (versions 2 and 3): its header line and its private part.
    Rule("putty-key", "a PuTTY private key",
         (_one(rb"PuTTY-User-Key-File-[23]: "), _one(rb"Private-Lines: [0-9]")), token=False),
    # Google Cloud service-account key files (`"type": "service_account"` and their
    # `private_key`), raw or embedded in a JS/JSON string (escaped quotes).
    Rule("gcp-service-account", "a Google service-account key",
         (_one(rb'service_account\\?"'),
          _one(rb'private_key\\?"[ \t]*:[ \t]*\\?"-----BEGIN')),
         token=False, covers=("private-key",)),
    # AWS access key IDs: IAM users, STS, roles and the older A3T prefix (gitleaks'
    # `aws-access-token`). AWS's documentation keys all end in EXAMPLE.
    Rule("aws-access-key", "an AWS access key",
         (_one(rb"A(?:KIA|SIA|BIA|CCA|3T[A-Z0-9])[A-Z2-7]{16}(?![A-Za-z0-9])"),),
         example=b"EXAMPLE"),
    # The 40-character secret access key has no prefix of its own: found where it is named,
    # as the credentials file, the environment, the JS SDK and the STS answer name it.
    Rule("aws-secret-key", "an AWS secret access key",
         (_one(rb"ecret_access_key" + _IS + rb"?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
               rb"ECRET_ACCESS_KEY" + _IS + rb"?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
               rb"ecretAccessKey" + _IS + rb"?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"),),
         token=False, example=b"EXAMPLEKEY"),
    # GitHub's token prefixes (GitHub blog, "Behind GitHub's new authentication token
    # formats", 2021): ghp/gho/ghu/ghs/ghr, and fine-grained github_pat_ tokens.
    Rule("github-token", "a GitHub token",
         (_one(rb"gh(?:[pousr]_[A-Za-z0-9]{36}|ithub_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})"
               rb"(?![A-Za-z0-9])"),)),
    Rule("gitlab-token", "a GitLab token", (_one(rb"glpat-[A-Za-z0-9_-]{20}(?![A-Za-z0-9_-])"),)),
    # Slack tokens (xoxb bot, xoxp user, xoxa/xoxr/xoxs/xoxo, xoxe refresh) and webhook URLs.
    Rule("slack-token", "a Slack token", (_one(rb"xox[abposre]-[0-9]{6,}-[0-9A-Za-z-]{10,}"),)),
    Rule("slack-webhook", "a Slack webhook URL",
         (_one(rb"hooks\.slack\.com/(?:services|workflows)/T[A-Z0-9]{6,}/[A-Z0-9]{6,}/"
               rb"[A-Za-z0-9]{20,}"),), token=False),
    # Stripe secret (sk_) and restricted (rk_) live keys; publishable pk_live_ keys are meant
    # for web pages.
    Rule("stripe-live-key", "a Stripe live secret key",
         (_one(rb"sk_live_[0-9A-Za-z]{20,}", rb"rk_live_[0-9A-Za-z]{20,}"),)),
    # A Twilio API key SID (SK + 32 hex) and a 32-character secret assigned by name: the SID
    # alone only names the key (detect-secrets' TwilioKeyDetector flags it alone; the pair is
    # the high-confidence case).
    Rule("twilio-api-key", "a Twilio API key and secret",
         (_one(rb"SK[0-9a-fA-F]{32}(?![0-9a-fA-F])"),
          _one(rb"ecret" + _IS + rb"[A-Za-z0-9]{32}[\"']",
               rb"ECRET" + _IS + rb"[A-Za-z0-9]{32}[\"']")),
         token=False),
    # Another account's auth token: an account SID and a 32-hex token assigned by name
    # (authToken, auth_token, AUTH_TOKEN, AuthToken).
    Rule("twilio-auth-token", "a Twilio auth token",
         (_one(rb"AC[0-9a-f]{32}(?![0-9a-fA-F])"),
          _one(rb"uth_?[Tt]oken" + _IS + rb"[0-9a-f]{32}[\"']",
               rb"UTH_TOKEN" + _IS + rb"[0-9a-f]{32}[\"']")),
         token=False),
    # SendGrid (a Twilio company): SG.<22>.<43>.
    Rule("sendgrid-key", "a SendGrid API key",
         (_one(rb"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"),)),
    Rule("npm-token", "an npm token", (_one(rb"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])"),)),
    # PyPI API tokens are macaroons whose first bytes encode "pypi.org".
    Rule("pypi-token", "a PyPI token", (_one(rb"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"),)),
    # OpenAI keys carry "T3BlbkFJ" (base64 of "OpenAI") between two random parts.
    Rule("openai-key", "an OpenAI API key",
         (_one(rb"sk-[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}"),)),
    Rule("anthropic-key", "an Anthropic API key",
         (_one(rb"sk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_-]{80,}"),)),
    Rule("google-oauth-secret", "a Google OAuth client secret",
         (_one(rb"GOCSPX-[A-Za-z0-9_-]{28}(?![A-Za-z0-9_-])"),)),
    Rule("azure-storage-key", "an Azure storage account key",
         (_one(rb"AccountKey=[A-Za-z0-9+/]{86}=="),), token=False),
    Rule("shopify-token", "a Shopify access token",
         (_one(rb"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}(?![a-fA-F0-9])"),)),
    Rule("square-secret", "a Square OAuth secret", (_one(rb"sq0csp-[0-9A-Za-z_-]{43}"),)),
)

# Bytes that continue a token: a match right after one is the tail of a longer word.
_WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

# Every match of `RULES` starts with this many bytes of `_TEXT` (the shortest formats,
# "Private-Lines: 1" and `service_account"`, are 16 bytes; every pattern but the PEM armor's
# header lines matches text bytes only, and a PEM match starts with its 27-byte header).
_RUN = 16
# `bytes.translate` table: printable ASCII, tab, CR and LF -> "a", every other byte -> NUL.
_TEXT = bytes(0x61 if b in b"\t\n\r" or 0x20 <= b < 0x7F else 0 for b in range(256))
_RUN_NEEDLE = b"a" * _RUN
_NOT_TEXT = bytes(b for b in range(256) if not _TEXT[b])
# Bytes looked at (at the start, middle and end) to tell text from binary before the translate.
_SAMPLE = 2048
# More runs than this, or runs covering more than half the bytes: text, scanned whole (each run
# costs a call per pattern).
_MAX_REGIONS = 32


def _regions(data: bytes) -> list[tuple[int, int]]:
    """Where a match can start: the runs of at least `_RUN` text bytes, as (start, end); one
    region over everything when that is most of `data`."""
    middle = len(data) // 2
    sample = data[:_SAMPLE] + data[middle:middle + _SAMPLE] + data[-_SAMPLE:]
    if 4 * len(sample.translate(None, _NOT_TEXT)) > 3 * len(sample):
        return [(0, len(data))]  # text: its runs would be most of it (a guess: whole is exact)
    marks = data.translate(_TEXT)
    regions: list[tuple[int, int]] = []
    covered = 0
    at = marks.find(_RUN_NEEDLE)
    while at >= 0:
        start = marks.rfind(0, 0, at) + 1
        end = marks.find(0, at + _RUN)
        end = len(data) if end < 0 else end
        regions.append((start, end))
        covered += end - start
        if len(regions) > _MAX_REGIONS or 2 * covered > len(data):
            return [(0, len(data))]
        at = marks.find(_RUN_NEEDLE, end)
    return regions


class SecretScan:
    """One file's scan: `feed` it the file's bytes in chunks, then ask `findings()`. Pure.

    Args:
        known: credentials assetsync holds, matched exactly (any shorter than
            `KNOWN_MIN_LENGTH` are left out: they would match ordinary text).
        rules: the format rules (default `RULES`).
    """

    def __init__(self, known: Iterable[KnownSecret] = (), rules: Sequence[Rule] = RULES) -> None:
        self._known = tuple(k for k in known if len(k.value) >= KNOWN_MIN_LENGTH)
        self._text_known = {k.id for k in self._known if len(k.value) >= _RUN
                            and k.value.translate(_TEXT) == _RUN_NEEDLE[:1] * len(k.value)}
        self._rules = tuple(rules)
        # Only `RULES` are known to start with a run of text (`_RUN`); other rules scan whole.
        self._skip_binary = self._rules == RULES
        self._line = 1  # the line the next chunk starts on
        self._tail = b""  # the last OVERLAP bytes before the next chunk
        self._tail_line = 1  # the line `_tail` starts on
        self._before: int | None = None  # the byte before `_tail`
        # The last chunk fed: its lines and its tail are taken only once another chunk comes
        # (most files are one chunk).
        self._pending = b""
        # rule id -> part index -> the first line it matched on
        self._parts: dict[str, dict[int, int]] = {}
        # Matches that end where the bytes fed so far end: the next byte, not yet seen, may
        # undo them (a pattern's lookahead, a token that goes on). The next chunk's seam scan
        # looks at them again with what follows; at the end of the file they count.
        self._open: dict[str, dict[int, int]] = {}
        self._exact: dict[str, int] = {}

    def feed(self, chunk: bytes) -> None:
        """Scan the file's next bytes."""
        if not chunk:
            return
        self._advance()
        self._open.clear()
        tail = self._tail
        if tail:
            # The seam: a match across the end of what came before (however short the chunks).
            self._scan(tail + chunk[:OVERLAP], self._tail_line, self._before)
            self._scan(chunk, self._line, tail[-1])
        else:
            self._scan(chunk, self._line, None)
        self._pending = chunk

    def _advance(self) -> None:
        """Move the line count and the tail past the last chunk fed."""
        chunk, self._pending = self._pending, b""
        if not chunk:
            return
        if len(chunk) >= OVERLAP:
            cut = len(chunk) - OVERLAP
            if cut:
                self._before = chunk[cut - 1]
            elif self._tail:
                self._before = self._tail[-1]
            self._tail_line = self._line + chunk.count(b"\n", 0, cut)
            self._tail = chunk[cut:]
        else:
            start = self._tail_line if self._tail else self._line
            joined = self._tail + chunk
            cut = max(0, len(joined) - OVERLAP)
            if cut:
                self._before = joined[cut - 1]
            self._tail_line = start + joined.count(b"\n", 0, cut)
            self._tail = joined[cut:]
        self._line += chunk.count(b"\n")

    def _scan(self, data: bytes, line: int, before: int | None) -> None:
        """Record what `data` (starting on `line`, after the byte `before`) holds."""
        text = _regions(data)
        whole = [(0, len(data))]
        for secret in self._known:
            if secret.id not in self._exact:
                # A credential of text bytes (any of Twilio's) is at least `_RUN` long
                # (`KNOWN_MIN_LENGTH`): it can only be inside a run of text.
                at = _find(secret.value, data, text if secret.id in self._text_known else whole)
                if at >= 0:
                    self._exact[secret.id] = line + data.count(b"\n", 0, at)
        regions = text if self._skip_binary else whole
        for rule in self._rules:
            found = self._parts.get(rule.id, {})
            for index, patterns in enumerate(rule.parts):
                if index in found:
                    continue
                for low, high in regions:  # in order: the first region with a match has the first
                    start, at_end = _first_match(rule, patterns, data, before, low, high)
                    if at_end is not None and (start is None or at_end < start):
                        opened = self._open.setdefault(rule.id, {})
                        opened.setdefault(index, line + data.count(b"\n", 0, at_end))
                    if start is not None:
                        found[index] = line + data.count(b"\n", 0, start)
                        self._parts[rule.id] = found
                        break

    def findings(self) -> tuple[Finding, ...]:
        """What was found, one finding per kind (on its first line): exact credentials first,
        then the rules in order."""
        found = [Finding(k.id, k.kind, self._exact[k.id])
                 for k in self._known if k.id in self._exact]
        parts: dict[str, dict[int, int]] = {}
        for rule in self._rules:  # the file ends here: what ended with it counts
            closed, opened = self._parts.get(rule.id, {}), self._open.get(rule.id, {})
            parts[rule.id] = {i: min(x for x in (closed.get(i), opened.get(i)) if x is not None)
                              for i in closed.keys() | opened.keys()}
        complete = [rule for rule in self._rules if len(parts[rule.id]) == len(rule.parts)]
        covered = {c for rule in complete for c in rule.covers}
        found += [Finding(rule.id, rule.kind, min(parts[rule.id].values()))
                  for rule in complete if rule.id not in covered]
        return tuple(found)


def _find(value: bytes, data: bytes, regions: Sequence[tuple[int, int]]) -> int:
    """Where `value` first occurs inside one of `regions` of `data` (-1: nowhere)."""
    for low, high in regions:
        at = data.find(value, low, high)
        if at >= 0:
            return at
    return -1


def _matches(alternative: Alternative, data: bytes, low: int,
             high: int) -> Iterator[re.Match[bytes]]:
    """Every match of the alternative that starts in `data[low:high]` (a region), jumping
    between its literal's occurrences."""
    literal, pattern = alternative.literal, alternative.pattern
    if not literal:
        # Bounded at `high`: a pattern without a long literal matches text bytes only, so its
        # match ends inside the region, whose next byte is not text (a lookahead sees the same).
        yield from pattern.finditer(data, low, high)
        return
    at = data.find(literal, low, high)
    while at >= 0:
        match = pattern.match(data, at)  # unbounded: a PEM header may go on past the region
        if match is not None:
            yield match
        at = data.find(literal, at + 1, high)


def _first_match(rule: Rule, part: Sequence[Alternative], data: bytes, before: int | None,
                 low: int, high: int) -> tuple[int | None, int | None]:
    """Where the first acceptable match of any of the part's patterns starts in
    `data[low:high]`, and where the first one that ends with `data` starts (it holds only if
    `data` is the file's end)."""
    first: int | None = None
    at_end: int | None = None
    for alternative in part:
        for match in _matches(alternative, data, low, high):
            if rule.example and match.group().endswith(rule.example):
                continue  # a documentation example
            start = match.start()
            previous = data[start - 1] if start else before
            if rule.token and previous is not None and previous in _WORD:
                continue  # the tail of a longer word
            if match.end() == len(data):
                at_end = start if at_end is None else min(at_end, start)
                continue  # what follows may undo it
            first = start if first is None else min(first, start)
            break
    return first, at_end


def find_secrets(data: bytes, known: Iterable[KnownSecret] = ()) -> tuple[Finding, ...]:
    """The credentials in `data` (a whole file), one finding per kind."""
    scan = SecretScan(known)
    scan.feed(data)
    return scan.findings()
