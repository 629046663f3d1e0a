"""Surface extraction throughput and the full per-segment mesh pipeline on the LIDC CT.

A 5-segment label map is made from the 275 x 512 x 512 LIDC-IDRI-0314 chest CT by
thresholds (body, bone left/right, lungs left/right: touching segments). Then, in one run:
Surface Nets alone on the whole map, with VTK's Sequential and STDThread backends
(voxels/s), and the full pipeline (topology fix, extraction, smoothing, clean-up,
decimation to 100k triangles per segment, repair, checks). Prints Markdown;
``--record`` appends it to docs/benchmarks.md.

    .venv/bin/python benchmarks/meshing.py [--repeats 3] [--record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
LIDC = REPO.parent / "shared" / "data" / "lidc0314_chest_ct" / "dicom"
NAMES = {1: "body", 2: "bone_left", 3: "bone_right", 4: "lung_left", 5: "lung_right"}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def _largest(mask: np.ndarray, min_voxels: int = 0, count: int = 1) -> np.ndarray:
    pieces, n = ndimage.label(mask)
    sizes = np.bincount(pieces.ravel(), minlength=n + 1)
    sizes[0] = 0
    keep = [p for p in np.argsort(sizes)[::-1][:count] if sizes[p] > min_voxels]
    return np.isin(pieces, keep)


def label_map(hu: np.ndarray) -> np.ndarray:
    """Thresholds and largest pieces: body, bone and lung split at the midline (touching)."""
    body = _largest(hu > -300)
    air = (hu <= -400) & ~body
    pieces, _ = ndimage.label(air)
    # lungs: air not reaching the in-plane edge (the field of view cuts them at top and bottom)
    edge = np.unique(np.concatenate([pieces[:, [0, -1]].ravel(), pieces[..., [0, -1]].ravel()]))
    lung = _largest(air & ~np.isin(pieces, edge), 100_000, count=2)
    bone = _largest(body & (hu > 250), 5_000, count=20)
    right_half = np.zeros(hu.shape, dtype=bool)
    right_half[..., : hu.shape[2] // 2] = True  # i increases towards patient left in LPS
    labels = np.zeros(hu.shape, dtype=np.uint8)
    labels[body] = 1
    labels[lung & right_half] = 5
    labels[lung & ~right_half] = 4
    labels[bone & right_half] = 3
    labels[bone & ~right_half] = 2
    return labels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="append the result to docs/benchmarks.md")
    args = parser.parse_args()
    if not LIDC.is_dir():
        print(f"LIDC series not found at {LIDC}", file=sys.stderr)
        return 1
    from surgtwin.core.importer import load_volume
    from surgtwin.core.mesh import MeshOptions, mesh_label_map
    from surgtwin.core.mesh.nets import set_sequential, surface_nets, use_threads

    volume, _ = load_volume(LIDC)
    labels = label_map(volume.voxels)
    padded = np.pad(labels, 1)
    spacing = np.linalg.norm(volume.ijk_to_lps[:3, :3], axis=0)
    values = sorted(NAMES)
    use_threads()
    nets: dict[str, list[float]] = {"Sequential": [], "STDThread": []}
    for _ in range(args.repeats):
        for backend in nets:
            set_sequential(backend == "Sequential")
            start = time.perf_counter()
            poly = surface_nets(padded, spacing, values)
            nets[backend].append(time.perf_counter() - start)
    faces = poly.GetNumberOfCells()
    set_sequential(False)
    options = MeshOptions(min_component_mm3=100.0)
    runs = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        meshes = mesh_label_map(labels, volume.ijk_to_lps, values, options)
        runs.append(time.perf_counter() - start)
    shared = next(iter(meshes.values())).provenance["timing_shared_s"]
    n_vox = labels.size
    gain = statistics.median(nets["Sequential"]) / statistics.median(nets["STDThread"])
    lines = [
        f"### Meshing: LIDC-IDRI-0314 {labels.shape[0]} x {labels.shape[1]} x {labels.shape[2]}, "
        f"5 threshold segments ({dt.date.today().isoformat()})",
        "",
        f"Machine: {machine()}. Median of {args.repeats} runs.",
        "",
        "| step | backend | median s | voxels/s |",
        "|---|---|---|---|",
    ]
    for backend, times in nets.items():
        med = statistics.median(times)
        lines.append(
            f"| Surface Nets, 5 labels ({faces} triangles) | {backend} | {med:.2f} | {n_vox / med:.3g} |"
        )
    med = statistics.median(runs)
    lines += [
        f"| full pipeline (fix + extract + smooth + clean + decimate + repair + check) | STDThread | "
        f"{med:.2f} | {n_vox / med:.3g} |",
        "",
        f"Threading gain of Surface Nets: {gain:.2f}x. "
        f"In the last pipeline run: topology fix {shared['topology_s']:.2f} s, Surface Nets + smoothing "
        f"{shared['surface_nets_and_smoothing_s']:.2f} s.",
        "",
        "| segment | label mL | mesh mL | extracted tri. | final tri. | per-segment s | decimation |",
        "|---|---|---|---|---|---|---|",
    ]
    for value, mesh in meshes.items():
        p = mesh.provenance
        lines.append(
            f"| {NAMES[value]} | {p['label_volume_mm3'] / 1000:.1f} | {mesh.volume_ml():.1f} | "
            f"{p['triangles']['extracted']} | {p['triangles']['final']} | {p['seconds']:.2f} | "
            f"{p['decimation']['result']} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.record:
        doc = REPO / "docs" / "benchmarks.md"
        with doc.open("a") as f:
            f.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
