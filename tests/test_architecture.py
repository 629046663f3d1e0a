"""The layer rule of docs/architecture.md, checked by machine."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is part of the test extras"
    result = subprocess.run(
        [exe, "--config", str(REPO / "pyproject.toml")], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_core_loads_no_qt_gl_or_rendering() -> None:
    """Importing every core module pulls in no Qt, OpenGL, VTK rendering or XR."""
    code = (
        "import importlib, pkgutil, sys, surgtwin.core as c\n"
        "for m in pkgutil.walk_packages(c.__path__, 'surgtwin.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "top = ('PySide6', 'pyvistaqt', 'pyvista', 'xr', 'OpenGL')\n"
        "bad = [n for n in sys.modules if n.split('.')[0] in top\n"
        "       or n.startswith(('vtkmodules.vtkRendering', 'vtkmodules.vtkInteraction'))]\n"
        "print(bad or '')\n"
        "print(len([n for n in sys.modules if n.startswith('surgtwin.core')]))\n"
        "sys.exit(1 if bad else 0)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "", "DISPLAY": ""}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert int(result.stdout.strip().splitlines()[-1]) > 10  # the walk really imported the core


def test_ruff_lint_is_clean() -> None:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert exe, "ruff is part of the test extras"
    result = subprocess.run(
        [exe, "check", "surgtwin", "tests", "benchmarks"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_on_the_core() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "surgtwin/core"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
