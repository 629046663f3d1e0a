"""``surgtwin simulate flow``: blood flow in a case's vessel segments, headless.

Two tiers: ``--model reduced`` (the default) traces the centreline tree and solves the steady
0D network at once (with ``--waveform``, also over the cardiac cycle); ``--model 3d`` also
runs the lattice-Boltzmann preview on the voxelised lumen (seconds to minutes; with
``--waveform``, over ``--cycles`` heartbeats), with the reduced model's flows at the outlets.
Coordinates are patient LPS millimetres. The JSON it prints is documented in docs/cli.md (schema
``surgtwin.simulate.flow/1``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from surgtwin.cli.common import EXIT_OK, print_json, require_existing
from surgtwin.cli.simulate import _vector
from surgtwin.core.errors import SurgTwinError

DEFAULT_MAX_CELLS = 250_000  # as surgtwin.core.flow.case3d (not imported here: it loads numba)
DEFAULT_MAX_STEPS = 40_000
DEFAULT_MAX_CYCLE_STEPS = 400_000  # 3D over the cardiac cycle: the step is sized on the systolic peak
DEFAULT_CYCLES = 2  # as surgtwin.core.flow.case3d_cycle

FLOW_SCHEMA = "surgtwin.simulate.flow/1"


def cmd_flow(args: argparse.Namespace) -> int:
    from surgtwin.core.case import load_case
    from surgtwin.core.flow.case import (
        aneurysm_rows,
        outlet_rows,
        solve_case,
        solve_stented,
        stenosis_rows,
        vessel_mask,
    )
    from surgtwin.core.flow.reduced import BLOOD_DENSITY_KG_M3, BLOOD_VISCOSITY_PA_S, PA_PER_MMHG

    require_existing([args.case])
    _check_3d_options(args)
    viscosity = BLOOD_VISCOSITY_PA_S if args.viscosity is None else args.viscosity
    density = BLOOD_DENSITY_KG_M3 if args.density is None else args.density
    if not (viscosity > 0 and density > 0):
        raise SurgTwinError("--viscosity and --density must be positive (Pa·s, kg/m³)", code="usage")
    if args.flow_rate is not None and not args.flow_rate > 0:
        raise SurgTwinError("--flow-rate must be positive (mL/s)", code="usage")
    waveform_file = _check_waveform_options(args)
    names = [name.strip() for name in args.segment.split(",") if name.strip()]
    if not names:
        raise SurgTwinError("--segment needs a segment name", code="usage")
    measured = None
    if waveform_file is not None:  # read first: a bad file is told before the case is loaded
        from surgtwin.core.flow.case_pulsatile import read_waveform_csv

        measured = read_waveform_csv(waveform_file)
        args.flow_rate = measured.mean_m3_s * 1e6  # the steady tiers run at the cycle's mean
    scene = load_case(Path(args.case))
    mask, ijk_to_lps = vessel_mask(scene, names)
    inlet = _vector(args.inlet, "a point in LPS mm") if args.inlet else None
    started = time.perf_counter()
    case = solve_case(
        mask, ijk_to_lps, inlet_lps=inlet, inflow_ml_s=args.flow_rate, viscosity_pa_s=viscosity,
        density_kg_m3=density,
    )  # fmt: skip
    tree, result = case.tree, case.result
    stenoses = stenosis_rows(case)
    data: dict[str, Any] = {
        "schema": FLOW_SCHEMA,
        "case": str(args.case),
        "segment": args.segment,
        "model": args.model,
        "viscosity_pa_s": viscosity,
        "density_kg_m3": density,
        "inflow_ml_s": case.inflow_ml_s,
        "inlet_lps_mm": np.asarray(tree.inlet_lps).round(2).tolist(),
        "centreline": {
            "branches": len(tree.branches),
            "length_mm": round(sum(tree.length_mm(b) for b in range(len(tree.branches))), 1),
            "bifurcations": len(tree.bifurcations_lps),
            "notes": list(tree.notes),
        },
        "inlet_pressure_mmhg": result.inlet_pressure_pa / PA_PER_MMHG,
        "outlets": outlet_rows(case),
        "stenoses": stenoses,
        "aneurysms": aneurysm_rows(case),
        "solve_seconds": result.solve_seconds,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if args.stent and stenoses:
        after = solve_stented(case)
        data["stented"] = {
            "inlet_pressure_mmhg": after.inlet_pressure_pa / PA_PER_MMHG,
            "outlets": outlet_rows(case, after),
        }
    waveform = _waveform(args, case, measured)
    if waveform is not None:
        data["pulsatile"] = _run_pulsatile(args, case, waveform)
    if args.model == "3d":
        data["three_d"] = _run_3d(args, case, mask, ijk_to_lps, waveform)
    if args.json:
        print_json(_finite_or_null(data))
    else:
        print(
            f"{args.segment}: {data['centreline']['branches']} branches, "
            f"inflow {data['inflow_ml_s']:.1f} mL/s, "
            f"{len(stenoses)} stenoses, {len(data['aneurysms'])} aneurysms"
        )
        for row in data["outlets"]:
            print(
                f"  outlet branch {row['branch']}: {row['flow_ml_s']:.2f} mL/s, "
                f"drop {row['pressure_drop_mmhg']:.2f} mmHg"
            )
        for row in stenoses:
            print(
                f"  stenosis {row['area_reduction_percent']:.0f} % at {row['position_lps_mm']}: "
                f"{row['pressure_drop_mmhg']:.2f} mmHg, ratio {row['pressure_ratio']:.3f}"
            )
        if "pulsatile" in data:
            _print_pulsatile(data["pulsatile"])
        if "three_d" in data:
            _print_3d(data["three_d"])
    return EXIT_OK


def _check_3d_options(args: argparse.Namespace) -> None:
    options = (
        ("--cell-size", args.cell_size),
        ("--max-cells", args.max_cells),
        ("--max-steps", args.max_steps),
        ("--fields", args.fields),
        ("--cycles", args.cycles),
    )
    if args.model != "3d":
        given = [flag for flag, value in options if value is not None]
        if given:
            raise SurgTwinError(f"{', '.join(given)} apply only to --model 3d", code="usage")
        return
    if args.cell_size is not None and not args.cell_size > 0:
        raise SurgTwinError("--cell-size must be positive (mm)", code="usage")
    args.max_cells = DEFAULT_MAX_CELLS if args.max_cells is None else args.max_cells
    if args.cycles is not None and args.waveform is None:
        raise SurgTwinError("--cycles applies to a 3D run over the cardiac cycle (--waveform)", code="usage")
    default_steps = DEFAULT_MAX_STEPS if args.waveform is None else DEFAULT_MAX_CYCLE_STEPS
    args.max_steps = default_steps if args.max_steps is None else args.max_steps
    args.cycles = DEFAULT_CYCLES if args.cycles is None else args.cycles
    if not args.max_cells > 0 or not args.max_steps > 0 or not 2 <= args.cycles <= 20:
        raise SurgTwinError("--max-cells and --max-steps must be positive, --cycles 2 to 20", code="usage")
    if args.fields and Path(args.fields).suffix.lower() != ".npz":
        raise SurgTwinError("--fields writes a NumPy archive: give a path ending in .npz", code="usage")


def _check_waveform_options(args: argparse.Namespace) -> Path | None:
    """The waveform file to read (None for the generic shape or no waveform)."""
    if args.waveform is None:
        if args.heart_rate is not None:
            raise SurgTwinError("--heart-rate applies to --waveform generic", code="usage")
        return None
    if args.waveform == "generic":
        if args.heart_rate is not None and not 20 <= args.heart_rate <= 300:
            raise SurgTwinError("--heart-rate must be between 20 and 300 beats a minute", code="usage")
        return None
    if args.heart_rate is not None or args.flow_rate is not None:
        raise SurgTwinError(
            "a waveform file sets its own rate and flow: drop --heart-rate and --flow-rate", code="usage"
        )
    require_existing([args.waveform])
    return Path(args.waveform)


def _waveform(args: argparse.Namespace, case: Any, measured: Any) -> Any:
    """The inflow over the cycle: the file's, or the generic shape at the case's inflow (None
    without --waveform)."""
    if args.waveform is None or measured is not None:
        return measured
    from surgtwin.core.flow.pulsatile import Waveform

    rate = 70.0 if args.heart_rate is None else args.heart_rate
    return Waveform.generic(case.network.inflow_m3_s, heart_rate_bpm=rate)


def _run_pulsatile(args: argparse.Namespace, case: Any, waveform: Any) -> dict[str, Any]:
    from surgtwin.core.flow.case_pulsatile import pulsatile_summary, solve_case_pulsatile

    summary = pulsatile_summary(case, solve_case_pulsatile(case, waveform), waveform)
    summary["waveform"] = args.waveform
    return summary


def _print_pulsatile(cycle: dict[str, Any]) -> None:
    inlet = cycle["inlet_pressure_mmhg"]
    print(
        f"  cardiac cycle ({cycle['heart_rate_bpm']:.0f} beats/min, {cycle['waveform']} waveform): "
        f"inlet {inlet['systolic']:.0f}/{inlet['diastolic']:.0f} mmHg (mean {inlet['mean']:.0f}), "
        f"inflow peak {cycle['inflow_ml_s']['max']:.1f} mL/s"
        + ("" if cycle["periodic"] else f" (NOT periodic after {cycle['cycles']} cycles)")
    )
    for row in cycle["outlets"]:
        flow = row["flow_ml_s"]
        spread = f"{flow['min']:.2f} to {flow['max']:.2f}"
        print(f"  cycle, outlet branch {row['branch']}: {flow['mean']:.2f} mL/s ({spread})")
    for row in cycle["stenoses"]:
        drop = row["pressure_drop_mmhg"]
        print(
            f"  cycle, stenosis at {row['position_lps_mm']}: drop mean {drop['mean']:.2f} mmHg, "
            f"peak {drop['peak']:.2f} mmHg, ratio of means {row['pressure_ratio_mean']:.3f}"
        )


def _finite_or_null(value: Any) -> Any:
    """JSON has no NaN or Infinity: a reading that could not be taken becomes null."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_null(item) for item in value]
    return value


def _run_3d(
    args: argparse.Namespace, case: Any, mask: np.ndarray, ijk_to_lps: np.ndarray, waveform: Any
) -> dict[str, Any]:
    from surgtwin.core.flow import case3d
    from surgtwin.core.progress import Progress

    printed = [0]  # the last step count shown: chunks of any length cross each 2,000 once

    def report(stage: str, done: int, total: int) -> None:
        if not args.json and total and done // 2000 > printed[0] // 2000:
            printed[0] = done
            print(f"  3D: step {done} of at most {total}", file=sys.stderr)

    def run_3d(case: Any, mask: np.ndarray, cell_mm: float | None, progress: Any = None) -> Any:
        options = {"cell_mm": cell_mm, "max_cells": args.max_cells, "max_steps": args.max_steps}
        options["progress"] = progress
        if waveform is None:
            return case3d.run_case_3d(case, mask, ijk_to_lps, **options)
        from surgtwin.core.flow.case3d_cycle import run_case_3d_cycle

        return run_case_3d_cycle(case, mask, ijk_to_lps, waveform, cycles=args.cycles, **options)

    run = run_3d(case, mask, args.cell_size, Progress(report))
    result = case3d.summary(run)
    if waveform is not None:
        from surgtwin.core.flow.case3d_cycle import cycle_rows

        result["cycle"] = cycle_rows(run)
    result["ends"] = case3d.end_rows(run)
    result["stenoses"] = case3d.stenosis_rows_3d(run, case)
    result["wall_shear_stress"] = case3d.wall_shear_summary(run)
    if args.fields:
        path = Path(args.fields)
        np.savez_compressed(
            path, velocity_m_s=run.lbm.velocity_m_s, pressure_pa=run.lbm.pressure_pa, fluid=run.grid.fluid,
            grid_to_lps=run.grid.grid_to_lps,
        )  # fmt: skip
        result["fields"] = str(path)
    if args.stent and case.stenoses:
        opened = case3d.stented_mask(case, mask, ijk_to_lps)
        stented = run_3d(case3d.stented_case(case), opened, run.grid.cell_mm)
        result["stented"] = {"summary": case3d.summary(stented), "ends": case3d.end_rows(stented)}
    return result


def _unsteady(three_d: dict[str, Any]) -> str:
    averaged = three_d.get("averaged_over_steps", 0)
    return f"NOT steady yet: mean of the last {averaged} steps" if averaged else "NOT steady yet"


def _print_3d(three_d: dict[str, Any]) -> None:
    from surgtwin.core.flow.case3d import (  # loaded by the run already
        RESOLVED_MAX_THROAT_REYNOLDS,
        RESOLVED_THROAT_CELLS,
    )

    cycle = three_d.get("cycle")
    if cycle is not None:
        state = f"{cycle['cycles']} cardiac cycles; readings: mean over the last"
    else:
        state = "steady" if three_d["converged"] else _unsteady(three_d)
    print(
        f"  3D: {three_d['cells']:,} cells of {three_d['cell_size_mm']} mm, {three_d['steps']} steps "
        f"({state}), {three_d['mlups']} MLUPS, max velocity {three_d['max_velocity_m_s']:.2f} m/s, "
        f"mass imbalance {three_d['mass_imbalance_percent']} %"
    )
    for row in three_d["ends"][1:]:
        print(f"  3D {row['end']}: {row['flow_ml_s']:.2f} mL/s, drop {row['pressure_drop_mmhg']:.2f} mmHg")
    for row in (cycle or {}).get("ends", [])[1:]:
        flow, drop = row["flow_ml_s"], row["pressure_drop_mmhg"]
        print(
            f"  3D cycle, {row['end']}: {flow['min']:.2f} to {flow['max']:.2f} mL/s, "
            f"drop {drop['min']:.2f} to {drop['max']:.2f} mmHg"
        )
    for row in three_d["stenoses"]:
        caveat = ""
        if not row["resolved"]:
            across, reynolds = row["throat_cells_across"], row["throat_reynolds"]
            caveat = (
                f" (NOT a reading: throat {across} cells across, need {RESOLVED_THROAT_CELLS:.0f}; "
                f"throat Reynolds number {reynolds:.0f}, validated to {RESOLVED_MAX_THROAT_REYNOLDS:.0f})"
            )
        print(f"  3D stenosis at {row['position_lps_mm']}: {row['pressure_drop_mmhg']:.2f} mmHg{caveat}")
    wss = three_d["wall_shear_stress"]
    print(f"  wall shear stress: mean {wss['mean_pa']:.2f} Pa, 95th percentile {wss['p95_pa']:.2f} Pa")


def register_flow(kinds: Any) -> None:
    flow = kinds.add_parser(
        "flow", help="blood flow in vessel segments: reduced (0D) or 3D lattice Boltzmann"
    )
    flow.add_argument("case", metavar="CASE.stwin")
    flow.add_argument(
        "--segment", required=True, metavar="NAME", help="the vessel segment (several: a,b,c are joined)"
    )
    flow.add_argument("--inlet", metavar="X,Y,Z", help="the vessel end nearest this LPS point is the inlet")
    flow.add_argument("--flow-rate", type=float, metavar="ML_PER_S", help="inflow (default: 0.2 m/s mean)")
    flow.add_argument("--model", choices=["reduced", "3d"], default="reduced", help="reduced (0D) or 3d")
    flow.add_argument("--viscosity", type=float, metavar="PA_S", help="blood viscosity (default 0.0035)")
    flow.add_argument("--density", type=float, metavar="KG_M3", help="blood density (default 1060)")
    flow.add_argument(
        "--stent", action="store_true", help="also solve with every stenosis removed (both tiers)"
    )
    flow.add_argument(
        "--waveform",
        metavar="generic|FILE.csv",
        help="also solve the reduced model over the cardiac cycle: a generic shape, or a file of time (s), "
        "flow (mL/s) rows; RCR outlets",
    )
    flow.add_argument("--heart-rate", type=float, metavar="BPM", help="for --waveform generic (default 70)")
    flow.add_argument("--cell-size", type=float, metavar="MM", help="3D lattice cell (default: auto)")
    flow.add_argument(
        "--max-cells",
        type=int,
        metavar="N",
        help="3D fluid-cell budget for auto cells (250000)",
    )
    flow.add_argument(
        "--max-steps", type=int, metavar="N", help="3D steps at most (40000; over the cardiac cycle 400000)"
    )
    flow.add_argument("--cycles", type=int, metavar="N", help="3D with --waveform: heartbeats to run (2)")
    flow.add_argument("--fields", metavar="OUT.npz", help="3D: write velocity, pressure and the lattice")
    flow.add_argument("--json", action="store_true", help="machine-readable output (docs/cli.md)")
    flow.set_defaults(func=cmd_flow)
