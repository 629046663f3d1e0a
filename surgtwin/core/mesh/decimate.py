"""Decimation to a triangle budget with fast_simplification (quadric edge collapse).

Edge collapses can pinch thin parts into non-manifold edges or fold a tube flat. Each
result is checked; a failed or too lossy one is retried gentler (half the reduction,
lower aggressiveness), and after that the segment keeps its undecimated mesh. Every
attempt is recorded.
"""

from __future__ import annotations

from typing import Any

import fast_simplification
import numpy as np

from surgtwin.core.mesh.quality import MeshQuality, signed_volume_mm3
from surgtwin.core.mesh.repair import repair_mesh


def target_reduction(n_faces: int, budget: int | None, reduction: float | None) -> float:
    """Fraction of faces to remove: from a per-segment budget, a fraction, or both (the larger)."""
    wanted = 0.0
    if budget is not None and n_faces > budget:
        wanted = 1.0 - budget / n_faces
    if reduction is not None:
        wanted = max(wanted, reduction)
    return float(min(max(wanted, 0.0), 0.99))


def decimate(
    vertices: np.ndarray,
    faces: np.ndarray,
    reduction: float,
    aggressiveness: float = 7.0,
    max_volume_change_percent: float = 1.0,
    attempts: int = 3,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any], MeshQuality | None]:
    """Remove about ``reduction`` of the faces, keeping a closed manifold mesh.

    Returns the mesh, the record of attempts, and the check of the decimated mesh
    (None when the input came back unchanged)."""
    record: dict[str, Any] = {"requested_reduction": reduction, "attempts": []}
    if reduction <= 0.0 or len(faces) < 64:
        record["result"] = "not needed"
        return vertices, faces, record, None
    volume0 = signed_volume_mm3(vertices, faces)
    agg = aggressiveness
    for _ in range(attempts):
        v, f = fast_simplification.simplify(
            vertices, faces.astype(np.int32), target_reduction=reduction, agg=agg
        )
        v, f = np.asarray(v, dtype=np.float64), np.asarray(f, dtype=np.int64)
        v, f, repairs, quality = repair_mesh(v, f)
        change = 100.0 * (quality.volume_mm3 - volume0) / volume0 if volume0 else 0.0
        attempt = {
            "reduction": reduction,
            "aggressiveness": agg,
            "faces": int(len(f)),
            "volume_change_percent": round(change, 3),
            "repairs": repairs,
            "ok": quality.ok,
        }
        record["attempts"].append(attempt)
        if quality.ok and abs(change) <= max_volume_change_percent:
            record["result"] = "decimated"
            return v, f, record, quality
        reduction, agg = reduction / 2.0, max(agg - 2.0, 1.0)
    record["result"] = "skipped: every attempt broke the surface or its volume; kept undecimated"
    return vertices, faces, record, None
