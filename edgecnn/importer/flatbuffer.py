"""A checked, fast reader of flatbuffer tables (what a .tflite file is made of).

The generated accessors of the `tflite` package build an object and make several
Python calls per field (about 10 us each), and trust every offset they follow. This
reader reads a table's vtable once, a scalar with one `struct` call, and a vector
as one numpy view of the file (no per-element calls), so reading a model costs a
few microseconds per tensor. Every position it follows is checked: a vector or a
table past the end of the file, or a vtable before its start, raises
`FlatbufferError` instead of reading garbage (Python's `struct` would wrap a
negative offset around to the end of the buffer).

Fields are numbered as in the schema (`schema.fbs`): field k of a table is at vtable
slot 4 + 2k. A field the vtable does not list (flatbuffers omits fields equal to
their default) reads as the default given by the caller.
"""

from __future__ import annotations

import struct

import numpy as np

_I32 = struct.Struct("<i").unpack_from
_U32 = struct.Struct("<I").unpack_from
_U16 = struct.Struct("<H").unpack_from

# scalar types of the schema -> their little-endian readers
SCALARS = {name: struct.Struct(fmt).unpack_from for name, fmt in (
    ("int8", "<b"), ("uint8", "<B"), ("bool", "<?"), ("int16", "<h"), ("int32", "<i"),
    ("uint32", "<I"), ("int64", "<q"), ("uint64", "<Q"), ("float32", "<f"))}
_LITTLE_ENDIAN = {name: np.dtype(name).newbyteorder("<") for name in SCALARS}


class FlatbufferError(ValueError):
    """A position in the flatbuffer points outside the file."""


class Table:
    """One table of a flatbuffer held in `buf` (bytes), starting at byte `pos`."""

    __slots__ = ("buf", "pos", "_vtable", "_vtable_size")

    def __init__(self, buf: bytes, pos: int):
        if pos + 4 > len(buf):
            raise FlatbufferError(f"a table at byte {pos} is past the end of the "
                                  f"{len(buf)}-byte file")
        vtable = pos - _I32(buf, pos)[0]
        if not 0 <= vtable <= len(buf) - 4:
            raise FlatbufferError(f"the table at byte {pos} has its vtable at byte {vtable}, "
                                  f"outside the {len(buf)}-byte file")
        self.buf, self.pos = buf, pos
        self._vtable, self._vtable_size = vtable, _U16(buf, vtable)[0]

    def position(self, field: int) -> int:
        """Where field `field` is stored in the file; 0 when the table does not store it."""
        slot = 4 + 2 * field
        if slot >= self._vtable_size:
            return 0
        offset = _U16(self.buf, self._vtable + slot)[0]
        return self.pos + offset if offset else 0

    def scalar(self, field: int, kind: str, default):
        at = self.position(field)
        return SCALARS[kind](self.buf, at)[0] if at else default

    def table(self, field: int) -> Table | None:
        """A sub-table (or a union's value), None when absent."""
        at = self.position(field)
        return Table(self.buf, at + _U32(self.buf, at)[0]) if at else None

    def vector(self, field: int, element_size: int, what: str) -> tuple[int, int]:
        """(start, length) of a vector field ((0, 0) when absent), checked to lie in the file."""
        at = self.position(field)
        if not at:
            return 0, 0
        at += _U32(self.buf, at)[0]
        length = _U32(self.buf, at)[0]
        if at + 4 + length * element_size > len(self.buf):
            raise FlatbufferError(f"{what} claims {length} elements, more than the "
                                  f"{len(self.buf)}-byte file holds after byte {at + 4}")
        return at + 4, length

    def array(self, field: int, dtype: str, what: str) -> np.ndarray:
        """A vector of scalars as a read-only numpy view of the file (empty when absent)."""
        dtype = _LITTLE_ENDIAN[dtype]
        start, length = self.vector(field, dtype.itemsize, what)
        return np.frombuffer(self.buf, dtype, length, start)

    def tables(self, field: int, what: str) -> TableVector:
        """A vector of tables (each one read when asked for)."""
        start, length = self.vector(field, 4, what)
        return TableVector(self.buf, start, length)

    def string(self, field: int, what: str) -> bytes | None:
        start, length = self.vector(field, 1, what)
        return self.buf[start:start + length] if start else None


class TableVector:
    """A vector of tables: len() and [k] (read on access, so that a corrupted table
    nobody uses does not stop a model from loading)."""

    __slots__ = ("buf", "start", "length")

    def __init__(self, buf: bytes, start: int, length: int):
        self.buf, self.start, self.length = buf, start, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, k: int) -> Table:
        if not 0 <= k < self.length:
            raise IndexError(k)
        at = self.start + 4 * k
        return Table(self.buf, at + _U32(self.buf, at)[0])
