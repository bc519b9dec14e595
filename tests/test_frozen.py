"""`@frozen` behaves as `@dataclass(frozen=True, slots=True)`: equality, hash, repr, fields,
replace, pickling, immutability, and methods a class defines itself (a hypothesis property
drives both with the same random values)."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import FrozenInstanceError, dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assetsync.frozen import frozen


@frozen
class Made:
    """One field of each kind `dataclass` treats differently."""

    name: str
    count: int = 0
    tags: tuple[str, ...] = ()
    token: str = field(default="", repr=False)  # never shown, still compared
    seen: int = field(default=0, compare=False)  # shown, neither compared nor hashed
    weight: float = field(default=0.0, hash=False)  # compared, not hashed


@dataclass(frozen=True, slots=True)
class Generated:
    """The same fields, made by `dataclass` itself."""

    name: str
    count: int = 0
    tags: tuple[str, ...] = ()
    token: str = field(default="", repr=False)
    seen: int = field(default=0, compare=False)
    weight: float = field(default=0.0, hash=False)


_ARGS = st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 2),
                  st.lists(st.sampled_from(["x", "y"]), max_size=2).map(tuple),
                  st.sampled_from(["", "secret"]), st.integers(0, 2),
                  st.sampled_from([0.0, 1.5, float("nan")]))


def _repr_as_generated(made: Made) -> str:
    return repr(made).replace("Made(", "Generated(", 1)


@given(_ARGS, _ARGS)
def test_equality_hash_and_repr_are_the_dataclass_ones(one: tuple[object, ...],
                                                      two: tuple[object, ...]) -> None:
    m1, m2, g1, g2 = Made(*one), Made(*two), Generated(*one), Generated(*two)
    assert (m1 == m2) is (g1 == g2)
    assert (m1 != m2) is (g1 != g2)
    assert hash(m1) == hash(g1)
    assert _repr_as_generated(m1) == repr(g1)
    assert "secret" not in repr(m1)


def test_another_class_with_the_same_fields_is_not_equal() -> None:
    assert Made("a") != Generated("a")
    assert Made.__eq__(Made("a"), Generated("a")) is NotImplemented
    assert Made("a") != ("a", 0, (), "", 0, 0.0)


def test_it_is_a_frozen_slotted_dataclass() -> None:
    made = Made("a", 1, ("x",), "t", 2, 0.5)
    assert dataclasses.is_dataclass(made) and not hasattr(made, "__dict__")
    assert [f.name for f in dataclasses.fields(Made)] == list(Made.__match_args__)
    assert dataclasses.replace(made, count=5) == Made("a", 5, ("x",), "t", 2, 0.5)
    assert pickle.loads(pickle.dumps(made)) == made
    assert dataclasses.asdict(made)["token"] == "t"
    with pytest.raises(FrozenInstanceError):
        made.count = 3  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del made.name  # type: ignore[misc]
    assert {made, Made("a", 1, ("x",), "t", 9, 0.5)} == {made}  # `seen` is not compared


def test_methods_the_class_defines_are_kept() -> None:
    @frozen
    class ByName:
        name: str
        note: str = ""

        def __eq__(self, other: object) -> bool:
            return isinstance(other, ByName) and other.name == self.name

        def __repr__(self) -> str:
            return f"<{self.name}>"

    @frozen
    class OwnHash:
        name: str

        def __hash__(self) -> int:
            return 7

    assert ByName("a", "x") == ByName("a", "y")
    assert repr(ByName("a")) == "<a>"
    # `__eq__` alone leaves no hash of its own: the fields' one is made, as `dataclass` does.
    assert hash(ByName("a", "x")) == hash(("a", "x"))
    assert hash(OwnHash("a")) == 7
    assert OwnHash("a") == OwnHash("a") and OwnHash("a") != OwnHash("b")


def test_a_recursive_repr_stops() -> None:
    @frozen
    class Box:
        items: list[object]

    box = Box([])
    box.items.append(box)
    assert repr(box).endswith(".Box(items=[...])")  # the qualname, as a dataclass shows it
