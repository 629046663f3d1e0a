"""Decimation in a helper process (what the desktop app uses): same result as in-process,
and the helper does not outlive its parent, even one killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from surgtwin.core.mesh import decimate as dec


def _sphere(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkFiltersSources import vtkSphereSource

    source = vtkSphereSource()
    source.SetThetaResolution(n)
    source.SetPhiResolution(n)
    source.SetRadius(10.0)
    source.Update()
    poly = source.GetOutput()
    points = vtk_to_numpy(poly.GetPoints().GetData()).astype(np.float64)
    faces = vtk_to_numpy(poly.GetPolys().GetConnectivityArray()).reshape(-1, 3).astype(np.int64)
    return points, faces


def test_helper_process_gives_the_in_process_result() -> None:
    points, faces = _sphere()
    local = dec.decimate(points, faces, 0.5)
    dec.use_helper_process(True)
    try:
        helped = dec.decimate(points, faces, 0.5)
    finally:
        dec.use_helper_process(False)
    assert np.array_equal(local[0], helped[0]) and np.array_equal(local[1], helped[1])
    assert len(helped[1]) < 0.6 * len(faces)


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to find the helper")
def test_helper_exits_when_its_parent_is_killed() -> None:
    code = textwrap.dedent(
        """
        import os, sys, time
        from surgtwin.core.mesh import decimate as dec
        if __name__ == "__main__":
            dec.use_helper_process(True)
            time.sleep(3)  # the helper has started
            print(*[p.pid for p in dec._helper._processes.values()], flush=True)
            time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        helpers = [int(p) for p in parent.stdout.readline().split()]
        assert helpers, "no helper process started"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in helpers):
            time.sleep(0.2)
        alive = [p for p in helpers if os.path.exists(f"/proc/{p}") and "Z" not in _state(p)]
        assert not alive, f"helper processes {alive} outlived their killed parent"
    finally:
        parent.kill()


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0]
    except OSError:
        return "gone"
