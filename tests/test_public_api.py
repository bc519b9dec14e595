"""The package's public surface stays explicit and complete."""

from __future__ import annotations

import assetsync
from assetsync import errors


def test_all_is_sorted_and_importable() -> None:
    assert list(assetsync.__all__) == sorted(assetsync.__all__)
    for name in assetsync.__all__:
        assert hasattr(assetsync, name), name


def test_every_error_is_exported_and_rooted() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.AssetsyncError)
        assert name in assetsync.__all__, f"{name} missing from assetsync.__all__"
