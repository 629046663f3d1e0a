"""3D flow solver against this machine's memory-bandwidth roofline (D3Q19 float32 lattice Boltzmann).

Bandwidth: a STREAM-like copy of --array-mb of float32 (bytes read + bytes written, STREAM's
convention), best of --repeats, both numpy's single-threaded ``np.copyto`` and a numba parallel copy
on all cores. Solver: million fluid-cell updates per second (MLUPS) on a --size^3 box full of fluid
(velocity inlet, pressure outlet), after a warm-up step. Roofline fraction = MLUPS x 153 bytes /
best bandwidth. Anchor: FluidX3D reaches 75-85 % of roofline on GPUs (17.6 billion updates/s on an
H100 SXM). Aim here: >= 50 % of roofline on the CPU.
"""

from __future__ import annotations

import time

import numba
import numpy as np
from _common import benchmark_parser, machine, report

from surgtwin.core.flow.lbm import LbmSetup, LbmSolver
from surgtwin.core.flow.lbm_kernels import parallel_copy

BYTES_PER_UPDATE = 153  # the figure: 19 float32 read + 19 written (152) + about a byte of cell type


def copy_bandwidth(copy, megabytes: int, repeats: int) -> float:  # type: ignore[no-untyped-def]
    src = np.random.default_rng(0).random(megabytes * 2**20 // 4, dtype=np.float32)
    dst = np.empty_like(src)
    copy(src, dst)  # page in and compile
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        copy(src, dst)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best / 1e9


def solver_mlups(size: int, steps: int, repeats: int, smagorinsky: float = 0.0) -> float:
    solver = LbmSolver(np.ones((size, size, size), bool), LbmSetup(1e-4, 0.1, smagorinsky=smagorinsky))
    solver.step(1)  # compile and page in
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        solver.step(steps)
        best = min(best, time.perf_counter() - start)
    return solver.fluid_cells * steps / best / 1e6


def main() -> None:
    p = benchmark_parser(__doc__)
    p.add_argument("--size", type=int, default=100)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--array-mb", type=int, default=512)
    p.add_argument(
        "--smagorinsky", type=float, default=0.1, help="also time the LES (regularized) collision with this C"
    )
    args = p.parse_args()
    threads = numba.get_num_threads()
    numpy_gbs = copy_bandwidth(lambda s, d: np.copyto(d, s), args.array_mb, args.repeats + 2)
    numba_gbs = copy_bandwidth(parallel_copy, args.array_mb, args.repeats + 2)
    bandwidth = max(numpy_gbs, numba_gbs)
    mlups = solver_mlups(args.size, args.steps, args.repeats)
    les_mlups = solver_mlups(args.size, args.steps, args.repeats, args.smagorinsky)
    roofline = bandwidth * 1e9 / BYTES_PER_UPDATE / 1e6
    lines = [
        f"## 3D flow roofline (D3Q19 TRT and regularized LES, float32) — {time.strftime('%Y-%m-%d')}",
        "",
        f"Machine: {machine()}; numba threads {threads}; {args.size}^3 fluid box, best of {args.repeats}.",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| copy bandwidth, numpy `np.copyto` (1 thread) | {numpy_gbs:.1f} GB/s |",
        f"| copy bandwidth, numba parallel ({threads} threads) | {numba_gbs:.1f} GB/s |",
        f"| roofline at {BYTES_PER_UPDATE} B/update (best bandwidth) | {roofline:.0f} MLUPS |",
        f"| solver | {mlups:.1f} MLUPS |",
        f"| fraction of roofline | {mlups / roofline:.0%} |",
        f"| solver with LES (regularized collision, C = {args.smagorinsky}) | {les_mlups:.1f} MLUPS "
        f"({les_mlups / roofline:.0%} of roofline) |",
        "| anchor: FluidX3D on GPUs | 75-85 % of roofline; 17,600 MLUPS on an H100 SXM |",
        "",
    ]
    report(lines, args.record)


if __name__ == "__main__":
    main()
