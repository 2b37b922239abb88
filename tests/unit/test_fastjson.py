"""minicontainer.fastjson gives what json gives, without importing it (the OCI verbs' start)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from minicontainer import fastjson

DOCS = [
    {"ociVersion": "1.0.2", "id": "c1", "status": "created", "pid": 4242, "bundle": "/b ü",
     "annotations": {"a": "b"}, "created": "2026-11-30T14:00:00.123456789Z"},
    [1, 2.5, -0.0, 1e300, True, False, None, "", "\u0000\u2028\U0001F600", [], {}],
    "just a string", 0, -7, 3.14159, None,
    {"nested": {"deep": [{"x": [1, {"y": None}]}]}},
]


@pytest.mark.parametrize("doc", DOCS)
@pytest.mark.parametrize("kw", [{}, {"separators": (",", ":")}, {"ensure_ascii": False}, {"sort_keys": True},
                                {"indent": 2}])
def test_dumps_is_json_dumps(doc, kw):
    assert fastjson.dumps(doc, **kw) == json.dumps(doc, **kw)


@pytest.mark.parametrize("doc", DOCS)
def test_loads_round_trip(doc):
    for text in (json.dumps(doc), json.dumps(doc, indent=1), " \n" + json.dumps(doc) + "\n\t "):
        assert fastjson.loads(text) == doc
        assert fastjson.loads(text.encode()) == doc


def test_specials_as_json():
    got = fastjson.loads('[NaN, Infinity, -Infinity, 12345678901234567890]')
    assert got[0] != got[0] and got[1] == float("inf") and got[2] == float("-inf")
    assert got[3] == 12345678901234567890


@pytest.mark.parametrize("bad", ["", "{", '{"a": }', '{"a": 1} x', "[1,]", '"\x01"', "nul", "{'a': 1}"])
def test_bad_documents_raise_json_s_own_error(bad):
    with pytest.raises(json.JSONDecodeError) as fast:
        fastjson.loads(bad)
    with pytest.raises(json.JSONDecodeError) as slow:
        json.loads(bad)
    assert str(fast.value) == str(slow.value)


def test_not_serialisable_is_a_type_error():
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        fastjson.dumps({"a": {1}})
    with pytest.raises(ValueError):
        a = []
        a.append(a)
        fastjson.dumps(a)


def test_bad_documents_without_json_imported_first():
    # the installed commands have not imported json: the C scanner cannot raise its error then
    code = ("import minicontainer.fastjson as f\n"
            "for bad in ('{bad', '[\"\\\\x\"]', '\"\\x01\"', '[1,]', '{\"a\": 1} x'):\n"
            "    try:\n        f.loads(bad)\n    except ValueError as e:\n"
            "        print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert out.stderr == ""
    lines = out.stdout.splitlines()
    assert len(lines) == 5 and all(ln.startswith("JSONDecodeError ") for ln in lines), out.stdout
    assert lines[0] == "JSONDecodeError Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"


def test_it_does_not_import_json_re_or_enum():
    code = ("import sys; import minicontainer.fastjson as f; f.dumps(f.loads('{\"a\": [1, 2.5, null]}'));"
            "print(sorted(m for m in ('json', 're', 'enum') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert out.stdout.strip() == "[]", out.stderr
