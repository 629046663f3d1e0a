"""What the command line prints: human text, and the documented ``--json`` shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import surgtwin
from surgtwin.core.dicom import Inventory
from surgtwin.core.scene import Scene
from surgtwin.core.volume import Volume

INFO_SCHEMA = "surgtwin.info/1"
CASE_SCHEMA = "surgtwin.case-summary/1"


def inventory_json(inventory: Inventory, paths: list[str]) -> dict[str, Any]:
    data = {"schema": INFO_SCHEMA, "surgtwin_version": surgtwin.__version__, "paths": list(paths)}
    data.update(inventory.to_dict())
    return data


def print_inventory(inventory: Inventory) -> None:
    for patient in inventory.patients:
        print(f"Patient {patient.patient_id or '(no id)'}  {patient.name}")
        for study in patient.studies:
            print(f"  Study {study.uid}  {study.date}  {study.description}")
            for s in study.series:
                s_dict = s.summary()
                dims = "x".join(str(d) for d in s_dict["dimensions"]) if s_dict["dimensions"] else "-"
                spacing = (
                    " x ".join(f"{v:g}" for v in s_dict["spacing_mm"]) + " mm"
                    if s_dict["spacing_mm"]
                    else "-"
                )
                print(f"    Series {s.uid}")
                print(
                    f"      {s.modality:<3} #{s.number} {s.description!r}: {s_dict['files']} file(s), "
                    f"{dims} voxels, {spacing}"
                )
                if s.split_reason:
                    print(f"      split from its DICOM series: {s.split_reason}")
                if not s.loadable:
                    print(f"      not a volume: {s.not_loadable_reason}")
                for f in s.findings:
                    print(f"      [{f.code}] {f.message}")
    if inventory.skipped:
        print(f"Skipped {len(inventory.skipped)} file(s):")
        for skipped in inventory.skipped:
            print(f"  {skipped.path}: {skipped.reason}")


def volume_json(volume: Volume) -> dict[str, Any]:
    data = volume.summary()
    data["provenance"] = volume.provenance
    return data


def print_volume(volume: Volume, indent: str = "") -> None:
    s = volume.summary()
    dims = "x".join(str(d) for d in s["dimensions"])
    spacing = " x ".join(f"{v:g}" for v in s["spacing_mm"])
    value_range = s["value_range"]
    rng = f"{value_range[0]:g} to {value_range[1]:g}" if value_range else "-"
    print(
        f"{indent}{volume.name!r} {volume.modality} {dims} voxels, {spacing} mm, "
        f"values {rng} {volume.units}".rstrip()
    )
    for f in volume.findings:
        print(f"{indent}  [{f.code}] {f.message}")
    for decision in volume.decisions:
        print(f"{indent}  decision: {decision}")


def case_json(scene: Scene, path: Path) -> dict[str, Any]:
    return {
        "schema": CASE_SCHEMA,
        "surgtwin_version": surgtwin.__version__,
        "case": str(path),
        "title": scene.title,
        "volumes": [dict(id=vid, **volume_json(v)) for vid, v in scene.volumes.items()],
        "provenance": scene.provenance,
    }


def print_case(scene: Scene, path: Path) -> None:
    print(f"Case {path}: {scene.title!r}")
    for vid, volume in scene.volumes.items():
        print(f"  volume {vid}:")
        print_volume(volume, indent="    ")
    print(f"  {len(scene.provenance)} provenance entries")
