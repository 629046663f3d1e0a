"""Checked reading of one case file: every problem becomes a CaseFileError naming the file.

Members are only ever looked up by name in the archive's index (never extracted);
array members are checked against their manifest descriptor before allocation.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from surgtwin.core.case.arrays import (
    ALLOWED_DTYPES,
    MAX_NPY_HEADER_BYTES,
    MemberError,
    expected_npy_data_bytes,
    read_npy,
)
from surgtwin.core.errors import CaseFileError

MANIFEST_NAME = "manifest.json"
MAX_ARRAY_BYTES = 64 * 1024**3  # a 2048^3 float64 volume

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def fail(path: Path, reason: str) -> NoReturn:
    raise CaseFileError(f"cannot open case file {path}: {reason}")


def is_safe_member_name(name: str) -> bool:
    if not name or name.startswith("/") or "\\" in name or ":" in name or "\x00" in name:
        return False
    return all(part not in ("", ".", "..") for part in name.rstrip("/").split("/"))


def declared_bytes(descriptor: Any) -> int:
    """Bytes an array descriptor claims (0 when it is too malformed to say)."""
    if not isinstance(descriptor, dict):
        return 0
    shape, dtype = descriptor.get("shape"), descriptor.get("dtype")
    if isinstance(shape, list) and all(isinstance(n, int) for n in shape) and dtype in ALLOWED_DTYPES:
        return expected_npy_data_bytes(tuple(shape), np.dtype(dtype))
    return 0


@dataclass
class CaseReader:
    path: Path
    archive: zipfile.ZipFile
    index: dict[str, zipfile.ZipInfo]

    def fail(self, reason: str) -> NoReturn:
        fail(self.path, reason)

    def expect(self, value: Any, types: type | tuple[type, ...], what: str) -> Any:
        if (
            not isinstance(value, types)
            or isinstance(value, bool)
            and bool not in (types if isinstance(types, tuple) else (types,))
        ):
            self.fail(f"damaged: {MANIFEST_NAME} has an invalid {what} ({value!r:.80})")
        return value

    def matrix(self, value: Any, what: str) -> np.ndarray:
        self.expect(value, list, what)
        try:
            matrix = np.array(value, dtype=np.float64)
        except (TypeError, ValueError):
            self.fail(f"damaged: {MANIFEST_NAME} has an invalid {what}")
        if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
            self.fail(f"damaged: {MANIFEST_NAME} has an invalid {what}")
        return matrix

    def array(
        self, entry: dict[str, Any], role: str, ndim: int, dtypes: frozenset[str] = ALLOWED_DTYPES
    ) -> tuple[np.ndarray, str]:
        """The array ``entry["arrays"][role]`` and its member name, fully verified."""
        object_id = entry["id"]
        arrays = self.expect(entry.get("arrays"), dict, f"array list for {object_id}")
        descriptor = self.expect(arrays.get(role), dict, f"{role} array for {object_id}")
        member = self.expect(descriptor.get("file"), str, f"file for {object_id}")
        if not is_safe_member_name(member):
            self.fail(f"refused: its manifest points at an unsafe member name {member!r}")
        sha256 = self.expect(descriptor.get("sha256"), str, f"sha256 for {member}")
        if not _SHA256.fullmatch(sha256):
            self.fail(f"damaged: {MANIFEST_NAME} has an invalid sha256 for {member}")
        dtype_str = descriptor.get("dtype")
        if dtype_str not in dtypes:
            self.fail(f"damaged or unsupported: {member} has voxel type {dtype_str!r}")
        dtype = np.dtype(dtype_str)
        shape = self.expect(descriptor.get("shape"), list, f"shape for {member}")
        if len(shape) != ndim or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
        ):
            self.fail(f"damaged: {MANIFEST_NAME} has an invalid shape for {member} ({shape!r:.80})")
        data_bytes = expected_npy_data_bytes(tuple(shape), dtype)
        if data_bytes > MAX_ARRAY_BYTES:
            self.fail(f"refused: {member} claims an absurd size ({shape} {dtype}, {data_bytes} bytes)")
        info = self.index.get(member)
        if info is None:
            self.fail(f"damaged: member {member} is missing")
        if not data_bytes <= info.file_size <= data_bytes + MAX_NPY_HEADER_BYTES:
            self.fail(
                f"damaged: {member} has {info.file_size} bytes, which does not fit {dtype} {tuple(shape)}"
            )
        try:
            with self.archive.open(info) as stream:
                return read_npy(stream, tuple(shape), dtype, sha256), member
        except MemberError as exc:
            self.fail(f"damaged: {member} {exc}")
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
            self.fail(f"damaged: {member} cannot be read ({exc})")
