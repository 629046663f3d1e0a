"""Time the one-click twin on the 275-slice LIDC CT against SimpleITK's bare
threshold + connected components (+ relabel) on the same volume, in one run.

    .venv/bin/python benchmarks/one_click_twin.py [--repeats 3] [--record] [--accuracy]

Aim (issue 3): the whole twin (segments + meshes) of that CT in under 5 s on 2 cores.
Segments and meshes are timed separately and together. ``--accuracy`` prints the Dice /
surface-distance tables used in docs/one-click-twin.md (sample case, TotalSegmentator DICOM
and aorta crop, LIDC).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")  # VTK filters multi-threaded

from _common import DATA, LIDC, REPO, benchmark_parser, lidc_missing, machine, record

sys.path.insert(0, str(REPO))


def bare_simpleitk(volume: Any) -> float:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(volume.voxels)
    start = time.perf_counter()
    mask = sitk.BinaryThreshold(image, 200, 3071)
    sitk.RelabelComponent(sitk.ConnectedComponent(mask), sortByObjectSize=True)
    return time.perf_counter() - start


def benchmark(repeats: int) -> str:
    from surgtwin.core.importer import load_volume
    from surgtwin.core.mesh import extract_meshes
    from surgtwin.core.segmentation.one_click import one_click_twin, to_segmentation

    volume, _ = load_volume(LIDC)
    twin_s, mesh_s, bare_s, stages = [], [], [], []
    for _ in range(repeats):  # alternate, so both see the same machine state
        start = time.perf_counter()
        result = one_click_twin(volume)
        twin_s.append(time.perf_counter() - start)
        stages.append(result.timings_s)
        segmentation = to_segmentation(result, volume)
        start = time.perf_counter()
        extract_meshes(segmentation)
        mesh_s.append(time.perf_counter() - start)
        bare_s.append(bare_simpleitk(volume))
    twin, bare = statistics.median(twin_s), statistics.median(bare_s)
    mesh = statistics.median(mesh_s)
    whole = twin + mesh
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
        f"| meshes (extract_meshes) | {mesh:.2f} |",
        f"| whole twin: segments + meshes | {whole:.2f} |",
        f"| SimpleITK BinaryThreshold + ConnectedComponent + RelabelComponent | {bare:.2f} |",
        "",
        f"Twin / bare SimpleITK = {twin / bare:.1f}x. Skipped: {json.dumps(result.skipped)}.",
        f"Aim: whole twin < 5 s on 2 cores -> {whole:.2f} s, {'met' if whole < 5 else 'NOT met'}.",
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
    parser = benchmark_parser(__doc__)
    parser.add_argument("--accuracy", action="store_true", help="also print the accuracy tables")
    args = parser.parse_args()
    if lidc_missing():
        return 1
    text = benchmark(args.repeats)
    print(text)
    if args.accuracy:
        print(accuracy())
    if args.record:
        record(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
