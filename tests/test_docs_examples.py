"""Every TOML config example in README.md and docs/*.md is a valid config, as written.

A fragment (only `[optimize]`, or a `[project]` without its required keys) gets the missing
required keys added; anything else in it must parse as it stands, with no warning.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from assetsync.config import parse_config
from assetsync.media.options import variant_path

ROOT = Path(__file__).resolve().parents[1]
_FENCE = re.compile(r"^```toml\n(.*?)^```", re.DOTALL | re.MULTILINE)
_REQUIRED = {"source": '"site"', "service": '"demo"'}


def _examples() -> list[tuple[str, str]]:
    out = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            out.append((f"{doc.relative_to(ROOT)}:{line}", match.group(1)))
    return out


EXAMPLES = _examples()


def _completed(block: str) -> str:
    """The block with `[project]`'s required keys added where it lacks them."""
    project = tomllib.loads(block).get("project")
    missing = "".join(f"{k} = {v}\n" for k, v in _REQUIRED.items()
                      if not isinstance(project, dict) or k not in project)
    if project is None:
        return f"[project]\n{missing}{block}"
    return re.sub(r"^\[project\][^\n]*\n", lambda m: m.group(0) + missing, block, count=1,
                  flags=re.MULTILINE)


def test_the_docs_have_config_examples() -> None:
    where = {name.split(":")[0] for name, _ in EXAMPLES}
    assert {"README.md", "docs/media.md"} <= where and len(EXAMPLES) >= 5


@pytest.mark.parametrize(("where", "block"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_config_example_parses(where: str, block: str) -> None:
    config = parse_config(_completed(block), file="/project/.assetsync.toml", environ={})
    assert config.warnings == (), where
    # A profile's variants keep the source layout under the profile's name: a glob over a
    # folder of that same name would publish /mms/mms/... (issue 25's docs/media.md example).
    assert config.optimize is not None
    for profile in config.optimize.profiles:
        for glob in profile.globs:
            published = "/" + glob.replace("**", "x").replace("*", "x")
            path = variant_path(profile.path or "/{path}", profile=profile.name,
                                published=published, ext="jpg")
            assert not path.startswith(f"/{profile.name}/{profile.name}/"), (where, glob, path)
