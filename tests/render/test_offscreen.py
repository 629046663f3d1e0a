"""What off-screen OpenGL works here, and the Xvfb fallback CI relies on."""

from __future__ import annotations

import os
import shutil

import pytest

from surgtwin.render.offscreen import probe_offscreen, start_xvfb


def test_the_chosen_backend_renders(offscreen: object) -> None:
    status = probe_offscreen()  # with the environment the session set up
    assert status.ok, status.detail
    assert status.window_class in {"vtkEGLRenderWindow", "vtkOSMesaRenderWindow", "vtkXOpenGLRenderWindow"}


def test_a_private_xvfb_renders() -> None:
    if shutil.which("Xvfb") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have Xvfb installed (installers/system-packages.sh)")
        pytest.skip("Xvfb is not installed on this machine")
    with start_xvfb() as server:
        assert server.display.startswith(":")
        status = probe_offscreen({"DISPLAY": server.display, "VTK_DEFAULT_OPENGL_WINDOW": ""})
    assert status.ok, status.detail
    assert status.window_class == "vtkXOpenGLRenderWindow"
    assert server.process.poll() is not None  # stopped on leaving the block
