"""Voxel arrays inside a case file: .npy members, streamed and checksummed.

Writing streams through ``numpy.lib.format.write_array`` (never pickles); reading
checks the .npy header against the manifest *before* allocating, then fills a
preallocated array while hashing, so a damaged or hostile member cannot make us
allocate more than the manifest (already bounded) declared.
"""

from __future__ import annotations

import hashlib
import math
from typing import IO

import numpy as np
import numpy.lib.format as npy_format

# Little-endian (or byte-sized) plain numbers only: no objects, strings, complex.
ALLOWED_DTYPES = frozenset(
    np.dtype(code).str
    for code in ("|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f4", "<f8")
)
MAX_NPY_HEADER_BYTES = 65536  # numpy's own headers are < 4 KiB even for 2.0 format
_READ_CHUNK = 8 * 1024 * 1024


class MemberError(Exception):
    """A member does not match what the manifest says (message names no file)."""


def storable(voxels: np.ndarray) -> np.ndarray:
    """``voxels`` with a dtype a case file holds (big-endian is swapped, losslessly)."""
    if voxels.dtype.byteorder == ">":
        voxels = voxels.astype(voxels.dtype.newbyteorder("<"))
    if voxels.dtype.str not in ALLOWED_DTYPES:
        raise MemberError(f"voxels of type {voxels.dtype} cannot be stored in a case file")
    return voxels


class _HashingSink:
    """A write-only file that only hashes and counts what it is given."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


def npy_digest(voxels: np.ndarray) -> tuple[str, int]:
    """(sha256 hex, byte size) of the .npy bytes :func:`write_npy` will produce."""
    sink = _HashingSink()
    npy_format.write_array(sink, voxels, allow_pickle=False)
    return sink.sha256.hexdigest(), sink.size


def write_npy(stream: IO[bytes], voxels: np.ndarray) -> None:
    npy_format.write_array(stream, voxels, allow_pickle=False)


class _HashingReader:
    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.sha256 = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self.sha256.update(data)
        return data

    def readinto(self, buffer: memoryview) -> int:
        n: int = self._stream.readinto(buffer)  # type: ignore[attr-defined]
        self.sha256.update(buffer[:n])
        return n


def expected_npy_data_bytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return math.prod(shape) * int(dtype.itemsize)  # Python ints: absurd shapes cannot overflow


def read_npy(stream: IO[bytes], shape: tuple[int, ...], dtype: np.dtype, sha256: str) -> np.ndarray:
    """Read a .npy member that must hold ``dtype`` ``shape`` and hash to ``sha256``."""
    reader = _HashingReader(stream)
    try:
        version = npy_format.read_magic(reader)
    except ValueError as exc:
        raise MemberError(f"is not a NumPy array file ({exc})") from exc
    if version == (1, 0):
        header = npy_format.read_array_header_1_0(reader, max_header_size=MAX_NPY_HEADER_BYTES)
    elif version in ((2, 0), (3, 0)):
        header = npy_format.read_array_header_2_0(reader, max_header_size=MAX_NPY_HEADER_BYTES)
    else:
        raise MemberError(f"uses NumPy file format version {version}, which surgtwin does not read")
    found_shape, fortran_order, found_dtype = header
    if tuple(found_shape) != tuple(shape) or found_dtype != dtype:
        raise MemberError(
            f"holds {found_dtype} {tuple(found_shape)} but the manifest says {dtype} {tuple(shape)}"
        )
    voxels = np.empty(shape, dtype=dtype, order="F" if fortran_order else "C")
    # Either way the transposed/plain view is C-contiguous over the same memory.
    flat = (voxels.T if fortran_order else voxels).data.cast("B")
    filled = 0
    while filled < len(flat):
        n = reader.readinto(flat[filled : filled + _READ_CHUNK])
        if n == 0:
            raise MemberError("is truncated")
        filled += n
    if reader.read(1):
        raise MemberError("has extra bytes after its voxels")
    if reader.sha256.hexdigest() != sha256:
        raise MemberError("does not match its checksum")
    return voxels
