"""`@frozen` behaves as `@dataclass(frozen=True, slots=True)`: `__init__` (defaults, factories,
`init=False` and keyword-only fields, `__post_init__`), equality, hash, repr, fields, replace,
pickling, immutability, inheritance, and methods a class defines itself (hypothesis properties
drive both with the same random values)."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Any

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
def test_equality_hash_and_repr_are_the_dataclass_ones(one: tuple[Any, ...],
                                                      two: tuple[Any, ...]) -> None:
    m1, m2, g1, g2 = Made(*one), Made(*two), Generated(*one), Generated(*two)
    assert (m1 == m2) is (g1 == g2)
    assert (m1 != m2) is (g1 != g2)
    assert hash(m1) == hash(g1)
    assert _repr_as_generated(m1) == repr(g1)
    assert "secret" not in repr(m1)


def test_another_class_with_the_same_fields_is_not_equal() -> None:
    assert Made("a") != Generated("a")  # type: ignore[comparison-overlap]
    assert Made.__eq__(Made("a"), Generated("a")) is NotImplemented
    assert Made("a") != ("a", 0, (), "", 0, 0.0)  # type: ignore[comparison-overlap]


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
        del made.name
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


@frozen
class Made2:
    """Every way `__init__` can take or make a field."""

    name: str
    items: list[str] = field(default_factory=list)
    made: tuple[int, ...] = field(init=False, default=(1,))
    fresh: list[int] = field(init=False, default_factory=lambda: [7])
    later: str = field(init=False)  # no default: set by __post_init__
    flag: bool = field(default=False, kw_only=True)
    size: int = field(kw_only=True, default=3)

    def __post_init__(self) -> None:
        object.__setattr__(self, "later", self.name.upper())


@dataclass(frozen=True, slots=True)
class Generated2:
    """The same, made by `dataclass`."""

    name: str
    items: list[str] = field(default_factory=list)
    made: tuple[int, ...] = field(init=False, default=(1,))
    fresh: list[int] = field(init=False, default_factory=lambda: [7])
    later: str = field(init=False)
    flag: bool = field(default=False, kw_only=True)
    size: int = field(kw_only=True, default=3)

    def __post_init__(self) -> None:
        object.__setattr__(self, "later", self.name.upper())


@given(st.sampled_from(["a", "b"]),
       st.one_of(st.none(), st.lists(st.sampled_from(["x", "y"]), max_size=2)),
       st.one_of(st.none(), st.booleans()), st.one_of(st.none(), st.integers(0, 5)))
def test_init_takes_and_makes_fields_as_dataclass_does(name: str, items: list[str] | None,
                                                      flag: bool | None,
                                                      size: int | None) -> None:
    kwargs = {k: v for k, v in (("items", items), ("flag", flag), ("size", size))
              if v is not None}
    made, generated = Made2(name, **kwargs), Generated2(name, **kwargs)  # type: ignore[arg-type]
    assert dataclasses.astuple(made) == dataclasses.astuple(generated)
    assert repr(made).replace("Made2(", "Generated2(", 1) == repr(generated)
    assert made.later == name.upper()
    assert Made2(name).items is not Made2(name).items  # a new list from the factory each time


def test_init_refuses_what_dataclass_refuses() -> None:
    with pytest.raises(TypeError):
        Made2("a", [], True)  # type: ignore[call-arg]  # flag is keyword-only
    with pytest.raises(TypeError):
        Made2()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="default"):
        @frozen
        class Bad:
            first: int = 0
            second: str  # type: ignore[misc]
    with pytest.raises(TypeError):
        @frozen
        class Mutable:
            x: int

            def __setattr__(self, name: str, value: object) -> None:
                object.__setattr__(self, name, value)


def test_a_subclass_adds_fields_and_stays_frozen() -> None:
    @frozen
    class Base:
        a: int
        b: str = "b"

    @frozen
    class Child(Base):
        c: int = 0

    child = Child(1, "x", 2)
    assert (child.a, child.b, child.c) == (1, "x", 2)
    assert child != Base(1, "x") and Base(1, "x") == Base(1, "x")
    assert repr(child).endswith("Child(a=1, b='x', c=2)")
    with pytest.raises(FrozenInstanceError):
        child.a = 5  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(Made2("p", ["q"], flag=True))) == Made2("p", ["q"], flag=True)


def test_its_own_init_is_kept() -> None:
    @frozen
    class FromText:
        value: int

        def __init__(self, text: str) -> None:
            object.__setattr__(self, "value", int(text))

    assert FromText("12").value == 12
    assert FromText("12") == FromText("12")
