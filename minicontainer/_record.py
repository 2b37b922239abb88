"""``@record``: the small part of :mod:`dataclasses` the start path uses, without its import cost.

Why not ``dataclasses``: importing it pulls in ``inspect`` (and ``ast``, ``dis``, ``tokenize``): about
7 ms on this 2-core machine, paid by every ``minicontainer run`` before the container exists (bench/
start_latency.py). The records on that path (config, limits, layout, images, volumes) only need an
``__init__`` from annotated fields with defaults, ``__post_init__``, ``__repr__``, ``__eq__``, frozen
instances and ``asdict``; that is all this module does. Modules off the start path (the image builder,
the course helpers) keep using :mod:`dataclasses`.
"""
from __future__ import annotations

_MISSING = object()


class FrozenInstanceError(AttributeError):
    """Assigning to a field of a frozen record."""


class factory:
    """Default made fresh for each instance (``dataclasses.field(default_factory=…)``)."""

    __slots__ = ("make",)

    def __init__(self, make):
        self.make = make


def record(cls=None, *, frozen: bool = False):
    """Class decorator: fields are the class's annotations, in order; a class attribute is a default."""
    def wrap(cls):
        names = tuple(cls.__dict__.get("__annotations__", {}))
        defaults = {n: cls.__dict__[n] for n in names if n in cls.__dict__}
        for n, d in defaults.items():
            if isinstance(d, factory):
                delattr(cls, n)
        post = cls.__dict__.get("__post_init__")
        qual = cls.__name__

        def __init__(self, *args, **kwargs):
            if len(args) > len(names):
                raise TypeError(f"{qual}() takes {len(names)} arguments, {len(args)} were given")
            values = dict(zip(names, args))
            for k, v in kwargs.items():
                if k not in names:
                    raise TypeError(f"{qual}() got an unexpected keyword argument {k!r}")
                if k in values:
                    raise TypeError(f"{qual}() got multiple values for argument {k!r}")
                values[k] = v
            for n in names:
                if n not in values:
                    d = defaults.get(n, _MISSING)
                    if d is _MISSING:
                        raise TypeError(f"{qual}() missing required argument {n!r}")
                    values[n] = d.make() if isinstance(d, factory) else d
                object.__setattr__(self, n, values[n])
            if post is not None:
                post(self)

        def __repr__(self):
            return f"{qual}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in names) + ")"

        def __eq__(self, other):
            if other.__class__ is not self.__class__:
                return NotImplemented
            return all(getattr(self, n) == getattr(other, n) for n in names)

        cls.__init__, cls.__repr__, cls.__eq__ = __init__, __repr__, __eq__
        cls.__record_fields__ = names
        if frozen:
            def __setattr__(self, name, value):
                raise FrozenInstanceError(f"cannot assign to field {name!r} of frozen {qual}")

            def __hash__(self):
                return hash(tuple(getattr(self, n) for n in names))
            cls.__setattr__, cls.__delattr__, cls.__hash__ = __setattr__, __setattr__, __hash__
        else:
            cls.__hash__ = None
        return cls
    return wrap(cls) if cls is not None else wrap


def fields(obj_or_cls) -> tuple[str, ...]:
    return obj_or_cls.__record_fields__


def asdict(obj) -> dict:
    """Field → value, with lists and dicts copied (enough for our records: no nesting)."""
    out = {}
    for n in obj.__record_fields__:
        v = getattr(obj, n)
        out[n] = list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v
    return out
