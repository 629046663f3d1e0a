"""The sample's aorta-iliac tree in both flow tiers, and why their stenosis drops differ.

Builds the sample's ground-truth case (sample_dicom/ground_truth), solves the reduced model and
runs the 3D lattice at --cell-size for --max-steps, then reports: the run (cells, steps, speed,
steadiness, mass balance), the flows at each end against the reduced split, the stenosis drop
in both tiers, the throat's cross-section in the lattice against the mask's, the cells across
it, the cell Reynolds number there and the Smagorinsky eddy viscosity (estimated from the
averaged velocity field) against the blood's. Numbers for docs/flow.md's sample paragraph.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from _common import REPO, benchmark_parser, machine, report
from scipy import ndimage

sys.path.insert(0, str(REPO))

from surgtwin.core.case import load_case  # noqa: E402
from surgtwin.core.flow import case3d  # noqa: E402
from surgtwin.core.flow.case import solve_case, vessel_mask  # noqa: E402
from surgtwin.core.flow.centerline import plane_axes  # noqa: E402
from surgtwin.core.flow.reduced import PA_PER_MMHG  # noqa: E402

TREE = ["aorta", "iliac_left", "iliac_right"]
TRUTH = REPO / "sample_dicom" / "ground_truth"


def sample_case(folder: Path) -> Path:
    path = folder / "gt.stwin"
    subprocess.run(
        [sys.executable, "-m", "surgtwin", "build", str(REPO / "sample_dicom"), "--labels",
         str(TRUTH / "labels.nii.gz"), "--names", str(TRUTH / "labels.json"), "-o", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


def lattice_area_mm2(flow: case3d.Flow3D, point: np.ndarray, tangent: np.ndarray) -> float:
    """Fluid cells' area on the plane normal to ``tangent`` at ``point`` (the piece around it)."""
    u_axis, v_axis = plane_axes(tangent / np.linalg.norm(tangent))
    step, half = 0.2, 60
    offsets = np.arange(-half, half + 1) * step
    u, v = np.meshgrid(offsets, offsets, indexing="ij")
    ijk = np.round(flow.grid.index((point + u[..., None] * u_axis + v[..., None] * v_axis).reshape(-1, 3)))
    ijk = ijk.astype(int)
    fluid = flow.grid.fluid
    ok = np.all((ijk >= 0) & (ijk < np.array(fluid.shape)), axis=1)
    inside = np.zeros(len(ijk), dtype=bool)
    inside[ok] = fluid[tuple(ijk[ok].T)]
    pieces, _ = ndimage.label(inside.reshape(u.shape))
    piece = pieces[half, half]
    return float((pieces == piece).sum()) * step * step if piece else 0.0


def eddy_viscosity_ratio(flow: case3d.Flow3D, centre: np.ndarray, reach: int = 3) -> tuple[float, float]:
    """Smagorinsky eddy viscosity / the blood's, median and max over the fluid cells within
    ``reach`` cells of ``centre`` (strain rate from the averaged velocity field)."""
    setup = flow.lbm.setup
    u = flow.lbm.velocity_m_s / setup.velocity_scale
    gradients = [np.gradient(u[..., a]) for a in range(3)]
    strain_sq = sum((0.5 * (gradients[a][b] + gradients[b][a])) ** 2 for a in range(3) for b in range(3))
    eddy = setup.smagorinsky**2 * np.sqrt(2.0 * strain_sq)
    molecular = (setup.tau - 0.5) / 3.0
    index = np.round(flow.grid.index(centre[None]))[0].astype(int)
    block = tuple(slice(max(i - reach, 0), i + reach + 1) for i in index)
    values = eddy[block][flow.grid.fluid[block]] / molecular
    return float(np.median(values)), float(values.max())


def main() -> None:
    p = benchmark_parser(__doc__)
    p.add_argument("--cell-size", type=float, default=1.4, help="lattice cell, mm")
    p.add_argument("--max-steps", type=int, default=40_000)
    p.add_argument("--flow-rate", type=float, default=60.0, help="inflow, mL/s")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        scene = load_case(sample_case(Path(folder)))
    mask, ijk_to_lps = vessel_mask(scene, TREE)
    case = solve_case(mask, ijk_to_lps, inflow_ml_s=args.flow_rate)
    started = time.perf_counter()
    flow = case3d.run_case_3d(case, mask, ijk_to_lps, cell_mm=args.cell_size, max_steps=args.max_steps)
    seconds = time.perf_counter() - started
    info = case3d.summary(flow)
    ends = case3d.end_rows(flow)
    reduced = {case.pieces[o.segment_index].branch: o.flow_m3_s for o in case.result.outlets}
    (stenosis,) = case.stenoses  # the sample has one, on the right iliac
    (drop_3d,) = case3d.stenosis_drops_pa(flow, case)
    drop_reduced = case.result.stenoses[0].pressure_drop_pa
    branch = case.tree.branches[stenosis.branch]
    at = int(np.argmin(np.linalg.norm(branch.points_lps - stenosis.position_lps, axis=1)))
    tangent = np.gradient(branch.points_lps, axis=0)[at]
    lattice_area = lattice_area_mm2(flow, branch.points_lps[at], tangent)
    assert branch.area_mm2 is not None
    eddy_median, eddy_max = eddy_viscosity_ratio(flow, branch.points_lps[at])
    setup = flow.lbm.setup
    peak_lattice = info["max_velocity_m_s"] / setup.velocity_scale
    cell_reynolds = peak_lattice / ((setup.tau - 0.5) / 3.0)
    lines = [
        f"## Flow on the sample, both tiers ({machine()}, {date.today().isoformat()})",
        "",
        f"`benchmarks/flow_sample_3d.py --cell-size {args.cell_size} --max-steps {args.max_steps}`: "
        f"{info['cells']:,} fluid cells in a {' × '.join(map(str, info['lattice_shape']))} box, "
        f"{info['steps']:,} steps = {info['simulated_time_s']:.2f} s of flow, {seconds:.0f} s at "
        f"{info['mlups']} MLUPS; {'steady' if info['converged'] else 'not steady'}"
        + (f" (readings: mean of the last {n:,} steps)" if (n := info["averaged_over_steps"]) else "")
        + f"; mass imbalance {info['mass_imbalance_percent']} %; τ = {info['tau']}, "
        f"Smagorinsky {info['smagorinsky']}. Lattice memory (fluid cells only): "
        f"{info['solver_memory_mb']} MB; the whole box would take {info['whole_box_memory_mb']} MB.",
        "",
        "| reading | reduced | 3D |",
        "|---|---|---|",
    ]
    for row in ends[1:]:
        lines.append(
            f"| {row['end']} (branch {row['branch']}) flow | {reduced[row['branch']] * 1e6:.1f} mL/s "
            f"| {row['flow_ml_s']:.1f} mL/s |"
        )
    lines += [
        f"| stenosis drop | {drop_reduced:.0f} Pa ({drop_reduced / PA_PER_MMHG:.1f} mmHg) "
        f"| {drop_3d:.0f} Pa ({drop_3d / PA_PER_MMHG:.1f} mmHg) |",
        f"| stenosis area reduction | {100 * stenosis.area_reduction:.0f} % (cross-sections) | — |",
        f"| throat cross-section | mask {branch.area_mm2[at]:.1f} mm² | lattice {lattice_area:.1f} mm² |",
        f"| cells across the throat | — | {case3d.throat_cells_across(stenosis, flow.grid.cell_mm):.1f} |",
        f"| cell Reynolds number at the peak velocity | — | {cell_reynolds:.0f} |",
        f"| eddy / blood viscosity in the throat | — | median {eddy_median:.1f}, max {eddy_max:.1f} |",
    ]
    report(lines, args.record)


if __name__ == "__main__":
    main()
