"""JSON for the short-lived commands (``minicontainer-oci``'s verbs), without the json package's import.

conmon and containerd-shim start the OCI runtime three times per container (create, start,
delete), and each is a new interpreter. ``import json`` costs about as much as the interpreter's
own start: json.decoder compiles regular expressions at import, which pulls in ``re``, ``enum``,
``functools`` and ``collections``. The work itself is done by the same C accelerators in both
cases (``_json.make_scanner``, ``_json.make_encoder``); this module only hands them the context
object that json.decoder and json.encoder would build, and does ``indent`` (which 3.11's C
encoder lacks) itself. A document that does not parse goes to the json package, imported then, so
that its error is json's own ``JSONDecodeError`` with line and column. Keys must be strings.

Rejected: a hand-written parser (slower than the C scanner, and a second grammar to get wrong);
``marshal``/``pickle`` for state.json (runc's state is JSON, and ``minicontainer-oci state`` prints
it).
"""
from __future__ import annotations

import _json

_WS = " \t\n\r"


class _Decoding:
    """The attributes _json.make_scanner reads (json.decoder.JSONDecoder's defaults)."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


_scan = _json.make_scanner(_Decoding())


def loads(s):
    """As ``json.loads`` (str, or UTF-8 bytes)."""
    if isinstance(s, (bytes, bytearray)):
        s = bytes(s).decode("utf-8")           # a UnicodeDecodeError is a ValueError, as json's
    start = len(s) - len(s.lstrip(_WS))
    try:
        obj, end = _scan(s, start)
    except (StopIteration, SystemError):
        # StopIteration: nothing parses at that index. SystemError: the C scanner raises
        # json.decoder.JSONDecodeError by looking json.decoder up in sys.modules only, and fails
        # this way when it is not imported (3.11) — then json itself parses again and raises its own
        return _json_package().loads(s)
    if end != len(s) and s[end:].strip(_WS):
        return _json_package().loads(s)        # "Extra data": json's error
    return obj


def _default(o):
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def dumps(obj, *, indent=None, separators=None, ensure_ascii=True, sort_keys=False) -> str:
    """As ``json.dumps`` with these options (``indent``: through the json package)."""
    item_sep, key_sep = separators or ((",", ": ") if indent is not None else (", ", ": "))
    encode = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
    enc = _json.make_encoder({}, _default, encode, None, key_sep, item_sep, sort_keys, False, True)
    if indent is None:
        return "".join(enc(obj, 0))
    # the C encoder of 3.11 has no indent; json.encoder's pure-Python one would import the package
    pad = " " * indent if isinstance(indent, int) else indent

    def pretty(o, depth):
        inner, outer = "\n" + pad * (depth + 1), "\n" + pad * depth
        if isinstance(o, dict) and o:
            items = sorted(o.items()) if sort_keys else o.items()
            body = (item_sep + inner).join(enc(k, 0)[0] + key_sep
                                           + pretty(v, depth + 1) for k, v in items)
            return "{" + inner + body + outer + "}"
        if isinstance(o, (list, tuple)) and o:
            return "[" + inner + (item_sep + inner).join(pretty(v, depth + 1) for v in o) + outer + "]"
        return "".join(enc(o, 0))
    return pretty(obj, 0)


def _json_package():
    import json
    return json
