"""`frozen`: the project's frozen slotted dataclass, made with half the start-up work.

`@frozen` makes what `@dataclass(frozen=True, slots=True)` makes: the same fields (`dataclasses`
processes them: `fields`, `replace`, `asdict`, `is_dataclass` and `__match_args__` work as
usual), the same `__init__` (defaults, `default_factory`, `init=False` and keyword-only fields,
`__post_init__`), immutability (`FrozenInstanceError`), pickling, and the equality, hash and
repr of a frozen dataclass. Only how the methods are made differs. `dataclass` writes each class
six methods as source text and compiles them, and on Python 3.11 that compiling is most of what
a class costs (~0.45 ms; 3.13 compiles a class's methods in one go): `assetsync plan` loads some
50 such classes before it does anything. Here only `__init__` is compiled, in one piece: the
other five are functions shared over each class's field names, which is how the generated
ones behave too (equal when the other is of the very same class and the compared fields are
equal, `NotImplemented` otherwise; the hash of the hashed fields' tuple; `Name(field=value,
...)` over the fields shown in repr). A method the class defines itself is kept, as `dataclass`
keeps it. `InitVar` pseudo-fields are not supported (no value class needs one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import MISSING, Field, FrozenInstanceError, dataclass, field, fields
from operator import attrgetter
from reprlib import recursive_repr
from typing import Any, TypeVar, dataclass_transform

__all__ = ["frozen"]

T = TypeVar("T")

_set = object.__setattr__
_FACTORY = object()  # the signature's default of a field made by its default_factory


def _tuple_of(names: Sequence[str]) -> Callable[[object], tuple[object, ...]]:
    """A function from an object to the tuple of those attributes (C-level for two or more)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


def _make_init(cls: type, items: Sequence[Field[Any]]) -> Callable[..., None]:
    """The `__init__` a frozen dataclass gets: parameters in field order (keyword-only ones
    after `*`), each field set with `object.__setattr__`, then `__post_init__` if defined."""
    names: dict[str, object] = {"_set": _set, "_FACTORY": _FACTORY}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    for f in items:
        default, factory = f"_dflt_{f.name}", f"_fct_{f.name}"
        if f.default is not MISSING:
            names[default] = f.default
        if f.default_factory is not MISSING:
            names[factory] = f.default_factory
        if f.init:
            param = f.name
            if f.default is not MISSING:
                param += f"={default}"
            elif f.default_factory is not MISSING:
                param += "=_FACTORY"
            (keyword if f.kw_only else positional).append(param)
            made = (f"{factory}() if {f.name} is _FACTORY else {f.name}"
                    if f.default_factory is not MISSING else f.name)
        elif f.default_factory is not MISSING:
            made = f"{factory}()"
        elif f.default is not MISSING:
            made = default
        else:
            continue  # init=False with no default: left unset, as `dataclass` leaves it
        body.append(f"  _set(self, {f.name!r}, {made})")
    if hasattr(cls, "__post_init__"):
        body.append("  self.__post_init__()")
    params = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    source = f"def __init__({params}):\n" + ("\n".join(body) or "  pass") + "\n"
    try:
        exec(source, names)  # noqa: S102 - our own source, made from field names only
    except SyntaxError as exc:  # e.g. a field without a default after one with a default
        raise TypeError(f"{cls.__qualname__}: {exc.msg}") from None
    init: Callable[..., None] = names["__init__"]  # type: ignore[assignment]
    # As `dataclass` annotates it (tools that read signatures, hypothesis' `builds`, use them).
    init.__annotations__ = {**{f.name: f.type for f in items if f.init}, "return": None}
    return init


def _shared_methods(cls: type, items: Sequence[Field[Any]]) -> dict[str, Callable[..., Any]]:
    """The methods every frozen dataclass has, over `cls`'s fields."""
    every = tuple(f.name for f in items)
    compared = _tuple_of([f.name for f in items if f.compare])
    hashed = _tuple_of([f.name for f in items if (f.compare if f.hash is None else f.hash)])
    shown = [(f.name, attrgetter(f.name)) for f in items if f.repr]

    def __setattr__(self: object, name: str, value: object) -> None:
        if type(self) is cls or name in every:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)  # type: ignore[arg-type]

    def __delattr__(self: object, name: str) -> None:
        if type(self) is cls or name in every:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)  # type: ignore[arg-type]

    def __getstate__(self: object) -> list[object]:
        return [getattr(self, name) for name in every]

    def __setstate__(self: object, state: Sequence[object]) -> None:
        for name, value in zip(every, state, strict=False):
            _set(self, name, value)

    def __eq__(self: object, other: object) -> bool:
        if other.__class__ is self.__class__:
            return compared(self) == compared(other)
        return NotImplemented

    def __hash__(self: object) -> int:
        return hash(hashed(self))

    @recursive_repr()
    def __repr__(self: object) -> str:
        inner = ", ".join(f"{name}={get(self)!r}" for name, get in shown)
        return f"{self.__class__.__qualname__}({inner})"

    return {"__setattr__": __setattr__, "__delattr__": __delattr__,
            "__getstate__": __getstate__, "__setstate__": __setstate__,
            "__eq__": __eq__, "__hash__": __hash__, "__repr__": __repr__}


@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def frozen(cls: type[T]) -> type[T]:
    """Make `cls` a frozen slotted dataclass (see the module doc)."""
    own = cls.__dict__
    for name in ("__setattr__", "__delattr__"):
        if name in own:  # as `dataclass(frozen=True)` refuses it
            raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
    if any("InitVar" in str(kind) for kind in own.get("__annotations__", {}).values()):
        raise TypeError(f"{cls.__qualname__}: @frozen takes no InitVar; use @dataclass")
    # A class that defines `__eq__` alone gets `__hash__ = None` from Python; `dataclass`
    # treats that as no hash of its own, and so does this.
    kept = {name for name in ("__init__", "__eq__", "__repr__") if name in own}
    if "__hash__" in own and not (own["__hash__"] is None and "__eq__" in own):
        kept.add("__hash__")
    # Fields, slots and `__match_args__` from `dataclass` itself; it makes no method here.
    made: type[T] = dataclass(slots=True, init=False, eq=False, repr=False)(cls)
    items = fields(made)  # type: ignore[arg-type]
    methods = _shared_methods(made, items)
    if "__init__" not in kept:
        methods["__init__"] = _make_init(made, items)
    for name, method in methods.items():
        if name not in kept:
            method.__qualname__ = f"{made.__qualname__}.{name}"
            setattr(made, name, method)
    return made
