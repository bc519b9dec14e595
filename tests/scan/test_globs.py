"""Glob validation: every pattern `validate_glob` accepts compiles into a usable set (only a
pattern with a character set is compiled to be checked; everything else must translate to a
valid regex by construction)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from assetsync.scan.globs import GlobSet, compile_glob_set, validate_glob

# Every character a user could type into a pattern, regex metacharacters included.
_CHARS = st.sampled_from(list("ab.-_/*?\\!^$()+{}|&] \t~") + ["é", "[", "**"])


@given(st.lists(_CHARS, min_size=1, max_size=12).map("".join))
def test_every_accepted_pattern_compiles_into_a_usable_set(pattern: str) -> None:
    problem = validate_glob(pattern)
    if problem is not None:
        return  # refused for its syntax (a lone '\\', '**' inside a segment, '..'): fine
    glob_set = compile_glob_set((pattern,))
    assert isinstance(glob_set, GlobSet)
    glob_set.match("a/b.c")  # no re.error on first use either


def test_a_bad_character_set_range_is_refused_with_the_regex_error() -> None:
    problem = validate_glob("img/[z-a].png")
    assert problem is not None and "range" in problem
    assert validate_glob("img/[a-z].png") is None


def test_set_characters_that_regex_sets_treat_specially_are_plain_characters() -> None:
    # `[[`, `&&`, `~~`, `||` and `--` open a nested set or a set operation in a regex set
    # (Python's re warns of them now); in a glob set they are characters like any other.
    for pattern, inside, outside in (("[[]x", "[x", "]x"), ("[a&&]", "&", "b"),
                                     ("[~~]", "~", "a"), ("[a||]", "|", "b"),
                                     ("[!--/]", "a", "-")):
        glob_set = compile_glob_set((pattern,))  # filterwarnings=error: a warning fails here
        assert glob_set.match(inside) and not glob_set.match(outside), pattern


def test_a_closing_bracket_first_in_a_set_is_one_of_its_characters() -> None:
    assert compile_glob_set(("[]]",)).match("]")
    negated = compile_glob_set(("[!]]",))
    assert negated.match("a") and not negated.match("]")
    assert validate_glob("[!]") is not None  # no character before the end: unclosed


def test_escaped_metacharacters_match_literally() -> None:
    glob_set = compile_glob_set(("a+b(1).png", "x{2}$"))
    assert glob_set.match("a+b(1).png")
    assert not glob_set.match("aab1.png")
    assert glob_set.match("deep/x{2}$")
