"""Default segment colours (RGB 0..1), close to 3D Slicer's generic anatomy colours."""

from __future__ import annotations

import zlib

Color = tuple[float, float, float]

_NAMED: dict[str, Color] = {
    "skin": (0.99, 0.82, 0.72),
    "fat": (0.90, 0.85, 0.50),
    "muscle": (0.75, 0.38, 0.33),
    "bone": (0.95, 0.92, 0.84),
    "lungs": (0.77, 0.85, 0.96),
    "lung": (0.77, 0.85, 0.96),
    "airways": (0.55, 0.80, 0.96),
    "vessels": (0.85, 0.15, 0.15),
    "aorta": (0.88, 0.20, 0.18),
    "artery": (0.88, 0.20, 0.18),
    "vein": (0.25, 0.40, 0.85),
    "vena_cava": (0.25, 0.40, 0.85),
    "portal_vein": (0.30, 0.45, 0.80),
    "liver": (0.86, 0.55, 0.40),
    "liver_tumour": (0.60, 0.85, 0.35),
    "tumour": (0.60, 0.85, 0.35),
    "kidney": (0.73, 0.35, 0.30),
    "spleen": (0.62, 0.30, 0.40),
    "heart": (0.80, 0.25, 0.25),
    "brain": (0.98, 0.85, 0.78),
}


def default_color(name: str) -> Color:
    """A colour for a segment name: a known anatomy colour, else a stable pseudo-random one."""
    key = name.lower()
    if key in _NAMED:
        return _NAMED[key]
    for known, color in _NAMED.items():
        if known in key:
            return color
    h = zlib.crc32(key.encode())
    return (
        0.3 + 0.6 * ((h & 0xFF) / 255),
        0.3 + 0.6 * (((h >> 8) & 0xFF) / 255),
        0.3 + 0.6 * (((h >> 16) & 0xFF) / 255),
    )
