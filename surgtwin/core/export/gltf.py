"""glTF 2.0 binary (GLB): one node per segment with its name and a coloured material.

glTF fixes its own frame (metres, +Y up, +Z forward, right-handed), and VR viewers rely
on it, so vertices are converted from patient LPS millimetres:
x_gltf = L / 1000 (patient left), y_gltf = S / 1000 (up), z_gltf = -P / 1000 (anterior,
the patient faces the viewer). It is a proper rotation (no mirroring) plus scaling, so
outward triangles stay outward. The 4x4 matrix and its inverse are stored in
``asset.extras`` (and each node's extras) so the original coordinates can be recovered.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from surgtwin.core.export.common import GENERATOR, vertex_normals, write_atomic
from surgtwin.core.mesh.surface import SurfaceMesh

LPS_MM_TO_GLTF = np.array(
    [
        [0.001, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.001, 0.0],
        [0.0, -0.001, 0.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)
GLTF_TO_LPS_MM = np.linalg.inv(LPS_MM_TO_GLTF)

_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_FLOAT, _UNSIGNED_INT = 5126, 5125
_TRIANGLES = 4


def srgb_to_linear(c: float) -> float:
    """glTF's baseColorFactor is linear; segment colours are display (sRGB) colours."""
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def frame_extras() -> dict[str, Any]:
    return {
        "source_frame": "LPS",
        "source_units": "mm",
        "lps_mm_to_gltf": LPS_MM_TO_GLTF.tolist(),  # row-major: p_gltf = M @ [L, P, S, 1]
        "gltf_to_lps_mm": GLTF_TO_LPS_MM.tolist(),
        "axes": "x = patient left, y = superior, z = anterior; metres",
    }


class _Buffer:
    def __init__(self) -> None:
        self.data = bytearray()
        self.views: list[dict[str, Any]] = []
        self.accessors: list[dict[str, Any]] = []

    def add(self, array: np.ndarray, component: int, kind: str, target: int, bounds: bool = False) -> int:
        offset = len(self.data)
        self.data += array.tobytes()
        self.data += b"\x00" * (-len(self.data) % 4)  # accessors must be 4-byte aligned
        self.views.append({"buffer": 0, "byteOffset": offset, "byteLength": array.nbytes, "target": target})
        accessor: dict[str, Any] = {
            "bufferView": len(self.views) - 1,
            "componentType": component,
            "count": int(array.shape[0]) if kind == "VEC3" else int(array.size),
            "type": kind,
        }
        if bounds:  # required for POSITION
            accessor["min"] = array.min(axis=0).tolist()
            accessor["max"] = array.max(axis=0).tolist()
        self.accessors.append(accessor)
        return len(self.accessors) - 1


def glb_bytes(meshes: list[SurfaceMesh], scene_name: str = "segments") -> bytes:
    buffer = _Buffer()
    nodes, gltf_meshes, materials = [], [], []
    for index, mesh in enumerate(meshes):
        positions = mesh.vertices @ LPS_MM_TO_GLTF[:3, :3].T
        normals = vertex_normals(positions, mesh.faces)
        primitive = {
            "attributes": {
                "POSITION": buffer.add(positions.astype("<f4"), _FLOAT, "VEC3", _ARRAY_BUFFER, bounds=True),
                "NORMAL": buffer.add(normals.astype("<f4"), _FLOAT, "VEC3", _ARRAY_BUFFER),
            },
            "indices": buffer.add(
                mesh.faces.astype("<u4").ravel(), _UNSIGNED_INT, "SCALAR", _ELEMENT_ARRAY_BUFFER
            ),
            "material": index,
            "mode": _TRIANGLES,
        }
        srgb = [float(c) for c in mesh.color]
        materials.append(
            {
                "name": mesh.name,
                "pbrMetallicRoughness": {
                    "baseColorFactor": [srgb_to_linear(c) for c in srgb] + [1.0],
                    "metallicFactor": 0.0,
                    "roughnessFactor": 0.6,
                },
                "extras": {"color_srgb": srgb},
            }
        )
        gltf_meshes.append({"name": mesh.name, "primitives": [primitive]})
        extras: dict[str, Any] = {"segment": mesh.name, "color_srgb": srgb, **frame_extras()}
        if mesh.segment_label is not None:
            extras["label"] = int(mesh.segment_label)
        nodes.append({"name": mesh.name, "mesh": index, "extras": extras})
    document = {
        "asset": {"version": "2.0", "generator": GENERATOR, "extras": frame_extras()},
        "scene": 0,
        "scenes": [{"name": scene_name, "nodes": list(range(len(nodes)))}],
        "nodes": nodes,
        "meshes": gltf_meshes,
        "materials": materials,
        "accessors": buffer.accessors,
        "bufferViews": buffer.views,
        "buffers": [{"byteLength": len(buffer.data)}],
    }
    text = json.dumps(document, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)  # chunks are 4-byte aligned; JSON pads with spaces
    binary = bytes(buffer.data)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return b"".join(
        [
            struct.pack("<4sII", b"glTF", 2, total),
            struct.pack("<I4s", len(text), b"JSON"),
            text,
            struct.pack("<I4s", len(binary), b"BIN\x00"),
            binary,
        ]
    )


def write_glb(meshes: list[SurfaceMesh], out_dir: Path, stem: str = "segments") -> list[Path]:
    return [write_atomic(out_dir / f"{stem}.glb", glb_bytes(meshes, stem))]
