"""`@frozen` behaves as `@dataclass(frozen=True, slots=True)`, and `assetsync.frozen`'s `field`,
`fields`, `replace` and `asdict` as `dataclasses`' own: `__init__` (defaults, factories,
`init=False` and keyword-only fields, `__post_init__`), equality, hash, repr, slots, pickling,
immutability, inheritance, `ClassVar`, and methods a class defines itself (hypothesis properties
drive both with the same random values)."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
import typing
from collections import namedtuple
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assetsync.frozen import (
    MISSING,
    FrozenInstanceError,
    asdict,
    field,
    fields,
    frozen,
    replace,
)


@frozen
class Made:
    """One field of each kind `dataclass` treats differently."""

    name: str
    count: int = 0
    tags: tuple[str, ...] = ()
    token: str = field(default="", repr=False)  # never shown, still compared
    seen: int = field(default=0, compare=False)  # shown, neither compared nor hashed
    weight: float = field(default=0.0, hash=False)  # compared, not hashed


@dataclasses.dataclass(frozen=True, slots=True)
class Generated:
    """The same fields, made by `dataclass` itself."""

    name: str
    count: int = 0
    tags: tuple[str, ...] = ()
    token: str = dataclasses.field(default="", repr=False)
    seen: int = dataclasses.field(default=0, compare=False)
    weight: float = dataclasses.field(default=0.0, hash=False)


_ARGS = st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 2),
                  st.lists(st.sampled_from(["x", "y"]), max_size=2).map(tuple),
                  st.sampled_from(["", "secret"]), st.integers(0, 2),
                  st.sampled_from([0.0, 1.5, float("nan")]))


def _repr_as_generated(made: object) -> str:
    return repr(made).replace("Made", "Generated")


def _spec(f: Any) -> tuple[object, ...]:
    """A field's description, with either module's MISSING as None."""
    def absent(value: object) -> object:
        return None if value is MISSING or value is dataclasses.MISSING else value

    return (f.name, f.type, absent(f.default), absent(f.default_factory), f.init, f.repr,
            f.hash, f.compare, f.kw_only)


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


def test_it_is_slotted_frozen_and_pickles_as_the_dataclass_is() -> None:
    made = Made("a", 1, ("x",), "t", 2, 0.5)
    assert not hasattr(made, "__dict__") and not hasattr(made, "__weakref__")
    assert Made.__dict__["__slots__"] == Generated.__slots__
    assert Made.__match_args__ == Generated.__match_args__
    # Defaults live in `__init__`: the class attribute is the slot, as `dataclass` leaves it.
    assert type(Made.__dict__["count"]) is type(Generated.__dict__["count"])
    assert pickle.loads(pickle.dumps(made)) == made
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert repr(pickle.loads(pickle.dumps(made, protocol))) == repr(made)
    assert issubclass(FrozenInstanceError, AttributeError)
    with pytest.raises(FrozenInstanceError, match="count"):
        made.count = 3  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError, match="name"):
        del made.name
    with pytest.raises(FrozenInstanceError):
        made.other = 1  # type: ignore[attr-defined]
    assert made.count == 1 and made.name == "a"
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

        def shout(self) -> str:
            return self.name.upper()

    @frozen
    class OwnHash:
        name: str

        def __hash__(self) -> int:
            return 7

    assert ByName("a", "x") == ByName("a", "y")
    assert repr(ByName("a")) == "<a>" and ByName("a").shout() == "A"
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


def _seven() -> list[int]:
    return [7]


@frozen
class Made2:
    """Every way `__init__` can take or make a field."""

    name: str
    items: list[str] = field(default_factory=list)
    made: tuple[int, ...] = field(init=False, default=(1,))
    fresh: list[int] = field(init=False, default_factory=_seven)
    later: str = field(init=False)  # no default: set by __post_init__
    flag: bool = field(default=False, kw_only=True)
    size: int = field(kw_only=True, default=3)

    def __post_init__(self) -> None:
        object.__setattr__(self, "later", self.name.upper())


@dataclasses.dataclass(frozen=True, slots=True)
class Generated2:
    """The same, made by `dataclass`."""

    name: str
    items: list[str] = dataclasses.field(default_factory=list)
    made: tuple[int, ...] = dataclasses.field(init=False, default=(1,))
    fresh: list[int] = dataclasses.field(init=False, default_factory=_seven)
    later: str = dataclasses.field(init=False)
    flag: bool = dataclasses.field(default=False, kw_only=True)
    size: int = dataclasses.field(kw_only=True, default=3)

    def __post_init__(self) -> None:
        object.__setattr__(self, "later", self.name.upper())


def _values(obj: object) -> tuple[object, ...]:
    return tuple(getattr(obj, f.name) for f in dataclasses.fields(Generated2))


_KWARGS = st.fixed_dictionaries({}, optional={
    "items": st.lists(st.sampled_from(["x", "y"]), max_size=2),
    "flag": st.booleans(), "size": st.integers(0, 5)})


@given(st.sampled_from(["a", "b"]), _KWARGS)
def test_init_takes_and_makes_fields_as_dataclass_does(name: str,
                                                      kwargs: dict[str, Any]) -> None:
    made, generated = Made2(name, **kwargs), Generated2(name, **kwargs)
    assert _values(made) == _values(generated)
    assert repr(made).replace("Made2(", "Generated2(", 1) == repr(generated)
    assert made.later == name.upper()
    assert Made2(name).items is not Made2(name).items  # a new list from the factory each time
    assert Made2(name).fresh is not Made2(name).fresh
    assert Made2.__match_args__ == Generated2.__match_args__ == ("name", "items")


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


def test_class_bodies_are_refused_as_dataclass_refuses_them() -> None:
    with pytest.raises(ValueError, match="mutable default"):
        @frozen
        class Shared:
            items: list[str] = []  # noqa: RUF012
    with pytest.raises(ValueError, match="both default and default_factory"):
        field(default=1, default_factory=int)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="no type annotation"):
        @frozen
        class Unannotated:
            x = field(default=1)
    with pytest.raises(TypeError, match="assetsync.frozen.field"):
        @frozen
        class Mixed:
            x: int = dataclasses.field(default=1)
    with pytest.raises(TypeError, match="__slots__"):
        @frozen
        class Slotted:
            __slots__ = ("x",)
            x: int


@given(_KWARGS, _KWARGS.map(lambda d: {**d, **({"name": "c"} if len(d) % 2 else {})}))
def test_replace_is_the_dataclass_one(start: dict[str, Any], changes: dict[str, Any]) -> None:
    made, generated = Made2("a", **start), Generated2("a", **start)
    new_made, new_generated = replace(made, **changes), dataclasses.replace(generated, **changes)
    assert type(new_made) is Made2
    assert _values(new_made) == _values(new_generated)
    assert new_made.later == new_made.name.upper()  # made through __init__: __post_init__ ran
    assert _values(made) == _values(Made2("a", **start))  # the original is untouched


def test_replace_refuses_what_dataclass_replace_refuses() -> None:
    for module_replace, obj in ((replace, Made2("a")), (dataclasses.replace, Generated2("a"))):
        with pytest.raises(ValueError, match="init=False"):
            module_replace(obj, later="x")
        with pytest.raises(TypeError):
            module_replace(obj, nothing=1)
    with pytest.raises(TypeError, match="@frozen"):
        replace(Generated2("a"))
    with pytest.raises(TypeError, match="dataclass"):
        dataclasses.replace(Made2("a"))  # not a dataclass at all


def test_fields_are_the_dataclass_ones() -> None:
    for mine, theirs in ((Made, Generated), (Made2, Generated2)):
        assert [_spec(f) for f in fields(mine)] == [_spec(f) for f in
                                                   dataclasses.fields(theirs)]
        assert fields(mine("a")) == fields(mine)
    with pytest.raises(TypeError, match="@frozen"):
        fields(Generated)
    with pytest.raises(TypeError):
        fields(Made2("a").items)


Pair = namedtuple("Pair", ["left", "right"])


@frozen
class Leaf:
    """A nested value."""

    word: str
    tags: list[str] = field(default_factory=list)


@frozen
class Tree:
    """Every container `asdict` walks into."""

    leaf: Leaf
    leaves: list[Leaf]
    pair: tuple[object, ...]
    named: object
    table: dict[str, Leaf]


@dataclasses.dataclass(frozen=True)
class GLeaf:
    """The same, as dataclasses."""

    word: str
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class GTree:
    """The same, as dataclasses."""

    leaf: GLeaf
    leaves: list[GLeaf]
    pair: tuple[object, ...]
    named: object
    table: dict[str, GLeaf]


_WORDS = st.lists(st.sampled_from(["p", "q"]), max_size=2)


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), _WORDS), min_size=1, max_size=4))
def test_asdict_is_the_dataclass_one(drawn: list[tuple[str, list[str]]]) -> None:
    def build(tree: Any, leaf: Any) -> Any:
        leaves = [leaf(w, list(t)) for w, t in drawn]
        return tree(leaves[0], leaves, (leaves[-1], 1, [leaves[0]]),
                    Pair(leaves[0], {"k": leaves[-1]}), {w: leaf(w, list(t)) for w, t in drawn})

    mine, theirs = build(Tree, Leaf), build(GTree, GLeaf)
    made = asdict(mine)
    assert made == dataclasses.asdict(theirs)
    assert type(made["named"]) is Pair and type(made["pair"]) is tuple
    assert made["leaf"]["tags"] is not mine.leaf.tags  # a copy, as dataclasses makes
    with pytest.raises(TypeError, match="@frozen"):
        asdict({"a": 1})


def test_a_subclass_gathers_fields_over_the_mro_as_dataclass_does() -> None:
    @frozen
    class Base:
        a: int
        b: str = "b"

    @frozen
    class Child(Base):
        c: int = 0
        b: str = "child"  # re-declared: keeps its place, takes the new default

    @dataclasses.dataclass(frozen=True, slots=True)
    class GBase:
        a: int
        b: str = "b"

    @dataclasses.dataclass(frozen=True, slots=True)
    class GChild(GBase):
        c: int = 0
        b: str = "child"

    assert [_spec(f) for f in fields(Child)] == [_spec(f) for f in dataclasses.fields(GChild)]
    assert Child.__dict__["__slots__"] == GChild.__slots__ and Child.__match_args__ == GChild.__match_args__
    child, generated = Child(1), GChild(1)
    assert (child.a, child.b, child.c) == (generated.a, generated.b, generated.c)
    assert repr(Child(1, "x", 2)).endswith("Child(a=1, b='x', c=2)")
    assert Child(1, "x", 2) != Base(1, "x") and Base(1, "x") == Base(1, "x")
    assert not hasattr(child, "__dict__")
    with pytest.raises(FrozenInstanceError):
        child.a = 5  # type: ignore[misc]
    assert replace(child, a=3) == Child(3, "child", 0)
    assert pickle.loads(pickle.dumps(Made2("p", ["q"], flag=True))) == Made2("p", ["q"], flag=True)


def test_class_variables_are_not_fields() -> None:
    @frozen
    class Counted:
        limit: ClassVar[int] = 3
        other: typing.ClassVar[str] = "x"
        name: str = "n"

    @dataclasses.dataclass(frozen=True, slots=True)
    class GCounted:
        limit: ClassVar[int] = 3
        other: typing.ClassVar[str] = "x"
        name: str = "n"

    assert [_spec(f) for f in fields(Counted)] == [_spec(f) for f in dataclasses.fields(GCounted)]
    assert (Counted.limit, Counted.other) == (3, "x") and Counted.__dict__["__slots__"] == ("name",)
    assert Counted("m") == Counted("m") and repr(Counted()).endswith("Counted(name='n')")


def test_its_own_init_is_kept() -> None:
    @frozen
    class FromText:
        value: int

        def __init__(self, text: str) -> None:
            object.__setattr__(self, "value", int(text))

    assert FromText("12").value == 12
    assert FromText("12") == FromText("12")


def test_the_module_imports_no_dataclasses() -> None:
    # Issue 26: `dataclasses` (and the `inspect` it imports) cost every process ~7 ms.
    code = "import sys, assetsync.frozen; print(sorted({'dataclasses', 'inspect'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
