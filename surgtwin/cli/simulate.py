"""``surgtwin simulate deform``: settle a segment of a case under loads, headless.

Coordinates are patient LPS millimetres, forces newtons, gravity m/s² (the solver works in
SI units inside). The JSON it prints is documented in docs/cli.md (schema
``surgtwin.simulate.deform/1``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from surgtwin.cli.common import EXIT_OK, print_json, require_existing
from surgtwin.core.errors import SurgTwinError

DEFORM_SCHEMA = "surgtwin.simulate.deform/1"
MESH_SUFFIXES = (".ply", ".stl", ".obj")
DEFAULT_MAX_ELEMENTS = 2000
# Settled: the largest node move of a static iteration is below this fraction of a cell.
SETTLE_TOLERANCE = 1e-3
RATE_STEPS = 20  # implicit steps of 1/60 s timed after the solve, for the interactive rate
LOAD_SPREAD_CELLS = 1.5  # a point load is shared by the surface nodes this close to the nearest one


def _vector(text: str, what: str) -> np.ndarray:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3 or not np.all(np.isfinite(values)):
        raise SurgTwinError(f"{text!r} is not {what}: give three numbers x,y,z", code="usage")
    return np.array(values)


def _load(text: str, second: str = "a force in N") -> tuple[np.ndarray, np.ndarray]:
    point, sep, vector = text.partition(":")
    if not sep:
        raise SurgTwinError(
            f"{text!r}: give X,Y,Z:{'FX,FY,FZ' if 'force' in second else 'DX,DY,DZ'}", code="usage"
        )
    return _vector(point, "a point in LPS mm"), _vector(vector, second)


def _material(args: argparse.Namespace, segment: str) -> Any:
    from surgtwin.core.deform.materials import custom_material, material, material_for_segment

    custom = (args.youngs, args.poisson, args.density)
    if any(v is not None for v in custom):
        if args.material:
            raise SurgTwinError("give --material or custom values (--youngs ...), not both", code="usage")
        if any(v is None for v in custom):
            raise SurgTwinError(
                "custom tissue needs --youngs PA, --poisson NU and --density KG_M3", code="usage"
            )
        return custom_material(*custom)
    if args.material:
        return material(args.material)
    found = material_for_segment(segment)
    if found is None:
        raise SurgTwinError(
            f"no material preset matches segment {segment!r}: give --material NAME or custom values",
            code="usage",
        )
    return found


def _surface(scene: Any, target: Any, mesh: Any) -> tuple[np.ndarray, np.ndarray]:
    """The segment's own surface mesh (LPS mm) if the case has one, else the simulation
    mesh's boundary (quads split into triangles)."""
    from surgtwin.core.deform.mesh import MM, boundary_faces
    from surgtwin.core.deform.setup import surface_mesh_id

    mesh_id = surface_mesh_id(scene, target.segmentation_id, target.label)
    if mesh_id is not None:
        surface = scene.meshes[mesh_id]
        return np.asarray(surface.vertices, float), np.asarray(surface.faces, np.int64)
    quads = boundary_faces(mesh)
    return mesh.nodes / MM, np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])


def cmd_deform(args: argparse.Namespace) -> int:
    from surgtwin.core.case import load_case
    from surgtwin.core.deform.mesh import MM, elements_for_rate, surface_nodes
    from surgtwin.core.deform.setup import build_segment_body, embed_surface, find_segment

    require_existing([args.case])
    if args.steps < 1 or args.max_elements < 8:
        raise SurgTwinError("--steps must be at least 1 and --max-elements at least 8", code="usage")
    output = (
        Path(args.output)
        if args.output
        else Path(args.case).with_name(f"{Path(args.case).stem}_{args.segment}_deformed.ply")
    )
    if output.suffix.lower() not in MESH_SUFFIXES:  # refuse before the work, not after it
        raise SurgTwinError(f"{output}: write the deformed mesh as .ply, .stl or .obj", code="usage")
    scene = load_case(Path(args.case))
    target = find_segment(scene, args.segment)
    tissue = _material(args, args.segment)
    gravity = _vector(args.gravity, "a gravity vector in m/s²") if args.gravity else np.zeros(3)
    loads = [_load(text) for text in args.load or []]

    started = time.perf_counter()
    budget = elements_for_rate(args.rate) if args.rate is not None else args.max_elements
    if not args.fixed and (loads or args.drag or gravity.any()):
        raise SurgTwinError(
            f"nothing holds {args.segment!r} in place, so loads or drags would only move it away: "
            "give --fixed SEGMENT (e.g. a bone it touches)",
            code="not_fixed",
        )
    anchors = [find_segment(scene, name) for name in args.fixed or []]
    built = build_segment_body(target, tissue, max_elements=budget, anchors=anchors, gravity=gravity)
    mesh, body, fixed, cell_mm = built.mesh, built.body, built.fixed, built.cell_mm
    on_surface = surface_nodes(mesh) & ~fixed
    surface_ids = np.flatnonzero(on_surface)
    applied = []
    for point_mm, force_n in loads:
        if not len(surface_ids):
            raise SurgTwinError("the simulation mesh has no free surface node to load", code="usage")
        distance = np.linalg.norm(mesh.nodes[surface_ids] - point_mm * MM, axis=1)
        if distance.min() > 2 * mesh.cell_m:
            raise SurgTwinError(
                f"--load at {point_mm.tolist()} mm is {distance.min() / MM:.0f} mm from {args.segment!r}; "
                "give a point on its surface",
                code="usage",
            )
        nearest = mesh.nodes[surface_ids[distance.argmin()]]
        spread = np.linalg.norm(mesh.nodes[surface_ids] - nearest, axis=1)
        near = surface_ids[spread <= LOAD_SPREAD_CELLS * mesh.cell_m]
        body.set_load(near, force_n / len(near))  # shared equally: the total is the given force
        applied.append(
            {
                "point_lps_mm": point_mm.tolist(),
                "force_n": force_n.tolist(),
                "nodes": int(len(near)),
                "nearest_node_distance_mm": float(distance.min() / MM),
            }
        )
    grasps = []
    for point_mm, move_mm in [_load(text, "a move in mm") for text in args.drag or []]:
        try:
            handle = body.grasp(point_mm * MM)
        except SurgTwinError as exc:
            raise SurgTwinError(f"--drag at {point_mm.tolist()} mm: {exc}", code=exc.code) from None
        body.drag(handle, (point_mm + move_mm) * MM)
        grasps.append((handle, point_mm, move_mm))
    solve_started = time.perf_counter()
    stats = body.solve_static(tol=SETTLE_TOLERANCE, max_steps=args.steps)
    solve_s = time.perf_counter() - solve_started
    inverted = body.inverted_elements()  # of the settled shape the results describe
    displacement_mm = np.linalg.norm(body.displacement(), axis=1) / MM
    dragged = [
        {
            "point_lps_mm": point_mm.tolist(),
            "move_mm": move_mm.tolist(),
            "nodes": int(len(body.grasped_nodes(handle))),
            "tool_force_n": body.tool_force(handle).tolist(),
        }
        for handle, point_mm, move_mm in grasps
    ]

    vertices_mm, faces = _surface(scene, target, mesh)
    embedding = embed_surface(mesh, vertices_mm)
    deformed_mm = embedding.apply(body.positions) / MM
    _write_mesh(output, deformed_mm, faces)

    rate_started = time.perf_counter()
    for _ in range(RATE_STEPS):
        body.step(1.0 / 60.0)
    steps_per_second = RATE_STEPS / (time.perf_counter() - rate_started)

    data = {
        "schema": DEFORM_SCHEMA,
        "case": str(args.case),
        "segment": args.segment,
        "material": {
            "name": tissue.name,
            "youngs_pa": tissue.youngs_pa,
            "poisson": tissue.poisson,
            "density_kg_m3": tissue.density_kg_m3,
        },
        "elements": int(len(mesh.elements)),
        "nodes": int(len(mesh.nodes)),
        "cell_mm": float(cell_mm),
        "element_budget": int(budget),
        "fixed_nodes": int(fixed.sum()),
        "fixed_segments": list(args.fixed or []),
        "gravity_m_s2": gravity.tolist(),
        "loads": applied,
        "drags": dragged,
        "static_iterations": int(stats.outer_iterations),
        "converged": bool(stats.converged),
        "max_displacement_mm": float(displacement_mm.max()),
        "mean_displacement_mm": float(displacement_mm.mean()),
        "inverted_elements": inverted,
        "solve_seconds": round(solve_s, 4),
        "steps_per_second": round(steps_per_second, 1),
        "seconds": round(time.perf_counter() - started, 3),
        "output": str(output),
        "output_vertices": int(len(deformed_mm)),
    }
    if args.json:
        print_json(data)
    else:
        state = "settled" if data["converged"] else f"NOT settled after {args.steps} iterations"
        print(
            f"{args.segment}: {data['elements']} elements, {data['nodes']} nodes ({cell_mm:.1f} mm cells), "
            f"{tissue.name} E={tissue.youngs_pa:g} Pa nu={tissue.poisson:g}; {state}"
        )
        print(
            f"displacement max {data['max_displacement_mm']:.2f} mm, "
            f"mean {data['mean_displacement_mm']:.2f} mm; "
            f"{data['steps_per_second']:.0f} steps/s; wrote {output}"
        )
    return EXIT_OK


def _write_mesh(path: Path, vertices_mm: np.ndarray, faces: np.ndarray) -> None:
    import trimesh

    path.parent.mkdir(parents=True, exist_ok=True)
    trimesh.Trimesh(vertices_mm, faces, process=False).export(path)


def register(sub: Any) -> None:
    sim = sub.add_parser("simulate", help="tissue-deformation (and later flow) previews on a case")
    kinds = sim.add_subparsers(dest="simulation", required=True)
    deform = kinds.add_parser(
        "deform", help="settle a segment under loads, gravity and anchors; write the deformed surface"
    )
    deform.add_argument("case", metavar="CASE.stwin")
    deform.add_argument("--segment", required=True, metavar="NAME", help="the tissue to simulate")
    deform.add_argument(
        "--fixed", action="append", metavar="SEGMENT", help="hold the tissue where it touches this segment"
    )
    deform.add_argument(
        "--material", metavar="NAME", help="liver, kidney, spleen, brain, muscle, fat or skin"
    )
    deform.add_argument("--youngs", type=float, metavar="PA", help="custom Young's modulus (Pa)")
    deform.add_argument("--poisson", type=float, metavar="NU", help="custom Poisson's ratio (0 .. 0.5)")
    deform.add_argument("--density", type=float, metavar="KG_M3", help="custom density (kg/m³)")
    deform.add_argument(
        "--gravity",
        metavar="X,Y,Z",
        help="gravity in m/s², LPS axes (supine: 0,9.81,0; a leading minus needs --gravity=-X,...)",
    )
    deform.add_argument(
        "--load",
        action="append",
        metavar="X,Y,Z:FX,FY,FZ",
        help="a force (N) at a surface point (LPS mm); a leading minus needs --load=-X,...",
    )
    deform.add_argument(
        "--drag",
        action="append",
        metavar="X,Y,Z:DX,DY,DZ",
        help="grasp the tissue at a point (LPS mm) and move it by DX,DY,DZ mm (force on the tool reported); "
        "a leading minus needs --drag=-X,...",
    )
    deform.add_argument("--steps", type=int, default=50, metavar="N", help="most static iterations (50)")
    size = deform.add_mutually_exclusive_group()
    size.add_argument(
        "--max-elements", type=int, default=DEFAULT_MAX_ELEMENTS, metavar="N", help="mesh size budget (2000)"
    )
    size.add_argument(
        "--rate",
        type=float,
        metavar="HZ",
        help="size the mesh for this many steps/s (instead of --max-elements)",
    )
    deform.add_argument("-o", "--output", metavar="OUT.ply", help="deformed surface (.ply, .stl, .obj)")
    deform.add_argument("--json", action="store_true", help="machine-readable output (docs/cli.md)")
    deform.set_defaults(func=cmd_deform)
    from surgtwin.cli.simulate_flow import register_flow

    register_flow(kinds)
