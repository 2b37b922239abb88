"""minicontainer._record: the dataclass subset used on the start path."""

import pytest

from minicontainer._record import FrozenInstanceError, asdict, factory, fields, record


@record
class Box:
    name: str
    tags: list = factory(list)
    size: int = 3


@record(frozen=True)
class Point:
    x: int
    y: int = 0

    def __post_init__(self):
        if self.x < 0:
            object.__setattr__(self, "x", 0)


def test_init_defaults_and_fresh_factories():
    a, b = Box("a"), Box("b", size=5)
    a.tags.append("t")
    assert (a.name, a.tags, a.size) == ("a", ["t"], 3)
    assert (b.tags, b.size) == ([], 5)              # not the same list as a's
    assert fields(Box) == ("name", "tags", "size")


def test_eq_repr_asdict_copies_lists():
    a = Box("a", ["x"])
    assert a == Box("a", ["x"]) and a != Box("a") and repr(a) == "Box(name='a', tags=['x'], size=3)"
    d = asdict(a)
    d["tags"].append("y")
    assert d == {"name": "a", "tags": ["x", "y"], "size": 3} and a.tags == ["x"]


def test_frozen_post_init_and_hash():
    p = Point(-4)
    assert p == Point(0, 0) and hash(p) == hash(Point(0))
    with pytest.raises(FrozenInstanceError):
        p.x = 1


@pytest.mark.parametrize("args, kwargs, words", [
    ((), {}, "missing required argument 'name'"),
    (("a",), {"colour": 1}, "unexpected keyword argument 'colour'"),
    (("a",), {"name": "b"}, "multiple values for argument 'name'"),
    (("a", [], 1, 2), {}, "takes 3 arguments"),
])
def test_bad_arguments_are_type_errors(args, kwargs, words):
    with pytest.raises(TypeError, match=words):
        Box(*args, **kwargs)
