"""Run `surgtwin` as a user does (a subprocess in the repository), for the CLI tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_dicom"
TRUTH = SAMPLE / "ground_truth"


def run(*args: str, rc: int = 0) -> subprocess.CompletedProcess[str]:
    """``python -m surgtwin ARGS``; asserts the exit code and that no traceback was printed."""
    result = subprocess.run(
        [sys.executable, "-m", "surgtwin", *args], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    assert result.returncode == rc, result.stderr
    assert "Traceback" not in result.stderr
    return result


def build_truth_case(case: Path) -> Path:
    """The sample CT with its ground-truth labels (liver, bone, aorta, iliacs, ...) as a case."""
    labels, names = str(TRUTH / "labels.nii.gz"), str(TRUTH / "labels.json")
    run("build", "sample_dicom", "--labels", labels, "--names", names, "-o", str(case))
    return case
