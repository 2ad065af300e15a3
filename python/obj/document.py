"""Typed documents: the :func:`document` decorator and the index markers.

A document class is a ``@dataclass``, an attrs class (``@attrs.define``/``@attr.s`` with
annotations), a ``msgspec.Struct`` or a pydantic (v2) ``BaseModel`` decorated with
``@obj.document``; obj imports none of those libraries itself. Its fields, in
declaration order, are the positional layout of the stored bytes; the decorator reads the
type hints once and compiles a native codec for them::

    from dataclasses import dataclass, field
    from typing import Annotated
    import obj

    @obj.document(collection="orders", version=1,
                  indexes=[obj.Composite(("region", "status"), name="by_region_status")])
    @dataclass
    class Order:
        email: Annotated[str, obj.Unique]
        region: Annotated[str, obj.Index]
        tags: Annotated[list[str], obj.Each] = field(default_factory=list)
        status: str = "new"

Supported field types: ``int`` (64-bit), ``float``, ``str``, ``bytes``, ``bool``, ``None``,
``Optional[T]`` / ``T | None``, ``list[T]``, fixed ``tuple[A, B, ...]``, ``dict[str, T]``,
nested dataclasses, ``datetime.datetime``, ``datetime.date``, ``enum.Enum`` subclasses,
``uuid.UUID`` and ``typing.Any`` (any value a dict-native document may hold).

Loading a document restores its fields without calling ``__init__`` or ``__post_init__``:
they ran when the object was first built, and a stored document is restored as it was.
The same holds for the other model libraries: no attrs validators or
``__attrs_post_init__``, no msgspec ``__post_init__``, no pydantic validation (a loaded
pydantic model is what ``model_construct`` builds: every field counts as set).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import inspect
import sys
import threading
import types
import typing
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable, TypeVar

from . import _obj
from .errors import InvalidArgumentError

__all__ = ["Composite", "Each", "Index", "Unique", "doctype_of", "document", "is_document"]

T = TypeVar("T")


class _IndexMarker:
    """A field marker for ``typing.Annotated``: ``Annotated[str, obj.Index]``."""

    __slots__ = ("_name", "kind")

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self._name = name

    def __repr__(self) -> str:
        return f"obj.{self._name}"


#: A standard secondary index on the field (one entry per document).
Index = _IndexMarker("standard", "Index")
#: A unique index: two documents may not hold the same (non-None) value.
Unique = _IndexMarker("unique", "Unique")
#: A multi-value index on a ``list[...]`` field: one entry per distinct element.
Each = _IndexMarker("each", "Each")


class Composite:
    """A composite index over several fields, declared on the decorator::

    @obj.document(collection="orders",
                  indexes=[obj.Composite(("region", "status"), name="by_region_status")])
    """

    __slots__ = ("fields", "name")

    def __init__(self, fields: Sequence[str], *, name: str) -> None:
        if isinstance(fields, str) or not all(isinstance(f, str) and f for f in fields):
            raise InvalidArgumentError(
                "Composite fields must be a tuple of field names, e.g. ('region', 'status')"
            )
        if len(fields) < 2:
            raise InvalidArgumentError(
                "a Composite index needs two or more fields; use Annotated[T, obj.Index] for one"
            )
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError("Composite needs a non-empty name=...")
        self.fields: tuple[str, ...] = tuple(fields)
        self.name = name

    def __repr__(self) -> str:
        return f"obj.Composite({self.fields!r}, name={self.name!r})"


_INDEXABLE = ("int", "float", "str", "bytes", "bool", "none", "datetime", "date", "uuid")

#: (collection, version) → codec, for every class declared in this process.
_REGISTRY: dict[tuple[str, int], _obj.DocType] = {}
_REGISTRY_LOCK = threading.Lock()

_UNION_TYPES: tuple[Any, ...] = (typing.Union,)
if sys.version_info >= (3, 10):
    _UNION_TYPES += (types.UnionType,)


def _describe(
    tp: Any, where: str, seen: tuple[type, ...], ns: dict[str, Any] | None = None
) -> tuple[Any, ...]:
    """The native codec's description of one annotation."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _describe(args[0], where, seen, ns)
    if tp is Any:
        return ("any",)
    if tp is None or tp is type(None):
        return ("none",)
    if tp is bool:
        return ("bool",)
    if tp is int:
        return ("int",)
    if tp is float:
        return ("float",)
    if tp is str:
        return ("str",)
    if tp is bytes:
        return ("bytes",)
    if tp is datetime.datetime:
        return ("datetime",)
    if tp is datetime.date:
        return ("date",)
    if tp is uuid.UUID:
        return ("uuid",)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return ("enum", tp, [(m.name, m) for m in tp])
    if _model_kind(tp) is not None:
        if tp in seen:
            raise InvalidArgumentError(
                f"{where}: {tp.__name__} refers to itself; "
                "recursive document types are not supported"
            )
        return _describe_struct(tp, (*seen, tp), ns)
    if origin in _UNION_TYPES:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(rest) < len(args):
            return ("optional", _describe(rest[0], where, seen, ns))
        raise InvalidArgumentError(
            f"{where}: union {tp!r} is not supported; only Optional[T] (T | None) is"
        )
    if origin is list or tp in (list, typing.List):  # noqa: UP006
        if not args:
            raise InvalidArgumentError(f"{where}: a list field needs an item type, e.g. list[int]")
        return ("list", _describe(args[0], where, seen, ns))
    if origin is tuple or tp in (tuple, typing.Tuple):  # noqa: UP006
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            raise InvalidArgumentError(
                f"{where}: only fixed tuples such as tuple[int, str] are supported; "
                "use list[T] for a variable number of items"
            )
        if args == ((),):
            args = ()
        return ("tuple", [_describe(a, where, seen, ns) for a in args])
    if origin is dict or tp in (dict, typing.Dict):  # noqa: UP006
        if len(args) != 2 or args[0] is not str:
            raise InvalidArgumentError(f"{where}: dict fields must be dict[str, T]")
        return ("dict", _describe(args[1], where, seen, ns))
    raise InvalidArgumentError(
        f"{where}: type {tp!r} is not supported (supported: int, float, str, bytes, bool, None, "
        "Optional[T], list[T], tuple[...], dict[str, T], dataclasses, attrs classes, "
        "msgspec Structs, pydantic models, datetime, date, Enum, UUID, Any)"
    )


def _hints(cls: type, ns: dict[str, Any] | None = None) -> dict[str, Any]:
    """The resolved annotations of a dataclass. String annotations (``from __future__
    import annotations``) are looked up in the class's module and, failing that, among the
    names visible where ``@obj.document`` was applied (``ns``), so classes defined inside a
    function can refer to each other."""
    try:
        try:
            return typing.get_type_hints(cls, include_extras=True)
        except NameError:
            if ns is None:
                raise
            return typing.get_type_hints(cls, localns={**ns, **vars(cls)}, include_extras=True)
    except Exception as exc:  # NameError for unresolvable forward references, and others
        # Annotations that are already objects (no `from __future__ import annotations`)
        # can be used as they are, even when another one cannot be resolved.
        own: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            own.update(vars(klass).get("__annotations__", {}))
        hints = {name: own.get(name) for name in _field_names(cls)}
        unresolved = [name for name, tp in hints.items() if isinstance(tp, str)]
        if not unresolved:
            return hints
        raise InvalidArgumentError(
            f"cannot read the type hints of {cls.__name__} (field {unresolved[0]!r}): {exc}; "
            "define the types it refers to at module level"
        ) from exc


def _model_kind(tp: Any) -> str | None:
    """Which kind of model class ``tp`` is: ``"dataclass"``, ``"attrs"``, ``"msgspec"`` or
    ``"pydantic"`` (v2), or None. The libraries are looked up among the modules already
    imported: a class from one of them means it is, and obj imports none itself."""
    if not isinstance(tp, type):
        return None
    if dataclasses.is_dataclass(tp):
        return "dataclass"
    if "__attrs_attrs__" in dir(tp):
        return "attrs"
    msgspec = sys.modules.get("msgspec")
    if msgspec is not None and issubclass(tp, msgspec.Struct) and tp is not msgspec.Struct:
        return "msgspec"
    pydantic = sys.modules.get("pydantic")
    if (
        pydantic is not None
        and issubclass(tp, pydantic.BaseModel)
        and tp is not pydantic.BaseModel
        and hasattr(tp, "model_fields")
    ):
        return "pydantic"
    return None


def _field_names(cls: type) -> list[str]:
    """The stored fields of a model class, in declaration order."""
    kind = _model_kind(cls)
    if kind == "dataclass":
        return [f.name for f in dataclasses.fields(cls)]
    if kind == "attrs":
        return [a.name for a in cls.__attrs_attrs__]  # type: ignore[attr-defined]
    if kind == "msgspec":
        return list(cls.__struct_fields__)  # type: ignore[attr-defined]
    if kind == "pydantic":
        return list(cls.model_fields)  # type: ignore[attr-defined]
    raise InvalidArgumentError(f"{cls.__name__} is not a model class")


def _field_defaults(cls: type) -> dict[str, Callable[[], Any]]:
    """``{field: make its default}`` for the fields of a model class that have one."""
    kind = _model_kind(cls)
    out: dict[str, Callable[[], Any]] = {}

    def constant(v: Any) -> Callable[[], Any]:
        return lambda: v

    if kind == "dataclass":
        for f in dataclasses.fields(cls):
            if f.default_factory is not dataclasses.MISSING:
                out[f.name] = f.default_factory
            elif f.default is not dataclasses.MISSING:
                out[f.name] = constant(f.default)
    elif kind == "attrs":
        attrs = sys.modules["attr"]
        for a in cls.__attrs_attrs__:  # type: ignore[attr-defined]
            if isinstance(a.default, attrs.Factory) and not a.default.takes_self:
                out[a.name] = a.default.factory
            elif a.default is not attrs.NOTHING and not isinstance(a.default, attrs.Factory):
                out[a.name] = constant(a.default)
    elif kind == "msgspec":
        for f in sys.modules["msgspec"].structs.fields(cls):
            if f.default_factory is not sys.modules["msgspec"].NODEFAULT:
                out[f.name] = f.default_factory
            elif f.default is not sys.modules["msgspec"].NODEFAULT:
                out[f.name] = constant(f.default)
    elif kind == "pydantic":
        for name, info in cls.model_fields.items():  # type: ignore[attr-defined]
            if not info.is_required():
                out[name] = functools.partial(info.get_default, call_default_factory=True)
    return out


def _pydantic_finish(obj: Any) -> None:
    """What ``model_construct`` sets besides the fields, on a model loaded field by field
    (no validation runs on load: the stored fields were valid when written)."""
    cls = type(obj)
    setattr_ = object.__setattr__
    setattr_(obj, "__pydantic_fields_set__", set(cls.model_fields))
    setattr_(obj, "__pydantic_extra__", None)
    private = getattr(cls, "__private_attributes__", None)
    setattr_(
        obj,
        "__pydantic_private__",
        {name: attr.get_default() for name, attr in private.items()} if private else None,
    )


def _describe_struct(
    cls: type, seen: tuple[type, ...], ns: dict[str, Any] | None = None
) -> tuple[Any, ...]:
    hints = _hints(cls, ns)
    fields = []
    for name in _field_names(cls):
        hint = hints.get(name)
        if hint is None:
            raise InvalidArgumentError(
                f"{cls.__name__}.{name} has no type annotation; annotate every field"
            )
        fields.append((name, _describe(hint, f"{cls.__name__}.{name}", seen, ns)))
    # A model whose objects need more than their fields set says what, run after loading.
    finish = _pydantic_finish if _model_kind(cls) == "pydantic" else None
    return ("struct", cls, fields, finish)


def _path_type(desc: tuple[Any, ...], path: str, owner: str) -> tuple[Any, ...]:
    """The description at a dotted field path, for checking index declarations."""
    node = desc
    for part in path.split("."):
        if node[0] == "optional":
            node = node[1]
        if node[0] != "struct":
            raise InvalidArgumentError(
                f"{owner}: index path {path!r} goes through a non-dataclass field"
            )
        match = [d for (name, d) in node[2] if name == part]
        if not match:
            raise InvalidArgumentError(f"{owner}: index path {path!r} names no field ({part!r})")
        node = match[0]
    return node


def _scalar(desc: tuple[Any, ...]) -> str:
    while desc[0] == "optional":
        desc = desc[1]
    return str(desc[0])


def _index_specs(
    cls: type, desc: tuple[Any, ...], composites: Iterable[Composite], ns: dict[str, Any]
) -> list[tuple[str, str, list[str]]]:
    specs: list[tuple[str, str, list[str]]] = []
    hints = _hints(cls, ns)
    for name in _field_names(cls):
        hint = hints.get(name)
        if typing.get_origin(hint) is not typing.Annotated:
            continue
        for marker in typing.get_args(hint)[1:]:
            if not isinstance(marker, _IndexMarker):
                continue
            field_desc = _path_type(desc, name, cls.__name__)
            where = f"{cls.__name__}.{name}"
            if marker.kind == "each":
                inner = field_desc[1] if field_desc[0] == "optional" else field_desc
                if inner[0] != "list" or _scalar(inner[1]) not in _INDEXABLE:
                    raise InvalidArgumentError(
                        f"{where}: obj.Each needs a list of indexable values, e.g. list[str]"
                    )
            elif _scalar(field_desc) not in _INDEXABLE:
                raise InvalidArgumentError(
                    f"{where}: {marker!r} needs an indexable type "
                    "(int, float, str, bytes, bool, None, datetime, date, UUID)"
                )
            specs.append((name, marker.kind, [name]))
    for comp in composites:
        if not isinstance(comp, Composite):
            raise InvalidArgumentError(
                f"indexes=[...] takes obj.Composite(...) entries, got {type(comp).__name__}"
            )
        for path in comp.fields:
            if _scalar(_path_type(desc, path, cls.__name__)) not in _INDEXABLE:
                raise InvalidArgumentError(
                    f"{cls.__name__}: Composite {comp.name!r} field {path!r} is not indexable"
                )
        specs.append((comp.name, "composite", list(comp.fields)))
    names = [s[0] for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidArgumentError(f"{cls.__name__}: more than one index is named {dupes[0]!r}")
    return specs


def document(
    *,
    collection: str,
    version: int = 1,
    indexes: Iterable[Composite] = (),
    history: Iterable[type] = (),
    migrations: Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]] | None = None,
) -> Callable[[type], type]:
    """Declares a dataclass as a document stored in ``collection`` at schema ``version``.

    ``indexes`` adds composite indexes; field indexes come from ``Annotated`` markers.
    ``history`` lists the document classes of older versions of the same collection; records
    written by them are decoded with their class and passed to ``cls.migrate(doc,
    from_version)``, which returns an instance of the new class::

        @obj.document(collection="notes", version=2, history=[NoteV1])
        @dataclass
        class Note:
            text: str
            tags: list[str]

            @classmethod
            def migrate(cls, doc, from_version):
                return cls(text=doc.text, tags=[])

    ``migrations`` covers older versions whose classes are gone from the code: plain
    functions on dicts, keyed by the version they take. A record stored at version ``k``
    is decoded to a dict by the schema the file keeps for it, passed through the function
    of ``k`` and of every later key in turn, and the last result becomes the class (its
    fields checked as any document's)::

        @obj.document(collection="notes", version=3, migrations={
            1: lambda d: {**d, "tags": []},            # v1 -> v2
            2: lambda d: {"text": d["body"], "tags": d["tags"]},  # v2 -> v3
        })
        @dataclass
        class Note:
            text: str
            tags: list[str]

    Reads migrate on the fly; the first write of the class, or :meth:`obj.Db.migrate`
    (recorded in the change log as ``action="migrate"``), rewrites the stored records once.
    A version may come from ``history`` or ``migrations``, not both.

    Declaring a different shape for a ``(collection, version)`` already declared in this
    process raises :class:`obj.InvalidArgumentError`; so does writing to a file that stores
    another shape under it.
    """
    if not isinstance(collection, str) or not collection:
        raise InvalidArgumentError("collection must be a non-empty str")
    if collection.startswith(".") or collection.endswith(".") or ".." in collection:
        raise InvalidArgumentError(f"collection {collection!r} is not a valid name")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2**32:
        raise InvalidArgumentError(f"version must be an int from 1 to 2**32-1, got {version!r}")
    composites = list(indexes)
    older = list(history)
    functions = _migration_functions(migrations, version)
    # Names visible where the decorator is applied, for string annotations that refer to
    # classes defined in the same function.
    caller = sys._getframe(1)
    ns = {**caller.f_globals, **caller.f_locals}
    del caller

    def wrap(cls: type) -> type:
        if _model_kind(cls) is None:
            raise InvalidArgumentError(
                "@obj.document must decorate a dataclass (put @dataclass below "
                "@obj.document), an attrs class, a msgspec.Struct or a pydantic model"
            )
        desc = _describe_struct(cls, (cls,), ns)
        specs = _index_specs(cls, desc, composites, ns)
        past = []
        for h in older:
            doctype = getattr(h, "__obj_doctype__", None)
            if doctype is None:
                raise InvalidArgumentError(
                    f"history entries must be @obj.document classes, got {h!r}"
                )
            if doctype.collection != collection or doctype.version >= version:
                raise InvalidArgumentError(
                    f"history entry {h.__name__} must be an older version of {collection!r} "
                    f"(it is {doctype.collection!r} version {doctype.version})"
                )
            past.append(doctype)
        already = cls.__dict__.get("__obj_doctype__")
        if isinstance(already, _obj.DocType):
            raise InvalidArgumentError(
                f"{cls.__name__} is already an @obj.document class (collection "
                f"{already.collection!r} version {already.version}); decorate a class once"
            )
        migrate = getattr(cls, "migrate", None) if past else None
        if past and not isinstance(inspect.getattr_static(cls, "migrate", None), classmethod):
            raise InvalidArgumentError(
                f"{cls.__name__} has history=[...] but no "
                "migrate(cls, doc, from_version) classmethod (decorate it with @classmethod)"
            )
        both = sorted({d.version for d in past} & {v for v, _ in functions})
        if both:
            raise InvalidArgumentError(
                f"{cls.__name__}: version {both[0]} is in both history=[...] and "
                "migrations={...}; keep one way to migrate it"
            )
        chain = _with_defaults(functions, cls)
        doctype = _obj.DocType(collection, version, desc, specs, past, migrate, chain)
        with _REGISTRY_LOCK:
            known = _REGISTRY.get((collection, version))
            if known is not None and known.schema_bytes != doctype.schema_bytes:
                raise InvalidArgumentError(
                    f"{cls.__name__}: collection {collection!r} version {version} is already "
                    f"declared with a different shape ({doctype.difference(known)}); use another "
                    "collection name or bump version="
                )
            _REGISTRY[(collection, version)] = doctype
        doctype._bind(cls)
        cls.__obj_doctype__ = doctype  # type: ignore[attr-defined]
        # What it takes to compile the same codec for another collection name: a class
        # read from an attached namespace decodes against the bare collection there (the
        # binding compiles it, `Attachment::rebased` in crates/obj-py/src/shared.rs).
        cls.__obj_declaration__ = (version, desc, specs, tuple(older), migrate, chain)  # type: ignore[attr-defined]
        return cls

    return wrap


def _migration_functions(
    migrations: Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]] | None, version: int
) -> list[tuple[int, Callable[[dict[str, Any]], dict[str, Any]]]]:
    """``migrations={version: fn}`` checked: int keys older than ``version``, callables."""
    if migrations is None:
        return []
    if not isinstance(migrations, Mapping):
        raise InvalidArgumentError(
            "migrations must be a dict {older version: function(dict) -> dict}, got "
            f"{type(migrations).__name__}"
        )
    out = []
    for v, fn in migrations.items():
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v < version:
            raise InvalidArgumentError(
                f"migrations keys are the older versions they migrate (ints from 1 to "
                f"{version - 1}), got {v!r}"
            )
        if not callable(fn):
            raise InvalidArgumentError(
                f"migrations[{v}] must be a function taking and returning a dict, got "
                f"{type(fn).__name__}"
            )
        out.append((v, fn))
    return sorted(out, key=lambda item: item[0])


def _with_defaults(
    functions: list[tuple[int, Callable[[dict[str, Any]], dict[str, Any]]]], cls: type
) -> list[tuple[int, Callable[[dict[str, Any]], dict[str, Any]]]]:
    """The functions, the last one also filling in the fields it leaves out that ``cls``
    has defaults for (every chain of migrations ends with it)."""
    if not functions:
        return functions
    defaults = _field_defaults(cls)
    last_version, last = functions[-1]

    def last_with_defaults(doc: dict[str, Any]) -> dict[str, Any]:
        out = last(doc)
        if isinstance(out, dict):
            missing = [name for name in defaults if name not in out]
            if missing:
                out = {**out, **{name: defaults[name]() for name in missing}}
        return out

    return [*functions[:-1], (last_version, last_with_defaults)]


def _own_doctype(cls: type) -> _obj.DocType | None:
    """The codec ``cls`` was decorated with; None for any other class, a subclass of a
    document class included (the codec would not store what the subclass adds)."""
    doctype = getattr(cls, "__obj_doctype__", None)
    if isinstance(doctype, _obj.DocType) and doctype.owner is cls:
        return doctype
    return None


def is_document(obj: object) -> bool:
    """True for an ``@obj.document`` class or one of its instances."""
    cls = obj if isinstance(obj, type) else type(obj)
    return _own_doctype(cls) is not None


def doctype_of(obj: object) -> _obj.DocType:
    """The native codec of a document class or instance."""
    cls = obj if isinstance(obj, type) else type(obj)
    doctype = _own_doctype(cls)
    if doctype is None:
        inherited = getattr(cls, "__obj_doctype__", None)
        if isinstance(inherited, _obj.DocType):
            raise InvalidArgumentError(
                f"{cls.__name__} is not an @obj.document class itself: it inherits from "
                f"{inherited.cls.__name__}, whose codec would not store what "
                f"{cls.__name__} adds; decorate {cls.__name__} with @obj.document(collection=...)"
            )
        raise InvalidArgumentError(
            f"{cls.__name__} is not an @obj.document class; decorate it with "
            "@obj.document(collection=...) or pass a collection name"
        )
    return doctype
