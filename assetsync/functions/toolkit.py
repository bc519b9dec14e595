"""The Serverless Toolkit's local layout rules (function names, package.json, .env), as the
official library applies them; pure: text in, values out.

Sources, read in the published packages (`@twilio-labs/serverless-api` 5.7.0, `twilio-run`
5.0.1, `dotenv` 6.2.0, the version twilio-run depends on):

- `serverless-api/dist/utils/fs.js`: `getListOfFunctionsAndAssets` (the folders), `getDirContent`
  (which files), `getPathAndAccessFromFileInfo` (path and access), `checkForValidPath`;
- `serverless-api/dist/api/dependencies.js`: `getDependencies` (package.json -> Dependencies);
- `twilio-run/dist/config/utils/env.js`: `readLocalEnvFile` (dotenv's `parse`) and
  `filterEnvVariablesForDeploy` (what deploy leaves out);
- `dotenv/lib/main.js` 6.2.0: `parse`.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping

from assetsync.errors import ConfigError
from assetsync.frozen import frozen
from assetsync.limits import MAX_PATH_LENGTH, MAX_PRIVATE_ASSET_BYTES, MAX_PUBLIC_ASSET_BYTES
from assetsync.models import Visibility

__all__ = [
    "ASSET_FOLDERS",
    "DEPLOY_SKIPPED_VARIABLES",
    "FUNCTION_EXECUTION_LIMIT_S",
    "FUNCTION_EXTENSION",
    "FUNCTION_FOLDERS",
    "IGNORED_FILE_NAMES",
    "ToolkitFunction",
    "deploy_variables",
    "dotenv_warnings",
    "function_path_problem",
    "function_size_limit",
    "parse_dotenv",
    "parse_package_dependencies",
    "toolkit_asset_path",
    "toolkit_function",
]

# `getListOfFunctionsAndAssets`: the first of these folders that exists beside package.json
# (twilio-run's --functions-folder / --assets-folder replace each list with one name).
FUNCTION_FOLDERS = ("functions", "src")
ASSET_FOLDERS = ("assets", "static")

# `getDirContent(functionsDir, '.js')` keeps a file only when Node's `path.extname` is exactly
# ".js" (case-sensitive): `.ts`, `.mjs`, `.cjs`, `.JS` and `.js.map` files are not functions.
FUNCTION_EXTENSION = ".js"

# `getDirContent` skips `.DS_Store` and nothing else: dotfiles, `node_modules/` and `.map`
# files inside the folders are listed like any other file (the walk, `recursive-readdir` 2.2.3,
# is given no ignore list).
IGNORED_FILE_NAMES = frozenset({".DS_Store"})

# twilio-run's `filterEnvVariablesForDeploy` drops these keys from .env before deploying (they
# are the deploy's own credentials), and every key whose value is empty.
DEPLOY_SKIPPED_VARIABLES = frozenset({"ACCOUNT_SID", "AUTH_TOKEN"})

# "Function execution time is limited to 10 seconds" (twilio.com/docs/runtime/functions-assets-api,
# "Limits"; the Functions FAQ: past 10,000 ms the invocation ends "runtime application timed out").
FUNCTION_EXECUTION_LIMIT_S = 10.0

# ECMAScript's WhiteSpace and LineTerminator code points: JavaScript's `\s` and what
# `String.prototype.trim` removes. Python's `\s` differs (U+001C-U+001F, U+0085; not U+FEFF).
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_JS_SPACE_CHARS = "\t\n\v\f\r \u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + (
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_JS_SPACE_RE = re.compile(f"[{_JS_SPACE}]")
# `checkForValidPath`'s characters (besides `#`, checked first with its own message).
_INVALID_PATH_CHARS = ";,?:@+&$()' \""
_INVALID_PATH_RE = re.compile("[" + re.escape(_INVALID_PATH_CHARS) + "]")


@frozen
class ToolkitFunction:
    """One function file of a Toolkit project.

    Attributes:
        source: POSIX path relative to the functions folder, e.g. "admin/secret.protected.js".
        path: the published path, e.g. "/admin/secret".
        visibility: from the file name's `.protected.js` / `.private.js` suffix.
    """

    source: str
    path: str
    visibility: Visibility


def toolkit_function(rel_path: str) -> ToolkitFunction | None:
    """The function a file of the functions folder deploys as, or None if it is not one.

    Mirrors `getDirContent(dir, '.js')` + `getPathAndAccessFromFileInfo(file, '.js')`, quirks
    included, so that assetsync and `twilio-run deploy` publish a folder at the same paths:
    `hello.js` -> `/hello`; `admin/secret.protected.js` -> `/admin/secret` (protected);
    `index.js` -> `/index` (no index handling anywhere in the library); whitespace -> `-`;
    the access marker is looked for in the whole relative name (`a.protected.js/b.js` is
    protected) and its first `.protected`/`.private`/`.public` is removed from the base name
    (`x.public.js` -> `/x`). The path is not checked here: see `function_path_problem`.

    Args:
        rel_path: POSIX path relative to the functions folder.
    """
    base = rel_path.rpartition("/")[2]
    # Node's extname: the text from the last dot of the base name, unless that dot starts it.
    if not base.endswith(FUNCTION_EXTENSION) or base.rfind(".") <= 0:
        return None
    if base in IGNORED_FILE_NAMES:
        return None
    path, visibility = _path_and_access(rel_path, FUNCTION_EXTENSION, drop_extension=True)
    return ToolkitFunction(source=rel_path, path=path, visibility=visibility)


def toolkit_asset_path(rel_path: str) -> tuple[str, Visibility] | None:
    """The (path, visibility) the official library gives a file of the assets folder, or None
    for the file it skips (`.DS_Store`). The extension is kept: `img/logo.private.png` ->
    `/img/logo.png` (private)."""
    base = rel_path.rpartition("/")[2]
    if base in IGNORED_FILE_NAMES:
        return None
    return _path_and_access(rel_path, _node_extname(base), drop_extension=False)


def _node_extname(base: str) -> str:
    # Node's path.extname: "" when the only dot starts the name (".env") or there is none.
    dot = base.rfind(".")
    return "" if dot <= 0 or base == ".." else base[dot:]


def _path_and_access(rel_path: str, ext: str, *, drop_extension: bool) -> tuple[str, Visibility]:
    folder, _, base = rel_path.rpartition("/")
    stem = base[: len(base) - len(ext)] if ext and base != ext else base
    # `file.name.includes('.protected' + ext)`: the whole relative name, folders too.
    if f".protected{ext}" in rel_path:
        visibility = Visibility.PROTECTED
    elif f".private{ext}" in rel_path:
        visibility = Visibility.PRIVATE
    else:
        visibility = Visibility.PUBLIC
    # `baseName.replace('.' + access, '')`: a string pattern, so only its first occurrence,
    # and for public files `.public` too.
    stem = stem.replace("." + visibility.value, "", 1)
    joined = posixpath.normpath(posixpath.join(folder or ".", stem))  # Node's path.join
    path = "/" + joined
    if not drop_extension:
        path += ext
    path = _JS_SPACE_RE.sub("-", path)
    # upath's toUnix: backslashes to slashes, then no doubled slash anywhere.
    path = re.sub("/{2,}", "/", path.replace("\\", "/"))
    return path, visibility


def function_path_problem(path: str) -> str | None:
    """What `checkForValidPath` would refuse in a published path (None when it is valid).

    The same rules as for assets: a leading `/`, no `#`, none of `;,?:@+&$()' "`, shorter than
    256 characters (the Function Version page: paths are "a maximum of 255 characters").
    """
    if not path.startswith("/"):
        return f"published path {path!r} must start with '/'"
    if "#" in path:
        return f"published path {path!r} contains '#', which Twilio does not allow: rename the file"
    bad = _INVALID_PATH_RE.search(path)
    if bad is not None:
        return (
            f"published path {path!r} contains {bad.group()!r}, which Twilio does not allow "
            f"(none of {_INVALID_PATH_CHARS.replace(' ', '')} or a space): rename the file"
        )
    if len(path) > MAX_PATH_LENGTH:
        return (
            f"published path is {len(path)} characters; Twilio allows at most {MAX_PATH_LENGTH}: "
            "shorten the file or folder names"
        )
    return None


def function_size_limit(visibility: Visibility) -> int:
    """The largest Function Version the upload host takes, in bytes.

    Twilio documents no size limit of its own for Function Versions; they go to the same
    upload host as Asset Versions, whose limits by visibility (25 MB public and protected,
    10 MB private: api-contract.md §4) are the only documented ones, and the emulator applies
    them to both kinds.
    """
    return MAX_PRIVATE_ASSET_BYTES if visibility is Visibility.PRIVATE else MAX_PUBLIC_ASSET_BYTES


def parse_package_dependencies(text: str, *, file: str) -> tuple[tuple[str, str], ...]:
    """package.json `dependencies` as sorted (name, version) pairs: a build's Dependencies.

    `getDependencies` sends every entry of `dependencies` (and nothing of `devDependencies`):
    it leaves out no package and adds none, so `twilio` and `@twilio/runtime-handler` are sent
    when listed (twilio-run only warns when the runtime handler is missing). An empty or null
    version becomes `*`, as there.

    Raises:
        ConfigError: naming `file`, for invalid JSON, a `dependencies` that is not an object,
            or a version that is not a string.
    """
    try:
        document = json.loads(text)
    except ValueError as exc:
        detail = (
            f"{exc.msg} at line {exc.lineno} column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else "not valid JSON"
        )
        raise ConfigError(f"{file}: not valid JSON ({detail}): fix the file", file=file) from None
    if not isinstance(document, dict):
        raise ConfigError(f"{file}: expected a JSON object at the top level", file=file)
    dependencies = document.get("dependencies")
    if not dependencies:  # missing, null, {} (and the library's `if (!dependencies)`)
        return ()
    if not isinstance(dependencies, dict):
        raise ConfigError(
            f"{file}: \"dependencies\" must be an object of package name to version", file=file
        )
    pairs: list[tuple[str, str]] = []
    for name, version in dependencies.items():
        if version is None or version == "":
            version = "*"
        if not isinstance(version, str):
            raise ConfigError(
                f"{file}: the version of dependency {name!r} must be a string, like \"^1.2.3\"",
                key=name,
                file=file,
            )
        pairs.append((name, version))
    return tuple(sorted(pairs))


# dotenv 6.2.0's line rule: `^\s*([\w.-]+)\s*=\s*(.*)?\s*$` (no flags), applied to each piece
# of the text split on "\n". JavaScript's `\w` is ASCII, its `.` stops at \r, U+2028, U+2029.
_DOTENV_LINE_RE = re.compile(
    rf"[{_JS_SPACE}]*([A-Za-z0-9_.-]+)[{_JS_SPACE}]*=[{_JS_SPACE}]*([^\n\r\u2028\u2029]*)"
    rf"[{_JS_SPACE}]*\Z"
)
_SURROUNDING_QUOTE_RE = re.compile(r"\A['\"]|['\"]\Z")
_EXPORT_RE = re.compile(rf"[{_JS_SPACE}]*export[{_JS_SPACE}]+[A-Za-z0-9_.-]+[{_JS_SPACE}]*=")
# A quoted value closed before a ` # comment` (`"hello world" # note`), or a bare value with
# one (`hello # note`): dotenv 6.2.0 keeps the comment in the value, newer dotenv drops it.
_QUOTED_THEN_COMMENT_RE = re.compile(rf"\A([\"'])[^\n]*?\1[{_JS_SPACE}]+#")
_BARE_COMMENT_RE = re.compile(rf"[{_JS_SPACE}]#")


def parse_dotenv(text: str, *, file: str) -> dict[str, str]:
    """The variables of a .env file, read as twilio-run reads it (dotenv 6.2.0's `parse`).

    `KEY=VALUE` per line (KEY of ASCII letters, digits, `_`, `.`, `-`; spaces around `=`
    allowed); everything after the first `=` is the value, `=` and `#` included (no inline
    comments); a value in double quotes has each `\\n` turned into a newline; one leading and
    one trailing quote (`'` or `"`) are removed, then surrounding whitespace; `KEY=` is the
    empty value; a later line for the same key wins. Blank lines and lines starting with `#`
    are skipped.

    dotenv 6.2.0 silently skips any other line, so `export KEY=...` and the second line of a
    value spanning lines never reach Twilio with twilio-run. Here such a line is an error
    instead, so nothing a user wrote is dropped unseen.

    Raises:
        ConfigError: `file:line: ...`, naming the line and never its content (it may hold a
            secret).
    """
    variables: dict[str, str] = {}
    open_quote = False  # the previous KEY=VALUE line opened a double quote it did not close
    for number, line in enumerate(text.split("\n"), start=1):
        match = _DOTENV_LINE_RE.match(line)
        if match is None:
            stripped = line.strip(_JS_SPACE_CHARS)
            if not stripped or stripped.startswith("#"):
                open_quote = False
                continue
            raise ConfigError(f"{file}:{number}: {_dotenv_line_hint(line, open_quote)}", file=file)
        key, value = match.group(1), match.group(2)
        open_quote = value.startswith('"') and (len(value) == 1 or not value.endswith('"'))
        if len(value) > 0 and value[0] == '"' and value[-1] == '"':
            value = value.replace("\\n", "\n")
        value = _SURROUNDING_QUOTE_RE.sub("", value).strip(_JS_SPACE_CHARS)
        variables[key] = value
    return variables


def dotenv_warnings(text: str, *, file: str) -> list[str]:
    """One line per `KEY=VALUE` line whose value carries what looks like an inline comment,
    which twilio-run's dotenv keeps in the value (`parse_dotenv` keeps it too, for parity):
    `file:line: KEY: ...`, naming the key and never the value."""
    found: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        match = _DOTENV_LINE_RE.match(line)
        if match is None:
            continue
        key, value = match.group(1), match.group(2)
        if _QUOTED_THEN_COMMENT_RE.match(value):
            what = "the text after its closing quote (a `# comment`?)"
        elif value[:1] not in ("'", '"') and _BARE_COMMENT_RE.search(value):
            what = "` #` and the text after it (a comment?)"
        else:
            continue
        found.append(f"{file}:{number}: {key}: {what} stays in the value, as twilio-run's "
                     "dotenv 6.2.0 reads it (newer dotenv drops it): put comments on lines "
                     "of their own")
    return found


def _dotenv_line_hint(line: str, open_quote: bool) -> str:
    if _EXPORT_RE.match(line):
        return (
            "`export KEY=VALUE` is not read by twilio-run's dotenv (it skips the line): "
            "drop `export`"
        )
    if open_quote:
        return (
            "a value spanning lines is not read by twilio-run's dotenv (it keeps the first line "
            'only): put it on one line, with \\n for each newline inside "double quotes"'
        )
    return (
        "expected KEY=VALUE (KEY of letters, digits, _ . -), a # comment or a blank line; "
        "twilio-run's dotenv would skip this line: fix or remove it"
    )


def deploy_variables(env: Mapping[str, str]) -> dict[str, str]:
    """The variables `twilio-run deploy` sets from a parsed .env: without empty values and
    without `ACCOUNT_SID` / `AUTH_TOKEN` (`filterEnvVariablesForDeploy`)."""
    return {
        key: value
        for key, value in env.items()
        if value != "" and key not in DEPLOY_SKIPPED_VARIABLES
    }
