"""Header indexing of every file in ../shared/data: serial against worker processes.

    .venv/bin/python benchmarks/index_headers.py [--repeats 3] [--record]

Decides ``PARALLEL_MIN_FILES`` in surgtwin/core/dicom/scan.py. Warm page cache.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import statistics
import sys
import time

from _common import DATA, benchmark_parser, machine, record


def main() -> int:
    parser = benchmark_parser(__doc__)
    args = parser.parse_args()
    scan_module = importlib.import_module("surgtwin.core.dicom.scan")
    files = sum(1 for p in DATA.rglob("*") if p.is_file())
    times: dict[str, list[float]] = {"serial": [], "parallel": []}
    for _ in range(args.repeats):
        for mode in times:
            scan_module.PARALLEL_MIN_FILES = 10**9 if mode == "serial" else 1
            start = time.perf_counter()
            inventory = scan_module.scan([DATA])
            times[mode].append(time.perf_counter() - start)
    med = {m: statistics.median(t) for m, t in times.items()}
    text = "\n".join(
        [
            f"### Header indexing: all of ../shared/data ({dt.date.today().isoformat()})",
            "",
            f"Machine: {machine()}. "
            f"{files} files, {len(inventory.series)} series; median of {args.repeats}, warm cache.",
            "",
            "| mode | median s |",
            "|---|---|",
            f"| serial | {med['serial']:.2f} |",
            f"| worker processes ({os.cpu_count()}) | {med['parallel']:.2f} |",
            "",
        ]
    )
    print(text)
    if args.record:
        record(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
