"""A tiny 5x7 bitmap font for orientation letters, drawn straight into RGB arrays."""

from __future__ import annotations

import numpy as np

_FONT = {
    "L": ["X....", "X....", "X....", "X....", "X....", "X....", "XXXXX"],
    "R": ["XXXX.", "X...X", "X...X", "XXXX.", "X.X..", "X..X.", "X...X"],
    "A": [".XXX.", "X...X", "X...X", "XXXXX", "X...X", "X...X", "X...X"],
    "P": ["XXXX.", "X...X", "X...X", "XXXX.", "X....", "X....", "X...."],
    "S": [".XXXX", "X....", "X....", ".XXX.", "....X", "....X", "XXXX."],
    "I": ["XXXXX", "..X..", "..X..", "..X..", "..X..", "..X..", "XXXXX"],
}
GLYPHS = {ch: np.array([[c == "X" for c in row] for row in rows]) for ch, rows in _FONT.items()}
GLYPH_WIDTH, GLYPH_HEIGHT = 5, 7


def text_mask(text: str, scale: int = 1) -> np.ndarray:
    """Boolean mask of ``text`` (letters L R A P S I), one blank column between letters."""
    parts: list[np.ndarray] = []
    for n, ch in enumerate(text):
        if n:
            parts.append(np.zeros((GLYPH_HEIGHT, 1), dtype=bool))
        parts.append(GLYPHS[ch])
    mask = np.concatenate(parts, axis=1) if parts else np.zeros((GLYPH_HEIGHT, 0), dtype=bool)
    return np.kron(mask, np.ones((scale, scale), dtype=bool)).astype(bool)


def draw_text(
    rgb: np.ndarray,
    text: str,
    anchor: str,
    color: tuple[int, int, int] = (255, 230, 60),
    scale: int = 1,
    margin: int = 3,
) -> tuple[int, int, int, int]:
    """Draw ``text`` at the middle of edge ``anchor`` (left/right/top/bottom) with a dark shadow.

    Returns the (row0, col0, row1, col1) box the letters cover (shadow excluded).
    """
    mask = text_mask(text, scale)
    h, w = mask.shape
    rows, cols = rgb.shape[:2]
    if anchor == "left":
        r0, c0 = (rows - h) // 2, margin
    elif anchor == "right":
        r0, c0 = (rows - h) // 2, cols - w - margin - 1
    elif anchor == "top":
        r0, c0 = margin, (cols - w) // 2
    elif anchor == "bottom":
        r0, c0 = rows - h - margin - 1, (cols - w) // 2
    else:
        raise ValueError(f"anchor must be left, right, top or bottom, not {anchor!r}")
    r0, c0 = max(r0, 0), max(c0, 0)
    h, w = min(h, rows - r0 - 1), min(w, cols - c0 - 1)
    if h <= 0 or w <= 0:
        return (r0, c0, r0, c0)
    mask = mask[:h, :w]
    rgb[r0 + 1 : r0 + 1 + h, c0 + 1 : c0 + 1 + w][mask] = (0, 0, 0)
    rgb[r0 : r0 + h, c0 : c0 + w][mask] = color
    return (r0, c0, r0 + h, c0 + w)
