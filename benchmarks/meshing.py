"""Surface extraction throughput and the full twin (segments + meshes) on the LIDC CT.

Segments come from the one-click twin (``one_click_twin`` + ``to_segmentation``: skin,
bone, lungs, airways; no vessels, the CT has no contrast), so the benchmark measures the
real twin. In one run:

(a) Surface Nets alone on that label map (all segments at once, full grid), with VTK's
    Sequential and STDThread backends, in voxels/s;
(b) the full pipeline: one-click segments, then ``extract_meshes`` with default options
    (grid choice, topology fix, extraction, smoothing, volume restore, decimation to
    100k triangles per segment, repair, checks), with per-stage and per-segment times.

Prints Markdown; ``--record`` appends it to docs/benchmarks.md.

    .venv/bin/python benchmarks/meshing.py [--repeats 3] [--record]
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time

import numpy as np
from _common import LIDC, REPO, benchmark_parser, lidc_missing, machine, record

sys.path.insert(0, str(REPO))
AIM_S = 5.0


def main() -> int:
    parser = benchmark_parser(__doc__)
    args = parser.parse_args()
    if lidc_missing():
        return 1
    from surgtwin.core.importer import load_volume
    from surgtwin.core.mesh import extract_meshes
    from surgtwin.core.mesh.nets import set_sequential, surface_nets, use_threads
    from surgtwin.core.segmentation.one_click import one_click_twin, to_segmentation

    volume, _ = load_volume(LIDC)
    segment_s, mesh_s = [], []
    for _ in range(args.repeats):  # alternate segments and meshes, as the twin runs them
        start = time.perf_counter()
        segmentation = to_segmentation(one_click_twin(volume), volume)
        segment_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        meshes = extract_meshes(segmentation)
        mesh_s.append(time.perf_counter() - start)

    labels = segmentation.labels
    values = sorted(segmentation.segments)
    padded = np.pad(labels, 1)
    spacing = np.linalg.norm(segmentation.ijk_to_lps[:3, :3], axis=0)
    use_threads()
    nets: dict[str, list[float]] = {"Sequential": [], "STDThread": []}
    for _ in range(args.repeats):
        for backend in nets:
            set_sequential(backend == "Sequential")
            start = time.perf_counter()
            poly = surface_nets(padded, spacing, values)
            nets[backend].append(time.perf_counter() - start)
    set_sequential(False)
    faces = poly.GetNumberOfCells()

    seg, mesh = statistics.median(segment_s), statistics.median(mesh_s)
    whole = seg + mesh
    n_vox = labels.size
    names = ", ".join(segmentation.segments[v].name for v in values)
    shared = next(iter(meshes.values())).provenance["timing_shared_s"]
    lines = [
        f"### Meshing: LIDC-IDRI-0314 {labels.shape[0]} x {labels.shape[1]} x {labels.shape[2]}, "
        f"one-click twin segments ({dt.date.today().isoformat()})",
        "",
        f"Machine: {machine()}. Median of {args.repeats} runs; segments: {names}.",
        "",
        "| step | backend | median s | voxels/s |",
        "|---|---|---|---|",
    ]
    for backend, times in nets.items():
        med = statistics.median(times)
        lines.append(
            f"| (a) Surface Nets alone, full grid, {len(values)} labels ({faces} triangles) | {backend} | "
            f"{med:.2f} | {n_vox / med:.3g} |"
        )
    lines += [
        f"| (b) one-click segments (one_click_twin + to_segmentation) | | {seg:.2f} | |",
        f"| (b) meshes (extract_meshes, default options) | STDThread | {mesh:.2f} | {n_vox / mesh:.3g} |",
        f"| (b) whole twin: segments + meshes | | {whole:.2f} | |",
        "",
        f"Aim (issue 3): whole twin < {AIM_S:.0f} s on 2 cores -> {whole:.2f} s, "
        f"{'met' if whole < AIM_S else 'NOT met'}. Runs: segments "
        f"{', '.join(f'{s:.2f}' for s in segment_s)} s; meshes {', '.join(f'{s:.2f}' for s in mesh_s)} s.",
        "",
        "Stages of the last meshing run (seconds; groups run on two threads, so they overlap; "
        "xN = grid coarsened N times): " + ", ".join(f"{k} {v:.2f}" for k, v in shared.items()) + ".",
        "",
        "| segment | grid factor | label mL | mesh mL | diff % | extracted tri. | final tri. | finish s "
        "| decimation |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in meshes.values():
        p = m.provenance
        label_ml = p["label_volume_mm3"] / 1000
        lines.append(
            f"| {m.name} | {p['grid_factor']} | {label_ml:.1f} | {m.volume_ml():.1f} | "
            f"{100 * (m.volume_ml() - label_ml) / label_ml:+.2f} | {p['triangles']['extracted']} | "
            f"{p['triangles']['final']} | {p['seconds']:.2f} | {p['decimation']['result']} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.record:
        record(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
