"""CT window/level presets (all of them, in one place) and grey-level mapping."""

from __future__ import annotations

import numpy as np

from surgtwin.render.errors import RenderError

# name -> (window width, window level) in Hounsfield units.
CT_WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "soft_tissue": (400.0, 40.0),
    "abdomen": (350.0, 50.0),
    "liver": (150.0, 30.0),
    "bone": (1800.0, 400.0),
    "lung": (1500.0, -600.0),
    "brain": (80.0, 40.0),
    "mediastinum": (350.0, 50.0),
}

WindowLevel = tuple[float, float] | str | None


def resolve_window_level(window_level: WindowLevel, values: np.ndarray | None = None) -> tuple[float, float]:
    """``(width, level)`` from a pair, a preset name, or ``None`` (1st..99th percentile of ``values``)."""
    if window_level is None:
        finite = values[np.isfinite(values)] if values is not None else np.empty(0)
        if finite.size == 0:
            return (1.0, 0.0)
        lo, hi = np.percentile(finite, [1.0, 99.0])
        return (max(float(hi - lo), 1e-6), float(lo + hi) / 2.0)
    if isinstance(window_level, str):
        try:
            return CT_WINDOW_PRESETS[window_level]
        except KeyError:
            known = ", ".join(CT_WINDOW_PRESETS)
            raise RenderError(f"unknown window preset {window_level!r} (presets: {known})") from None
    width, level = (float(window_level[0]), float(window_level[1]))
    if not np.isfinite(width) or not np.isfinite(level) or width <= 0:
        raise RenderError(f"window width must be a positive number, got {window_level!r}")
    return (width, level)


def apply_window(values: np.ndarray, width: float, level: float) -> np.ndarray:
    """Grey levels 0..1 (float32); NaN (outside the volume) stays NaN."""
    low = level - width / 2.0
    return np.clip((values.astype(np.float32) - np.float32(low)) / np.float32(width), 0.0, 1.0)
