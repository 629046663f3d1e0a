"""``surgtwin build | export | measure``: the anatomy twin from the command line.

JSON shapes are documented in docs/cli.md; the work itself lives in surgtwin.core.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import surgtwin
from surgtwin.cli.common import EXIT_OK, print_json, require_existing
from surgtwin.cli.terminal import cancellable_progress
from surgtwin.core.errors import SurgTwinError
from surgtwin.core.mesh.surface import SurfaceMesh
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.model import Segmentation
from surgtwin.core.volume import Volume

BUILD_SCHEMA = "surgtwin.build/1"
EXPORT_SCHEMA = "surgtwin.export/1"
MEASURE_SCHEMA = "surgtwin.measure/1"


def _read_segmentation(args: argparse.Namespace, volume: Volume) -> tuple[Segmentation, str]:
    from surgtwin.core.segmentation.io import read_dicom_seg, read_label_map

    path = Path(args.labels)
    require_existing([args.labels])
    if path.suffix.lower() == ".dcm" or _is_dicom(path):
        return read_dicom_seg(path, volume), "dicom_seg"
    return read_label_map(path, Path(args.names) if args.names else None, volume), "label_map"


def _is_dicom(path: Path) -> bool:
    with open(path, "rb") as fp:
        head = fp.read(132)
    return head[128:132] == b"DICM"


def cmd_build(args: argparse.Namespace) -> int:
    from surgtwin.core.case import save_case
    from surgtwin.core.commands import AddMesh, AddVolume, History
    from surgtwin.core.importer import load_volume
    from surgtwin.core.segmentation.commands import AddSegmentation
    from surgtwin.core.twin import make_twin, mesh_segmentation

    require_existing(args.paths)
    if args.names and not args.labels:
        raise SurgTwinError("--names goes with --labels (the names of a label map's values)", code="usage")
    output = Path(args.output)
    if not output.parent.resolve().is_dir():
        raise SurgTwinError(f"{output}: the folder {output.parent} does not exist", code="bad_output")
    timings: dict[str, float] = {}
    skipped: dict[str, str] = {}
    started = time.perf_counter()
    with cancellable_progress() as progress:
        clock = time.perf_counter()
        volume, _ = load_volume(args.paths, args.series, progress)
        timings["import"] = time.perf_counter() - clock
        scene = Scene(title=args.title or volume.name)
        history = History(scene)
        add_volume = AddVolume(volume)
        history.execute(add_volume)

        if args.labels:
            clock = time.perf_counter()
            segmentation, source = _read_segmentation(args, volume)
            segmentation.reference_volume_id = add_volume.object_id
            timings["segment"] = time.perf_counter() - clock
            clock = time.perf_counter()
            meshes = mesh_segmentation(segmentation, progress)
            timings["mesh"] = time.perf_counter() - clock
        else:
            twin = make_twin(volume, add_volume.object_id, progress)
            segmentation, meshes, skipped, source = twin.segmentation, twin.meshes, twin.skipped, "one_click"
            timings.update(twin.timings_s)
        add_segmentation = AddSegmentation(segmentation)
        history.execute(add_segmentation)
        for mesh in meshes:
            mesh.segmentation_id = add_segmentation.object_id
            history.execute(AddMesh(mesh))

        clock = time.perf_counter()
        progress.check()
        save_case(scene, output, progress=progress)
        timings["save"] = time.perf_counter() - clock
    data = {
        "schema": BUILD_SCHEMA,
        "surgtwin_version": surgtwin.__version__,
        "case": str(output),
        "volume": {"name": volume.name, "modality": volume.modality, "dimensions": list(volume.shape_ijk)},
        "segmentation_source": source,
        "segments": _segment_rows(segmentation, meshes),
        "skipped": skipped,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "seconds": round(time.perf_counter() - started, 3),
    }
    if args.json:
        print_json(data)
    else:
        _print_build(data)
    return EXIT_OK


def _segment_rows(segmentation: Segmentation, meshes: list[SurfaceMesh]) -> list[dict[str, Any]]:
    rows = []
    for label, segment in segmentation.segments.items():
        mesh = next((m for m in meshes if m.segment_label == label), None)
        rows.append(
            {
                "name": segment.name,
                "label": label,
                "volume_ml": round(segmentation.volume_ml(label), 3),
                "triangles": mesh.triangle_count if mesh is not None else 0,
                "mesh_volume_ml": round(mesh.volume_ml(), 3) if mesh is not None else None,
            }
        )
    return rows


def _print_build(data: dict[str, Any]) -> None:
    print(f"Case {data['case']}: {data['volume']['name']!r} ({data['segmentation_source']})")
    print(f"  {'segment':<22} {'volume mL':>10} {'mesh mL':>10} {'triangles':>10}")
    for row in data["segments"]:
        mesh_ml = f"{row['mesh_volume_ml']:.1f}" if row["mesh_volume_ml"] is not None else "-"
        print(f"  {row['name']:<22} {row['volume_ml']:>10.1f} {mesh_ml:>10} {row['triangles']:>10}")
    for name, reason in data["skipped"].items():
        print(f"  {name}: not made ({reason})")
    stages = ", ".join(f"{k} {v:.2f} s" for k, v in data["timings_s"].items())
    print(f"  time: {stages}; total {data['seconds']:.2f} s")


def _case_parts(scene: Scene, segmentation_id: str | None) -> tuple[str, Segmentation, Volume | None, list]:
    segmentations = scene.segmentations
    if not segmentations:
        raise SurgTwinError(
            "this case has no segmentation yet (make one with surgtwin build)", code="no_segmentation"
        )
    if segmentation_id is None:
        segmentation_id = next(iter(segmentations))
    if segmentation_id not in segmentations:
        raise SurgTwinError(
            f"no segmentation {segmentation_id!r} in this case (has: {', '.join(segmentations)})",
            code="no_segmentation",
        )
    segmentation = segmentations[segmentation_id]
    ref = segmentation.reference_volume_id
    volume = scene.volumes.get(ref) if ref else None
    meshes = [m for m in scene.meshes.values() if m.segmentation_id == segmentation_id]
    return segmentation_id, segmentation, volume, meshes


def cmd_export(args: argparse.Namespace) -> int:
    from surgtwin.core.case import load_case
    from surgtwin.core.export import export

    require_existing([args.case])
    scene = load_case(Path(args.case))
    _, segmentation, volume, meshes = _case_parts(scene, args.segmentation)
    segments = [s.strip() for s in args.segments.split(",") if s.strip()] if args.segments else None
    files = export(args.format, Path(args.output), segmentation, meshes, volume, segments)
    data = {"schema": EXPORT_SCHEMA, "format": args.format, "files": [str(f) for f in files]}
    if args.json:
        print_json(data)
    else:
        for f in files:
            print(f"wrote {f}")
    return EXIT_OK


def _point(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3:
        raise SurgTwinError(f"{text!r} is not a point: give x,y,z in LPS millimetres", code="usage")
    return values


def cmd_measure(args: argparse.Namespace) -> int:
    from surgtwin.core.case import load_case
    from surgtwin.core.measure import distance_between_points, distance_to_surface, measure_case

    require_existing([args.case])
    scene = load_case(Path(args.case))
    data: dict[str, Any] = {"schema": MEASURE_SCHEMA, "case": str(args.case), "segmentations": []}
    for seg_id in scene.segmentations:
        _, segmentation, volume, meshes = _case_parts(scene, seg_id)
        data["segmentations"].append(
            {"id": seg_id, "name": segmentation.name, **measure_case(segmentation, volume, meshes)}
        )
    if args.distance:
        data["distance"] = distance_between_points(_point(args.distance[0]), _point(args.distance[1]))
    if args.to_surface:
        name, point = args.to_surface
        _, segmentation, _, meshes = _case_parts(scene, args.segmentation)
        label = segmentation.label_of(name)
        mesh = next((m for m in meshes if m.segment_label == label), None)
        if mesh is None:
            raise SurgTwinError(f"segment {name!r} has no surface mesh in this case", code="no_mesh")
        data["to_surface"] = {"segment": name, **distance_to_surface(_point(point), mesh)}
    if args.json:
        print_json(data)
    else:
        _print_measure(data)
    return EXIT_OK


def _print_measure(data: dict[str, Any]) -> None:
    for seg in data["segmentations"]:
        print(f"Segmentation {seg['id']} {seg['name']!r} (frame {seg['frame']})")
        print(f"  {'segment':<22} {'volume mL':>10} {'mesh mL':>9} {'area cm2':>9} {'mean':>8} {'sd':>7}")
        for row in seg["segments"]:
            mesh, stats = row["mesh"] or {}, row["intensity"] or {}
            mesh_ml = f"{mesh['volume_ml']:.1f}" if mesh.get("volume_ml") is not None else "-"
            area = (
                f"{mesh['surface_area_mm2'] / 100:.1f}" if mesh.get("surface_area_mm2") is not None else "-"
            )
            mean = f"{stats['mean']:.1f}" if stats.get("mean") is not None else "-"
            sd = f"{stats['std']:.1f}" if stats.get("std") is not None else "-"
            print(f"  {row['name']:<22} {row['volume_ml']:>10.1f} {mesh_ml:>9} {area:>9} {mean:>8} {sd:>7}")
    if "distance" in data:
        print(f"distance: {data['distance']['distance_mm']:.2f} mm")
    if "to_surface" in data:
        d = data["to_surface"]
        print(f"distance to {d['segment']} surface: {d['distance_mm']:.2f} mm")


def register(sub: Any) -> None:
    build = sub.add_parser("build", help="import + one-click twin (or given labels) + meshes -> case file")
    build.add_argument("paths", nargs="+", metavar="PATH")
    build.add_argument("--series", metavar="UID", help="series to use (default: the largest)")
    build.add_argument("--labels", metavar="LABELS.nii.gz|SEG.dcm", help="use this segmentation instead")
    build.add_argument("--names", metavar="NAMES.json", help='label names for --labels: {"1": "liver", ...}')
    build.add_argument("-o", "--output", required=True, metavar="CASE.stwin")
    build.add_argument("--title", help="case title (default: the series description)")
    build.add_argument("--json", action="store_true", help="machine-readable output (docs/cli.md)")
    build.set_defaults(func=cmd_build)

    exp = sub.add_parser("export", help="write a case's segments as meshes or label maps")
    exp.add_argument("case", metavar="CASE.stwin")
    exp.add_argument("--format", required=True, choices=["stl", "obj", "ply", "glb", "3mf", "seg", "nifti"])
    exp.add_argument("-o", "--output", required=True, metavar="DIR")
    exp.add_argument("--segments", metavar="a,b", help="only these segments (default: all)")
    exp.add_argument("--segmentation", metavar="ID", help="which segmentation (default: the first)")
    exp.add_argument("--json", action="store_true", help="machine-readable output (docs/cli.md)")
    exp.set_defaults(func=cmd_export)

    mea = sub.add_parser("measure", help="volumes, areas and intensity statistics of a case's segments")
    mea.add_argument("case", metavar="CASE.stwin")
    mea.add_argument("--distance", nargs=2, metavar="X,Y,Z", help="distance between two LPS points (mm)")
    mea.add_argument(
        "--to-surface",
        nargs=2,
        metavar=("SEGMENT", "X,Y,Z"),
        help="signed distance from an LPS point to a segment's surface (negative inside)",
    )
    mea.add_argument(
        "--segmentation", metavar="ID", help="for --to-surface: which segmentation (default: the first)"
    )
    mea.add_argument("--json", action="store_true", help="machine-readable output (docs/cli.md)")
    mea.set_defaults(func=cmd_measure)
