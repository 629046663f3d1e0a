"""Regenerate the sample case: ``python -m surgtwin.core.sample [OUT_DIR]``."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from surgtwin.core.sample import REPO_SAMPLE_DIR, generate_sample


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m surgtwin.core.sample",
        description="Write the synthetic sample CT case (DICOM series + ground truth).",
    )
    parser.add_argument(
        "out_dir",
        nargs="?",
        type=Path,
        default=REPO_SAMPLE_DIR,
        help=f"output folder (default: {REPO_SAMPLE_DIR})",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    generate_sample(args.out_dir)
    files = sorted(p for p in args.out_dir.rglob("*") if p.is_file())
    size_mb = sum(p.stat().st_size for p in files) / 1e6
    print(f"{len(files)} files, {size_mb:.2f} MB, {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
