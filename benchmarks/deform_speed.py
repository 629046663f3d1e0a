"""Soft-tissue solver speed: implicit steps per second against element count (a grasped block).

A cube of liver-like tissue (E 5 kPa, nu 0.45, 1000 kg/m^3), 1 cm cells, base held, gravity on,
one grasp on a top corner dragged on a circle; backward-Euler steps of 1/60 s, each solved by
CG to a relative residual of --tol (capped at --max-cg iterations), preconditioned by block
Jacobi or by the two-level preconditioner (block Jacobi plus a coarse-grid correction,
surgtwin/core/deform/precondition.py). Reports steps per second, mean CG iterations per step,
the share of steps that reached the tolerance, the first step's time (it builds and factorises
the coarse level) and the machine's load average. Anchor: SOFA's co-rotational tetrahedral FEM,
~19k tets at ~30 steps/s on one CPU core with 10 CG iterations (not converged).
"""

from __future__ import annotations

import os
import time

import numba
import numpy as np
from _common import benchmark_parser, machine, report

from surgtwin.core.deform.materials import Material
from surgtwin.core.deform.mesh import box_mesh
from surgtwin.core.deform.solver import DeformableBody

SIZES = {1_000: 10, 5_000: 17, 20_000: 27, 50_000: 37}  # target elements -> cells per edge


def run(
    cells: int, steps: int, tol: float, max_cg: int, preconditioner: str
) -> tuple[int, float, float, float, float]:
    size = 0.01 * cells
    mesh = box_mesh((size, size, size), (cells, cells, cells))
    body = DeformableBody(
        mesh,
        Material("liver-like", 5e3, 0.45, 1000.0, "benchmark"),
        fixed=mesh.nodes[:, 2] < 1e-9,
        gravity=(0.0, 0.0, -9.81),
        cg_tol=tol,
        cg_max_iterations=max_cg,
        preconditioner=preconditioner,
    )
    corner = np.array([size, size, size])
    handle = body.grasp(corner)
    first = time.perf_counter()
    body.step(1 / 60)  # compile / warm caches / build the coarse level outside the timing
    first = time.perf_counter() - first
    its, ok = [], 0
    start = time.perf_counter()
    for i in range(steps):
        angle = 2 * np.pi * i / 120
        body.drag(handle, corner + 0.3 * size * np.array([np.cos(angle) - 1, np.sin(angle), 0.2]))
        stats = body.step(1 / 60)
        its.append(stats.cg_iterations)
        ok += stats.converged
    elapsed = time.perf_counter() - start
    return mesh.elements.shape[0], steps / elapsed, float(np.mean(its)), ok / steps, first


def main() -> None:
    p = benchmark_parser(__doc__)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--tol", type=float, default=1e-3)
    p.add_argument("--max-cg", type=int, default=200)
    p.add_argument("--threads", type=int, nargs="+", default=[numba.get_num_threads()])
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    p.add_argument("--preconditioners", nargs="+", default=["jacobi", "two-level"])
    args = p.parse_args()
    lines = [
        f"## deform_speed: implicit steps/s, CG to relative residual {args.tol:g} (max {args.max_cg})",
        "",
        f"Machine: {machine()}",
        "",
        "| elements | threads | preconditioner | steps/s (best of repeats) | CG its/step | converged steps "
        "| first step (s) | load avg |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for threads in args.threads:
        numba.set_num_threads(threads)
        for target in args.sizes:
            for pc in args.preconditioners:  # side by side, so both see the same machine load
                best = None
                for _ in range(args.repeats):
                    res = run(SIZES[target], args.steps, args.tol, args.max_cg, pc)
                    best = res if best is None or res[1] > best[1] else best
                assert best is not None
                n_el, rate, its, ok, first = best
                load = os.getloadavg()[0]
                lines.append(
                    f"| {n_el} | {threads} | {pc} | {rate:.1f} | {its:.1f} | {ok * 100:.0f} % | {first:.2f} "
                    f"| {load:.1f} |"
                )
                print(lines[-1], flush=True)
    lines.append("| SOFA anchor: 18,954 tets | 1 | — | ~30 | 10 (capped) | not converged | | |")
    report(lines, args.record)


if __name__ == "__main__":
    main()
