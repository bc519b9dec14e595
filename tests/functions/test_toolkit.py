"""The Toolkit layout rules: function names, package.json dependencies and .env parsing.

Every expected value in the tables below was produced by the official code itself (Node 20):
`getPathAndAccessFromFileInfo` of `@twilio-labs/serverless-api` 5.7.0 for the names, and
`parse` of `dotenv` 6.2.0 (twilio-run 5.0.1's) for the .env texts.
"""

from __future__ import annotations

import pytest

from assetsync.errors import ConfigError
from assetsync.functions.toolkit import (
    ToolkitFunction,
    deploy_variables,
    dotenv_warnings,
    function_path_problem,
    function_size_limit,
    parse_dotenv,
    parse_package_dependencies,
    toolkit_asset_path,
    toolkit_function,
)
from assetsync.models import Visibility
from tests.test_foundation_purity import test_pure_module_imports_and_calls as check_pure

PUBLIC, PROTECTED, PRIVATE = Visibility.PUBLIC, Visibility.PROTECTED, Visibility.PRIVATE

FUNCTION_NAMES = [
    ("hello.js", "/hello", PUBLIC),
    ("index.js", "/index", PUBLIC),  # no index handling in the library
    ("admin/index.protected.js", "/admin/index", PROTECTED),
    ("admin/secret.protected.js", "/admin/secret", PROTECTED),
    ("lib/util.private.js", "/lib/util", PRIVATE),
    ("a/b/c/deep.js", "/a/b/c/deep", PUBLIC),
    ("my func.js", "/my-func", PUBLIC),
    ("tab\tname.js", "/tab-name", PUBLIC),
    ("x\u00a0y.js", "/x-y", PUBLIC),  # JavaScript's \s includes the no-break space
    ("x.public.js", "/x", PUBLIC),
    ("x.protected.private.js", "/x.protected", PRIVATE),
    ("x.private.protected.js", "/x.private", PROTECTED),
    ("foo.protected.bar.protected.js", "/foo.bar.protected", PROTECTED),
    ("a.protected.js/b.js", "/a.protected.js/b", PROTECTED),  # the marker anywhere in the name
    ("weird.protected.jsx.js", "/weird.jsx", PROTECTED),
    ("dir.private/x.js", "/dir.private/x", PUBLIC),
    ("x.privateer.js", "/x.privateer", PUBLIC),
    (".hidden.js", "/.hidden", PUBLIC),
    ("..js", "/.", PUBLIC),
    ("a..js", "/a.", PUBLIC),
    ("node_modules/pkg/index.js", "/node_modules/pkg/index", PUBLIC),
    ("café.js", "/café", PUBLIC),
]

NOT_FUNCTIONS = [".js", "x.ts", "x.mjs", "x.cjs", "x.js.map", "x.JS", "x.protected.ts",
                 "x.protectedjs", ".DS_Store", "README.md", "lib/data.json"]


@pytest.mark.parametrize(("name", "path", "visibility"), FUNCTION_NAMES)
def test_function_names_follow_the_official_library(
    name: str, path: str, visibility: Visibility
) -> None:
    assert toolkit_function(name) == ToolkitFunction(name, path, visibility)


@pytest.mark.parametrize("name", NOT_FUNCTIONS)
def test_only_dot_js_files_are_functions(name: str) -> None:
    assert toolkit_function(name) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("img/logo.private.png", ("/img/logo.png", PRIVATE)),
        ("a b.png", ("/a-b.png", PUBLIC)),
        ("x.public.css", ("/x.css", PUBLIC)),
        ("x.protected.private.png", ("/x.protected.png", PRIVATE)),
        ("noext", ("/noext", PUBLIC)),
        ("x.protected", ("/x.protected", PUBLIC)),
        ("dir.protected.png/x.txt", ("/dir.protected.png/x.txt", PUBLIC)),
        (".env", ("/.env", PUBLIC)),
        ("index.html", ("/index.html", PUBLIC)),
        ("a.protected.png.map", ("/a.protected.png.map", PUBLIC)),
        (".DS_Store", None),
        ("sub/.DS_Store", None),
    ],
)
def test_asset_names_follow_the_official_library(
    name: str, expected: tuple[str, Visibility] | None
) -> None:
    assert toolkit_asset_path(name) == expected


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("hello", "must start with '/'"),
        ("/a#b", "'#'"),
        ("/q?", "'?'"),
        ("/a+b", "'+'"),
        ("/it's", '"\'"'),
        ("/" + "x" * 255, "256 characters"),
    ],
)
def test_function_path_rules_refuse_what_the_library_refuses(path: str, fragment: str) -> None:
    problem = function_path_problem(path)
    assert problem is not None and fragment in problem


def test_valid_function_paths_pass() -> None:
    for path in ("/hello", "/admin/secret", "/" + "x" * 254, "/a.b-c_d~e/f"):
        assert function_path_problem(path) is None


def test_function_size_limit_follows_visibility() -> None:
    assert function_size_limit(PRIVATE) == 10_000_000
    assert function_size_limit(PUBLIC) == function_size_limit(PROTECTED) == 25_000_000


# package.json ---------------------------------------------------------------------------------


def test_dependencies_are_sorted_and_keep_twilios_own_packages() -> None:
    text = """{
      "name": "demo",
      "dependencies": {"twilio": "^5.0.0", "@twilio/runtime-handler": "2.0.1",
                       "axios": "1.6.0", "empty": "", "nulled": null},
      "devDependencies": {"twilio-run": "^4"}
    }"""
    assert parse_package_dependencies(text, file="package.json") == (
        ("@twilio/runtime-handler", "2.0.1"),
        ("axios", "1.6.0"),
        ("empty", "*"),
        ("nulled", "*"),
        ("twilio", "^5.0.0"),
    )


@pytest.mark.parametrize("text", ['{"name": "x"}', '{"dependencies": {}}',
                                  '{"dependencies": null}'])
def test_no_dependencies_is_an_empty_tuple(text: str) -> None:
    assert parse_package_dependencies(text, file="package.json") == ()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"dependencies": {"a": "1",}}', "not valid JSON"),
        ("[]", "JSON object"),
        ('{"dependencies": ["a"]}', '"dependencies" must be an object'),
        ('{"dependencies": {"left-pad": 1}}', "'left-pad' must be a string"),
        ('{"dependencies": {"x": {"v": "1"}}}', "'x' must be a string"),
    ],
)
def test_bad_package_json_names_the_file(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_package_dependencies(text, file="proj/package.json")
    assert str(err.value).startswith("proj/package.json: ")
    assert fragment in str(err.value)
    assert err.value.file == "proj/package.json"


def test_invalid_json_names_the_line() -> None:
    with pytest.raises(ConfigError, match=r"line 3 column"):
        parse_package_dependencies('{\n "a": 1,\n oops\n}', file="package.json")


# .env -----------------------------------------------------------------------------------------

DOTENV_CASES = [
    ("A=1\nB = two \n", {"A": "1", "B": "two"}),
    ("# c\n\n  # indented\nA=x", {"A": "x"}),
    ('Q="a\\nb"', {"Q": "a\nb"}),  # \n expands inside double quotes only
    ("S='a\\nb'", {"S": "a\\nb"}),
    ("P=a\\nb", {"P": "a\\nb"}),
    ("E=a=b=c", {"E": "a=b=c"}),
    ("H=val # not a comment", {"H": "val # not a comment"}),
    ("EMPTY=\nSP=   ", {"EMPTY": "", "SP": ""}),
    ("D=1\nD=2", {"D": "2"}),  # the last line wins
    ('M="abc"  ', {"M": 'abc"'}),  # text after the closing quote keeps it
    ("X='abc\"", {"X": "abc"}),  # one quote off each end, whichever kind
    ('W="  padded  "', {"W": "padded"}),  # trimmed after the quotes go
    ('CR="v"\r\nN=2\r\n', {"CR": "v", "N": "2"}),
    ("k.e-y_1=ok", {"k.e-y_1": "ok"}),
    ("\ufeffBOM=1", {"BOM": "1"}),
    ('U=""', {"U": ""}),
    ('ONE="', {"ONE": ""}),
    ("T=\t tab \t", {"T": "tab"}),
]


@pytest.mark.parametrize(("text", "expected"), DOTENV_CASES)
def test_dotenv_reads_as_twilio_runs_dotenv(text: str, expected: dict[str, str]) -> None:
    assert parse_dotenv(text, file=".env") == expected


SECRET = "s3cr3t-Value-77"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (f"A=1\nexport TOKEN={SECRET}\n", 2, "drop `export`"),
        (f'A=1\nKEY="{SECRET}\nsecond {SECRET}"\n', 3, "spanning lines"),
        (f"A=1\n\n{SECRET}\n", 3, "expected KEY=VALUE"),
        (f"BAD KEY={SECRET}", 1, "expected KEY=VALUE"),
        (f"ключ={SECRET}", 1, "expected KEY=VALUE"),  # dotenv's \w is ASCII
    ],
)
def test_dotenv_errors_name_the_line_never_the_value(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_dotenv(text, file="app/.env")
    message = str(err.value)
    assert message.startswith(f"app/.env:{line}: ")
    assert fragment in message
    assert SECRET not in message and SECRET not in repr(err.value)


@pytest.mark.parametrize(
    ("text", "warned"),
    [
        (f'GREETING="{SECRET}" # trailing', ["app/.env:1: GREETING: "]),
        (f"A=1\nQ='{SECRET}' #c\nB=2", ["app/.env:2: Q: "]),
        (f"H={SECRET} # not a comment", ["app/.env:1: H: "]),
        (f'M="{SECRET}"  \nC=#fff\nD="x # y"\nE=a#b\n# G="{SECRET}" # y', []),
    ],
)
def test_dotenv_warns_on_inline_comments_naming_the_key_never_the_value(
        text: str, warned: list[str]) -> None:
    lines = dotenv_warnings(text, file="app/.env")
    assert [line[:len(start)] for line, start in zip(lines, warned, strict=False)] == warned
    assert len(lines) == len(warned)
    assert not [line for line in lines if SECRET in line or "trailing" in line]


def test_dotenv_keeps_an_inline_comment_in_the_value_as_twilio_runs_dotenv() -> None:
    assert parse_dotenv('GREETING="hello world" # trailing', file=".env") == {
        "GREETING": 'hello world" # trailing'}


def test_deploy_variables_drop_empty_values_and_the_deploy_credentials() -> None:
    env = parse_dotenv("ACCOUNT_SID=AC1\nAUTH_TOKEN=tok\nEMPTY=\nKEEP=1\nZERO=0", file=".env")
    assert deploy_variables(env) == {"KEEP": "1", "ZERO": "0"}


def test_toolkit_module_is_pure() -> None:
    check_pure("functions/toolkit.py")
