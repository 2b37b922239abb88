"""The layer gunzip reader (images/gunzip.py) reads what gzip.GzipFile reads and refuses what it refuses."""

import gzip
import io
import os
import zlib

import pytest

from minicontainer.images.gunzip import GunzipReader


def _read(data: bytes, chunk: int = 1 << 20) -> bytes:
    r = GunzipReader(io.BufferedReader(io.BytesIO(data)), chunk)
    out = bytearray()
    while part := r.read(1 << 16):
        out += part
    return bytes(out)


@pytest.mark.parametrize("level", [1, 6, 9])
@pytest.mark.parametrize("chunk", [3, 4096, 1 << 20])
def test_same_bytes_as_gzipfile(level, chunk):
    data = os.urandom(300_000) + b"layer " * 200_000
    packed = gzip.compress(data, level)
    assert _read(packed, chunk) == data == gzip.GzipFile(fileobj=io.BytesIO(packed)).read()


def test_members_one_after_the_other_and_zero_padding():
    a, b = gzip.compress(b"hello "), gzip.compress(b"world")
    assert _read(a + b) == b"hello world"
    assert _read(a + b"\0" * 5000) == b"hello "
    assert _read(gzip.compress(b"")) == b""


@pytest.mark.parametrize("bad, error", [
    (gzip.compress(os.urandom(100_000))[:-50], EOFError),           # truncated: no end-of-stream marker
    (gzip.compress(b"hello") + b"junk", gzip.BadGzipFile),          # other bytes after the stream
    (gzip.compress(b"hello") + b"\0\0junk", gzip.BadGzipFile),
])
def test_truncated_or_trailing_bytes_refused(bad, error):
    with pytest.raises(error):
        _read(bad)


def test_a_changed_byte_fails_the_crc_or_the_inflate():
    packed = bytearray(gzip.compress(b"x" * 100_000 + os.urandom(1000)))
    packed[-6] ^= 1                                                 # the trailer's CRC-32
    with pytest.raises(zlib.error):
        _read(bytes(packed))
