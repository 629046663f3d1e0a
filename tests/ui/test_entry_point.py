"""``surgtwin``: the app for no arguments or a path, the command line for subcommands."""

from __future__ import annotations

import subprocess
import sys

import pytest

from surgtwin.app import main, wants_cli


@pytest.mark.parametrize(
    ("argv", "cli"),
    [
        ([], False),
        (["sample_dicom"], False),
        (["case.stwin"], False),
        (["info", "x"], True),
        (["build", "x", "-o", "y"], True),
        (["--help"], True),
        (["--version"], True),
        (["-v", "show", "c.stwin"], True),
        (["sample_dicom", "--twin", "--screenshot", "a.png", "--quit"], False),
        (["--twin"], False),
    ],
)
def test_routing(argv, cli):
    assert wants_cli(argv) is cli


def test_cli_subcommand_loads_no_qt(sample_dicom):
    code = (
        "import sys; from surgtwin.app import main\n"
        f"rc = main(['info', {str(sample_dicom / 'dicom')!r}])\n"
        "top = ('PySide6', 'pyvistaqt')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in top or m.startswith('surgtwin.ui')]\n"
        "print('BAD', bad); sys.exit(rc or (3 if bad else 0))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BAD []" in result.stdout


def test_python_m_surgtwin_uses_the_entry_point():
    result = subprocess.run([sys.executable, "-m", "surgtwin", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("surgtwin ")


def test_missing_path_is_a_usage_error(tmp_path, capsys):
    assert main([str(tmp_path / "nothing-here")]) == 2
    assert "neither a file or folder" in capsys.readouterr().err
