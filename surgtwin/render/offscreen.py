"""Can this machine render off-screen, and how? (EGL, OSMesa, or an X server such as Xvfb.)

VTK wheels pick their OpenGL window at run time: X (GLX) when ``DISPLAY`` is set, else
EGL, else OSMesa; ``VTK_DEFAULT_OPENGL_WINDOW`` forces one. A failing OpenGL start can
abort a process, so each candidate is tried in a short child process first.
:func:`ensure_offscreen` is for entry points and test sessions; importing this module
changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from surgtwin.render.errors import RenderError

logger = logging.getLogger(__name__)

XVFB_SCREEN = "1280x1024x24"
PROBE_TIMEOUT_S = 60.0
XVFB_START_TIMEOUT_S = 15.0

_PROBE = """
import json, vtkmodules.vtkRenderingOpenGL2
from vtkmodules.vtkRenderingCore import vtkRenderWindow, vtkRenderer, vtkWindowToImageFilter
w = vtkRenderWindow(); w.SetOffScreenRendering(1); w.SetSize(8, 8)
r = vtkRenderer(); r.SetBackground(1.0, 0.0, 0.0); w.AddRenderer(r); w.Render()
f = vtkWindowToImageFilter(); f.SetInput(w); f.SetInputBufferTypeToRGB(); f.ReadFrontBufferOff(); f.Update()
px = f.GetOutput().GetPointData().GetScalars().GetTuple3(0)
print("PROBE" + json.dumps({"window": w.GetClassName(), "pixel": list(px)}))
w.Finalize()
"""


@dataclass(frozen=True)
class OffscreenStatus:
    ok: bool
    window_class: str  # vtkEGLRenderWindow, vtkOSMesaRenderWindow, vtkXOpenGLRenderWindow, ""
    environment: dict[str, str]  # the variables that made it work (DISPLAY, VTK_DEFAULT_OPENGL_WINDOW)
    detail: str = ""


def probe_offscreen(
    overrides: Mapping[str, str] | None = None, timeout_s: float = PROBE_TIMEOUT_S
) -> OffscreenStatus:
    """Render one red frame in a child process with ``overrides`` added to the environment
    (an empty value removes the variable); ok when the pixel read back is red."""
    env = dict(os.environ)
    for key, value in (overrides or {}).items():
        if value:
            env[key] = value
        else:
            env.pop(key, None)
    try:
        result = subprocess.run(
            [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return OffscreenStatus(False, "", dict(overrides or {}), f"no frame within {timeout_s:.0f} s")
    for line in result.stdout.splitlines():
        if line.startswith("PROBE"):
            found = json.loads(line[5:])
            ok = found["pixel"][0] > 200 and found["pixel"][1] < 50
            detail = "" if ok else f"read back {found['pixel']} instead of red"
            return OffscreenStatus(ok, found["window"], dict(overrides or {}), detail)
    tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
    return OffscreenStatus(False, "", dict(overrides or {}), f"exit {result.returncode}: " + " | ".join(tail))


@dataclass
class XvfbServer:
    """A private Xvfb; ``display`` like ":93". Stop it with :meth:`stop` (or use ``with``)."""

    process: subprocess.Popen[bytes]
    display: str
    log: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def __enter__(self) -> XvfbServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_xvfb(screen: str = XVFB_SCREEN, timeout_s: float = XVFB_START_TIMEOUT_S) -> XvfbServer:
    """Start ``Xvfb`` on a free display number (it picks one and reports it on ``-displayfd``)."""
    exe = shutil.which("Xvfb")
    if exe is None:
        raise RenderError("Xvfb is not installed (apt package 'xvfb'; see installers/system-packages.sh)")
    read_fd, write_fd = os.pipe()
    try:
        process = subprocess.Popen(
            [exe, "-displayfd", str(write_fd), "-screen", "0", screen, "-nolisten", "tcp"],
            pass_fds=(write_fd,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    finally:
        os.close(write_fd)
    try:
        deadline = time.monotonic() + timeout_s
        text = b""
        while not text.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or process.poll() is not None:
                process.kill()
                raise RenderError(f"Xvfb did not start within {timeout_s:.0f} s (exit {process.poll()})")
            ready, _, _ = select.select([read_fd], [], [], remaining)
            if ready:
                chunk = os.read(read_fd, 64)
                if not chunk:
                    continue
                text += chunk
    finally:
        os.close(read_fd)
    display = ":" + text.decode().strip()
    logger.info("started Xvfb on %s (pid %d)", display, process.pid)
    return XvfbServer(process, display)


@dataclass
class OffscreenSetup:
    status: OffscreenStatus
    xvfb: XvfbServer | None
    tried: list[OffscreenStatus]

    def close(self) -> None:
        if self.xvfb is not None:
            self.xvfb.stop()


def ensure_offscreen(allow_xvfb: bool = True, prefer_xvfb: bool = False) -> OffscreenSetup:
    """Find a way to render off-screen and set it in ``os.environ`` for this process.

    Order: the X display already set (``DISPLAY``); EGL; OSMesa; a private Xvfb started
    here (``allow_xvfb``; first when ``prefer_xvfb``). Raises :class:`RenderError`
    listing every attempt when none works. Call :meth:`OffscreenSetup.close` at exit.
    """
    tried: list[OffscreenStatus] = []
    candidates: list[dict[str, str]] = []
    if os.environ.get("DISPLAY") and not prefer_xvfb:
        candidates.append({})
    if not prefer_xvfb:
        candidates += [
            {"VTK_DEFAULT_OPENGL_WINDOW": "vtkEGLRenderWindow", "DISPLAY": ""},
            {"VTK_DEFAULT_OPENGL_WINDOW": "vtkOSMesaRenderWindow", "DISPLAY": ""},
        ]
    for overrides in candidates:
        status = probe_offscreen(overrides)
        tried.append(status)
        if status.ok:
            _apply(overrides)
            return OffscreenSetup(status, None, tried)
    if allow_xvfb and shutil.which("Xvfb"):
        server = start_xvfb()
        overrides = {"DISPLAY": server.display, "VTK_DEFAULT_OPENGL_WINDOW": ""}
        status = probe_offscreen(overrides)
        tried.append(status)
        if status.ok:
            _apply(overrides)
            return OffscreenSetup(status, server, tried)
        server.stop()
    elif allow_xvfb:
        tried.append(OffscreenStatus(False, "", {}, "Xvfb is not installed"))
    lines = "; ".join(f"{s.environment or 'as is'}: {s.detail}" for s in tried)
    raise RenderError(f"no off-screen OpenGL here (tried {lines}); install Mesa EGL or Xvfb")


def _apply(overrides: Mapping[str, str]) -> None:
    for key, value in overrides.items():
        if value:
            os.environ[key] = value
        else:
            os.environ.pop(key, None)
