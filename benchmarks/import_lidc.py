"""Import the 275-slice LIDC CT with surgtwin and with SimpleITK's ImageSeriesReader.

Both run in the same invocation, alternating, each in a fresh subprocess so that the
peak resident memory (VmHWM, reset after imports) belongs to that import alone.
Prints a Markdown table; ``--record`` appends it to docs/benchmarks.md.

    .venv/bin/python benchmarks/import_lidc.py [--repeats 3] [--record]

Aim (issue 2): surgtwin no slower than SimpleITK; peak memory under 2x the volume.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import subprocess
import sys
from pathlib import Path

from _common import LIDC, benchmark_parser, lidc_missing, machine, record

CHILD = r"""
import json, sys, time
from pathlib import Path

def rss_kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])

which, folder = sys.argv[1], sys.argv[2]
import numpy as np
if which == "surgtwin":
    from surgtwin.core.importer import load_volume
else:
    import SimpleITK as sitk
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak-RSS high-water mark: count only the import itself
base = rss_kib("VmRSS:")
start = time.perf_counter()
if which == "surgtwin":
    volume, _ = load_volume(folder)
    voxels = volume.voxels
else:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
    voxels = sitk.GetArrayViewFromImage(reader.Execute())
seconds = time.perf_counter() - start
peak = rss_kib("VmHWM:") - base
print(json.dumps({"seconds": seconds, "peak_mib": peak / 1024, "volume_mib": voxels.nbytes / 2**20,
                  "shape": list(voxels.shape), "dtype": str(voxels.dtype)}))
"""


def run_once(which: str, folder: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, which, str(folder)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def uncompressed_copy(target: Path) -> Path:
    """The same slices decompressed to Explicit VR Little Endian (the codec-neutral case)."""
    import pydicom

    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(LIDC.iterdir()):
        ds = pydicom.dcmread(path)
        ds.decompress()
        ds.save_as(target / path.name, enforce_file_format=True)
    return target


def main() -> int:
    parser = benchmark_parser(__doc__)
    args = parser.parse_args()
    if lidc_missing():
        return 1
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        plain = uncompressed_copy(Path(tmp) / "lidc_uncompressed")
        text = "\n".join(
            measure(folder, label, args.repeats)
            for folder, label in [
                (LIDC, "RLE Lossless, as stored"),
                (plain, "decompressed copy, Explicit VR LE"),
            ]
        )
    print(text)
    if args.record:
        record(text)
    return 0


def measure(folder: Path, label: str, repeats: int) -> str:
    for path in folder.iterdir():  # warm the page cache so both read from memory
        path.read_bytes()
    results: dict[str, list[dict]] = {"surgtwin": [], "simpleitk": []}
    for _ in range(repeats):
        for which in results:
            results[which].append(run_once(which, folder))
    med = {w: statistics.median(r["seconds"] for r in rs) for w, rs in results.items()}
    peak = {w: max(r["peak_mib"] for r in rs) for w, rs in results.items()}
    vol = results["surgtwin"][0]["volume_mib"]
    import pydicom
    import SimpleITK

    lines = [
        f"### DICOM import: LIDC-IDRI-0314, 275 x 512 x 512 CT, {label} ({dt.date.today().isoformat()})",
        "",
        f"Machine: {machine()}. pydicom {pydicom.__version__}, "
        f"SimpleITK {SimpleITK.Version_VersionString()}.",
        f"Median of {repeats} runs each, alternating, page cache warm; peak = resident-memory "
        "high-water mark of the import alone (fresh process).",
        "",
        "| reader | median s | peak MiB | peak / volume |",
        "|---|---|---|---|",
    ]
    for which in results:
        lines.append(f"| {which} | {med[which]:.2f} | {peak[which]:.0f} | {peak[which] / vol:.2f} |")
    lines += [
        "",
        f"Volume {vol:.0f} MiB (int16). Speed ratio SimpleITK / surgtwin = "
        f"{med['simpleitk'] / med['surgtwin']:.2f} (above 1: surgtwin faster). "
        f"Aims: ratio >= 1 -> {'met' if med['simpleitk'] >= med['surgtwin'] else 'NOT met'}; "
        f"peak < 2x volume -> {'met' if peak['surgtwin'] < 2 * vol else 'NOT met'}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
