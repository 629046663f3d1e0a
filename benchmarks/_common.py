"""What every benchmark script shares: the machine line and recording into docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
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
