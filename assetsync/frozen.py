"""`frozen`: the project's frozen slotted value class, with no `dataclasses` import at start-up.

`@frozen` makes what `@dataclass(frozen=True, slots=True)` makes: the same fields (gathered over
the MRO from `@frozen` bases first; `ClassVar` annotations skipped; defaults and `field()` specs),
the same slotted class (re-created with `__slots__`, defaults out of its dict, `__match_args__`,
no `__weakref__`), the same `__init__` (defaults, `default_factory`, `init=False` and keyword-only
fields, `__post_init__`), immutability (`FrozenInstanceError`), pickling, and the equality, hash
and repr of a frozen dataclass. This module's `field`, `fields`, `replace` and `asdict` are
`dataclasses`' for these classes (`dataclasses`' own refuse them: they are not dataclasses).

Why not `dataclasses` itself: importing it imports `inspect` (and `ast`, `dis`, `tokenize`...),
~7 ms of every process (issue 26); and `dataclass` writes each class six methods as source text
and compiles them, most of what a class costs on Python 3.11. Here only `__init__` is compiled,
in one piece: the other five are functions shared over each class's field names, which is how
the generated ones behave too (equal when the other is of the very same class and the compared
fields are equal, `NotImplemented` otherwise; the hash of the hashed fields' tuple;
`Name(field=value, ...)` over the fields shown in repr). A method the class defines itself is
kept, as `dataclass` keeps it. `InitVar` pseudo-fields are not supported (no value class needs
one); a class without a docstring gets none (`dataclass` writes its signature there).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from operator import attrgetter
from reprlib import recursive_repr
from types import MemberDescriptorType
from typing import Any, ClassVar, TypeVar, dataclass_transform, overload

__all__ = ["MISSING", "Field", "FrozenInstanceError", "asdict", "field", "fields", "frozen",
           "replace"]

T = TypeVar("T")

_set = object.__setattr__
_FACTORY = object()  # the signature's default of a field made by its default_factory
_FIELDS = "__frozen_fields__"  # the class attribute holding a class's fields, by name


class _Missing:
    """The type of `MISSING`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # a field's default or default_factory when it has none


class FrozenInstanceError(AttributeError):
    """Assigning to (or deleting) a field of a `@frozen` instance."""


class Field:
    """One field of a `@frozen` class, as `dataclasses.Field` describes one."""

    __slots__ = ("compare", "default", "default_factory", "hash", "init", "kw_only", "name",
                 "repr", "type")

    def __init__(self, default: Any, default_factory: Any, init: bool, repr: bool,
                 hash: bool | None, compare: bool, kw_only: bool) -> None:
        self.name = ""
        self.type: Any = None
        self.default = default
        self.default_factory = default_factory
        self.init = init
        self.repr = repr
        self.hash = hash
        self.compare = compare
        self.kw_only = kw_only

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in
                          ("name", "type", "default", "default_factory", "init", "repr", "hash",
                           "compare", "kw_only"))
        return f"Field({shown})"


@overload
def field(*, default: T, init: bool = True, repr: bool = True,
          hash: bool | None = None, compare: bool = True,
          kw_only: bool = False) -> T: ...
@overload
def field(*, default_factory: Callable[[], T], init: bool = True,
          repr: bool = True, hash: bool | None = None,
          compare: bool = True, kw_only: bool = False) -> T: ...
@overload
def field(*, init: bool = True, repr: bool = True, hash: bool | None = None,
          compare: bool = True, kw_only: bool = False) -> Any: ...
def field(*, default: Any = MISSING, default_factory: Any = MISSING, init: bool = True,
          repr: bool = True, hash: bool | None = None,
          compare: bool = True, kw_only: bool = False) -> Any:
    """A field's spec in a `@frozen` class body, as `dataclasses.field` (same parameters)."""
    if default is not MISSING and default_factory is not MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return Field(default, default_factory, init, repr, hash, compare, kw_only)


def fields(class_or_instance: object) -> tuple[Field, ...]:
    """The fields of a `@frozen` class or instance, in `__init__` order."""
    found = getattr(class_or_instance, _FIELDS, None)
    if found is None:
        raise TypeError("fields() takes a @frozen class or instance")
    return tuple(found.values())


def replace(obj: T, /, **changes: Any) -> T:
    """A new `obj` with `changes`, made through its `__init__` (so `__post_init__` runs)."""
    found: dict[str, Field] | None = getattr(type(obj), _FIELDS, None)
    if found is None:
        raise TypeError("replace() takes a @frozen instance")
    for f in found.values():
        if not f.init:
            if f.name in changes:
                raise ValueError(f"field {f.name} is declared with init=False, "
                                 "it cannot be specified with replace()")
        elif f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return obj.__class__(**changes)


def asdict(obj: object) -> dict[str, Any]:
    """`obj`'s fields as a dict, recursing into `@frozen` instances, lists, tuples and dicts
    (a copy of anything else), as `dataclasses.asdict` does."""
    if getattr(type(obj), _FIELDS, None) is None:
        raise TypeError("asdict() takes a @frozen instance")
    made: dict[str, Any] = _asdict_inner(obj)
    return made


def _asdict_inner(obj: Any) -> Any:
    found: dict[str, Field] | None = getattr(type(obj), _FIELDS, None)
    if found is not None:
        return {name: _asdict_inner(getattr(obj, name)) for name in found}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple takes its fields
        return type(obj)(*[_asdict_inner(v) for v in obj])
    if isinstance(obj, list | tuple):
        return type(obj)(_asdict_inner(v) for v in obj)
    if isinstance(obj, dict):
        return type(obj)((_asdict_inner(k), _asdict_inner(v)) for k, v in obj.items())
    if hasattr(type(obj), "__dataclass_fields__"):  # a real dataclass: its module is loaded
        import dataclasses  # only ever here, never at start-up

        return dataclasses.asdict(obj)
    import copy  # as `dataclasses.asdict` copies a leaf

    return copy.deepcopy(obj)


def _is_classvar(annotation: object, namespace: dict[str, Any]) -> bool:
    """Whether an annotation (a string, under `from __future__ import annotations`) names
    `typing.ClassVar`, resolved in the class's module as `dataclasses` resolves it."""
    if not isinstance(annotation, str):
        return annotation is ClassVar or getattr(annotation, "__origin__", None) is ClassVar
    head = annotation.split("[", 1)[0].strip()
    module, _, name = head.rpartition(".")
    if not name.isidentifier() or (module and not module.isidentifier()):
        return False
    where = namespace.get(module) if module else None
    found = getattr(where, name, None) if module else namespace.get(name)
    return found is ClassVar


def _own_field(cls: type, name: str, annotation: object) -> Field:
    """The field `cls` declares as `name: annotation [= default or field(...)]`."""
    default = getattr(cls, name, MISSING)
    if isinstance(default, Field):
        made = default
    elif type(default).__module__ == "dataclasses" and type(default).__name__ == "Field":
        raise TypeError(f"{cls.__qualname__}.{name}: a @frozen class takes "
                        "assetsync.frozen.field, not dataclasses.field")
    else:
        if isinstance(default, MemberDescriptorType):  # an inherited slot: no default
            default = MISSING
        made = Field(default, MISSING, True, True, None, True, False)
    made.name, made.type = name, annotation
    if made.default is not MISSING and made.default.__class__.__hash__ is None:
        raise ValueError(f"mutable default {type(made.default)} for field {name} is not "
                         "allowed: use default_factory")
    return made


def _gather(cls: type) -> tuple[dict[str, Field], list[str]]:
    """`cls`'s fields (its `@frozen` bases' first) and the names it declares itself."""
    gathered: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        gathered.update(base.__dict__.get(_FIELDS, {}))
    # `inspect.get_annotations` would import `inspect`, which this module exists to avoid.
    annotations: dict[str, object] = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
    namespace = vars(sys.modules[cls.__module__]) if cls.__module__ in sys.modules else {}
    own: list[str] = []
    for name, annotation in annotations.items():
        if "InitVar" in str(annotation):
            raise TypeError(f"{cls.__qualname__}: @frozen takes no InitVar; use @dataclass")
        if _is_classvar(annotation, namespace):
            if isinstance(cls.__dict__.get(name), Field):
                raise TypeError(f"field {name} cannot be a ClassVar with field()")
            continue
        gathered[name] = _own_field(cls, name, annotation)
        own.append(name)
    for name, value in cls.__dict__.items():
        if isinstance(value, Field) and name not in own:
            raise TypeError(f"{name!r} is a field but has no type annotation")
    return gathered, own


def _slotted(cls: type, gathered: dict[str, Field]) -> type:
    """`cls` made again with `__slots__` for its fields, as `dataclass(slots=True)` makes it:
    slots a base already has are not repeated, defaults leave the class dict (they live in
    `__init__`), and neither `__dict__` nor `__weakref__` is added."""
    if "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__} already specifies __slots__")
    inherited: set[str] = set()
    for base in cls.__mro__[1:-1]:
        slots = base.__dict__.get("__slots__", ())
        inherited.update((slots,) if isinstance(slots, str) else slots)
    body = {key: value for key, value in cls.__dict__.items()
            if key not in gathered and key not in ("__dict__", "__weakref__")}
    body["__slots__"] = tuple(name for name in gathered if name not in inherited)
    made: type = type(cls)(cls.__name__, cls.__bases__, body)
    made.__qualname__ = cls.__qualname__
    return made


def _tuple_of(names: Sequence[str]) -> Callable[[object], tuple[object, ...]]:
    """A function from an object to the tuple of those attributes (C-level for two or more)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


def _make_init(cls: type, items: Sequence[Field]) -> Callable[..., None]:
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


def _shared_methods(cls: type, items: Sequence[Field]) -> dict[str, Callable[..., Any]]:
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
    """Make `cls` a frozen slotted value class (see the module doc)."""
    own = cls.__dict__
    for name in ("__setattr__", "__delattr__"):
        if name in own:  # as `dataclass(frozen=True)` refuses it
            raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
    # A class that defines `__eq__` alone gets `__hash__ = None` from Python; `dataclass`
    # treats that as no hash of its own, and so does this.
    kept = {name for name in ("__init__", "__eq__", "__repr__") if name in own}
    if "__hash__" in own and not (own["__hash__"] is None and "__eq__" in own):
        kept.add("__hash__")
    gathered, _ = _gather(cls)
    made: type[T] = _slotted(cls, gathered)
    items = list(gathered.values())
    setattr(made, _FIELDS, gathered)
    if "__match_args__" not in own:
        made.__match_args__ = tuple(f.name for f in items  # type: ignore[attr-defined,misc]
                                    if f.init and not f.kw_only)
    methods = _shared_methods(made, items)
    if "__init__" not in kept:
        methods["__init__"] = _make_init(made, items)
    for name, method in methods.items():
        if name not in kept:
            method.__qualname__ = f"{made.__qualname__}.{name}"
            setattr(made, name, method)
    return made
