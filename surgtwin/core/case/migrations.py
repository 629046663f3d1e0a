"""Upgrading old case manifests, one format version at a time.

``MIGRATIONS[n]`` takes a manifest of format version ``n`` and returns one of version
``n + 1``. Loading applies them in order up to the current version, so each step
only needs to know its neighbour. Migrations must not touch the members' bytes:
when a future format changes a member, add a step that records what to convert
and do the conversion where the member is read.

Format history
--------------
0  (surgtwin development builds) ``"volumes"`` list, no object ``"kind"``,
   the affine under ``"affine"``, no per-volume provenance/findings/decisions,
   no case provenance log, no ``"saved"`` time.
1  ``"objects"`` list with ``"kind"``; ``"ijk_to_lps"``; provenance everywhere.
2  every object lists its array members under ``"arrays"`` (role -> ``file``,
   ``sha256``, ``dtype``, ``shape``; a volume's role is ``"voxels"``), so one object
   can have several arrays; new kinds ``"segmentation"`` and ``"mesh"``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

Manifest = dict[str, Any]


class MigrationError(Exception):
    """A manifest could not be upgraded (message names no file)."""


def _v0_to_v1(manifest: Manifest) -> Manifest:
    objects = []
    for volume in manifest.pop("volumes"):
        entry = dict(volume)
        entry["kind"] = "volume"
        entry["ijk_to_lps"] = entry.pop("affine")
        entry.setdefault("provenance", {})
        entry.setdefault("findings", [])
        entry.setdefault("decisions", [])
        objects.append(entry)
    manifest["objects"] = objects
    manifest.setdefault("saved", manifest.get("created", ""))
    manifest.setdefault("provenance", [])
    manifest["format_version"] = 1
    return manifest


_ARRAY_KEYS = ("file", "sha256", "dtype", "shape")


def _v1_to_v2(manifest: Manifest) -> Manifest:
    # Version 1 held volumes only, each with its one array's fields at the top level.
    for entry in manifest["objects"]:
        if isinstance(entry, dict) and entry.get("kind") == "volume":
            entry["arrays"] = {"voxels": {key: entry.pop(key) for key in _ARRAY_KEYS if key in entry}}
    manifest["format_version"] = 2
    return manifest


MIGRATIONS: dict[int, Callable[[Manifest], Manifest]] = {
    0: _v0_to_v1,
    1: _v1_to_v2,
}


def migrate(manifest: Manifest, target_version: int) -> tuple[Manifest, list[int]]:
    """Upgrade ``manifest`` to ``target_version``; returns it and the versions passed through."""
    manifest = copy.deepcopy(manifest)  # callers keep the original for error messages
    version: int = manifest["format_version"]
    passed: list[int] = []
    while version < target_version:
        step = MIGRATIONS.get(version)
        if step is None:
            raise MigrationError(f"this surgtwin can no longer read case format version {version}")
        try:
            manifest = step(manifest)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MigrationError(f"its version {version} manifest could not be upgraded ({exc!r})") from exc
        if manifest.get("format_version") != version + 1:
            raise MigrationError(f"the upgrade from format version {version} did not reach {version + 1}")
        passed.append(version)
        version += 1
    return manifest, passed
