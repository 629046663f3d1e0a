"""What every benchmark script shares: the machine line and recording into docs/benchmarks.md."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
LIDC = DATA / "lidc0314_chest_ct" / "dicom"
DOC = REPO / "docs" / "benchmarks.md"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def record(text: str) -> None:
    """Append a result block to docs/benchmarks.md (newest last)."""
    if not DOC.exists():
        DOC.write_text("# Benchmarks\n\nMeasured by the scripts in `benchmarks/`; newest last.\n\n")
    with DOC.open("a") as f:
        f.write(text + "\n")


def report(lines: list[str], keep: bool) -> None:
    """Print the result block (``lines``) and, when ``keep`` (--record), append it to
    docs/benchmarks.md."""
    text = "\n".join(lines)
    print(text)
    if keep:
        record(text)


def benchmark_parser(doc: str | None) -> argparse.ArgumentParser:
    """The options every benchmark takes: --repeats and --record."""
    p = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--record", action="store_true", help="append the result to docs/benchmarks.md")
    return p


def lidc_missing() -> bool:
    """True (with a message) when the LIDC series these benchmarks use is not there."""
    if LIDC.is_dir():
        return False
    print(f"LIDC series not found at {LIDC}", file=sys.stderr)
    return True
