"""Pixel checks shared by the render tests."""

from __future__ import annotations

import colorsys

import numpy as np


def hue_saturation(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue (degrees), saturation and value (0..1) of every pixel."""
    x = rgb.astype(np.float64) / 255.0
    mx, mn = x.max(axis=-1), x.min(axis=-1)
    delta = mx - mn
    safe = np.where(delta > 0, delta, 1.0)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    hue = np.where(mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4))
    hue = np.where(delta > 0, hue * 60.0, 0.0)
    sat = np.where(mx > 0, delta / np.where(mx > 0, mx, 1.0), 0.0)
    return hue, sat, mx


def color_pixels(rgb: np.ndarray, color: tuple[float, float, float], hue_tol: float = 5.0) -> np.ndarray:
    """Pixels whose hue and saturation are those of ``color`` under shading (lit, not black)."""
    h0, s0, _ = colorsys.rgb_to_hsv(*color)
    hue, sat, val = hue_saturation(rgb)
    dh = np.abs((hue - h0 * 360.0 + 180.0) % 360.0 - 180.0)
    return (dh <= hue_tol) & (np.abs(sat - s0) <= 0.12) & (val > 0.2)


def background_fraction(rgb: np.ndarray, background: tuple[float, float, float]) -> float:
    bg = np.rint(np.array(background) * 255.0)
    return float(np.all(np.abs(rgb.astype(np.int16) - bg) <= 2, axis=-1).mean())
