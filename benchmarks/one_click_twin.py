"""Time the one-click twin on the 275-slice LIDC CT against SimpleITK's bare
threshold + connected components (+ relabel) on the same volume, in one run.

    .venv/bin/python benchmarks/one_click_twin.py [--repeats 3] [--record] [--accuracy]

Aim (issue 3): the whole twin (segments + meshes) of that CT in under 5 s on 2 cores.
Meshes are another module's work: if ``surgtwin.core.mesh.extract.extract_meshes``
exists its time is added (MESH HOOK below); otherwise only segments are timed and the
output says so. ``--accuracy`` prints the Dice / surface-distance tables used in
docs/one-click-twin.md (sample case, TotalSegmentator DICOM and aorta crop, LIDC).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")  # VTK filters multi-threaded

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
LIDC = DATA / "lidc0314_chest_ct" / "dicom"
NO_MESH = "not measured (no surgtwin.core.mesh.extract yet)"


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


def mesh_hook() -> Callable[..., Any] | None:
    """MESH HOOK: the meshing step, once surgtwin.core.mesh.extract provides it."""
    try:
        from surgtwin.core.mesh.extract import extract_meshes
    except ImportError:
        return None
    return extract_meshes


def bare_simpleitk(volume: Any) -> float:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(volume.voxels)
    start = time.perf_counter()
    mask = sitk.BinaryThreshold(image, 200, 3071)
    sitk.RelabelComponent(sitk.ConnectedComponent(mask), sortByObjectSize=True)
    return time.perf_counter() - start


def benchmark(repeats: int) -> str:
    from surgtwin.core.importer import load_volume
    from surgtwin.core.segmentation.one_click import one_click_twin, to_segmentation

    volume, _ = load_volume(LIDC)
    extract = mesh_hook()
    twin_s, mesh_s, bare_s, stages = [], [], [], []
    for _ in range(repeats):  # alternate, so both see the same machine state
        start = time.perf_counter()
        result = one_click_twin(volume)
        twin_s.append(time.perf_counter() - start)
        stages.append(result.timings_s)
        if extract is not None:
            segmentation = to_segmentation(result, volume)
            start = time.perf_counter()
            extract(segmentation)
            mesh_s.append(time.perf_counter() - start)
        bare_s.append(bare_simpleitk(volume))
    twin, bare = statistics.median(twin_s), statistics.median(bare_s)
    mesh = statistics.median(mesh_s) if mesh_s else None
    whole = twin + (mesh or 0.0)
    stage = {k: statistics.median(s[k] for s in stages) for k in stages[0]}
    import SimpleITK

    lines = [
        f"### One-click twin: LIDC-IDRI-0314, 275 x 512 x 512 CT ({dt.date.today().isoformat()})",
        "",
        f"Machine: {machine()}. SimpleITK {SimpleITK.Version_VersionString()}. Median of {repeats} runs, "
        "alternating; the volume is loaded once before timing.",
        "",
        "| step | median s |",
        "|---|---|",
        f"| one-click twin, segments ({', '.join(result.masks)}) | {twin:.2f} |",
        *(f"| &nbsp;&nbsp;{k} | {v:.2f} |" for k, v in stage.items()),
        f"| meshes (surgtwin.core.mesh.extract) | {f'{mesh:.2f}' if mesh is not None else NO_MESH} |",
        f"| SimpleITK BinaryThreshold + ConnectedComponent + RelabelComponent | {bare:.2f} |",
        "",
        f"Twin / bare SimpleITK = {twin / bare:.1f}x. Skipped: {json.dumps(result.skipped)}.",
        "Aim: whole twin < 5 s on 2 cores -> "
        + (
            f"{whole:.2f} s, {'met' if whole < 5 else 'NOT met'}."
            if mesh is not None
            else f"segments alone {twin:.2f} s ({'within' if twin < 5 else 'over'} 5 s); "
            "meshes not yet measured."
        ),
        "",
    ]
    return "\n".join(lines)


def accuracy() -> str:
    from surgtwin.core.segmentation import one_click_eval as ev

    cases = [
        ("Sample case (synthetic, ground truth)", lambda: ev.evaluate_sample(REPO / "sample_dicom")),
        (
            "TotalSegmentator DICOM, 20 slices (reference: TotalSegmentator 'total')",
            lambda: ev.evaluate_totalseg_dicom(DATA / "totalseg_example"),
        ),
        (
            "TotalSegmentator aorta_report crop, arterial phase (reference: its artery masks)",
            lambda: ev.evaluate_aorta_report(DATA / "totalseg_example" / "aorta_report"),
        ),
        ("LIDC-IDRI-0314, no contrast (no reference labels)", lambda: ev.evaluate_lidc(LIDC)),
    ]
    lines = [f"### One-click twin accuracy ({dt.date.today().isoformat()})", ""]
    for title, run in cases:
        report = run()
        lines += [f"**{title}** — twin {report['seconds']:.2f} s", ""]
        if report["scores"]:
            lines += [
                "| twin segment vs reference | Dice | mean surface distance mm | twin mL | reference mL |"
            ]
            lines += ["|---|---|---|---|---|"]
            for name, s in report["scores"].items():
                lines.append(
                    f"| {name} | {s['dice']:.3f} | {s['msd_mm']:.2f} | "
                    f"{s['twin_ml']:.0f} | {s['reference_ml']:.0f} |"
                )
            lines.append("")
        if "reference_recall" in report:
            lines += [
                "Share of the reference arteries inside the twin's vessels: "
                f"{report['reference_recall']:.3f}.",
                "",
            ]
        lines += [
            f"Volumes (mL): {json.dumps(report['volumes_ml'])}.",
            f"Skipped: {json.dumps(report['skipped']) if report['skipped'] else 'none'}.",
            f"Contrast: {report['measured']['contrast']}.",
            "",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="append the result to docs/benchmarks.md")
    parser.add_argument("--accuracy", action="store_true", help="also print the accuracy tables")
    args = parser.parse_args()
    if not LIDC.is_dir():
        print(f"LIDC series not found at {LIDC}", file=sys.stderr)
        return 1
    text = benchmark(args.repeats)
    print(text)
    if args.accuracy:
        print(accuracy())
    if args.record:
        doc = REPO / "docs" / "benchmarks.md"
        if not doc.exists():
            doc.write_text("# Benchmarks\n\nMeasured by the scripts in `benchmarks/`; newest last.\n\n")
        with doc.open("a") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
