"""3MF for printing: one package, one object per segment with its name and colour, in mm.

The 3MF frame is right-handed with +Z up like LPS (z = superior), so coordinates are
written unchanged; slicers place the parts on their build plate themselves.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from surgtwin.core.export.common import FRAME_STATEMENT, GENERATOR, rgb255, write_atomic
from surgtwin.core.mesh.surface import SurfaceMesh

CORE_NS = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="model" ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/>'
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Target="/3D/3dmodel.model" Id="rel0" '
    'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/>'
    "</Relationships>"
)


def _mesh_xml(mesh: SurfaceMesh) -> str:
    vertices = io.StringIO()
    np.savetxt(vertices, mesh.vertices, fmt='<vertex x="%.6f" y="%.6f" z="%.6f"/>', newline="")
    triangles = io.StringIO()
    np.savetxt(triangles, mesh.faces, fmt='<triangle v1="%d" v2="%d" v3="%d"/>', newline="")
    return (
        f"<mesh><vertices>{vertices.getvalue()}</vertices>"
        f"<triangles>{triangles.getvalue()}</triangles></mesh>"
    )


def model_xml(meshes: list[SurfaceMesh], title: str) -> str:
    materials = "".join(
        '<base name={} displaycolor="#{:02X}{:02X}{:02X}FF"/>'.format(quoteattr(m.name), *rgb255(m.color))
        for m in meshes
    )
    objects = "".join(
        f'<object id="{i + 2}" type="model" name={quoteattr(m.name)} pid="1" pindex="{i}">'
        f"{_mesh_xml(m)}</object>"
        for i, m in enumerate(meshes)
    )
    items = "".join(f'<item objectid="{i + 2}"/>' for i in range(len(meshes)))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<model unit="millimeter" xml:lang="en-US" xmlns="{CORE_NS}">'
        f'<metadata name="Title">{escape(title)}</metadata>'
        f'<metadata name="Application">{escape(GENERATOR)}</metadata>'
        f'<metadata name="Description">{escape(FRAME_STATEMENT)}</metadata>'
        f'<resources><basematerials id="1">{materials}</basematerials>{objects}</resources>'
        f"<build>{items}</build></model>"
    )


def threemf_bytes(meshes: list[SurfaceMesh], title: str = "segments") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as package:
        package.writestr("[Content_Types].xml", _CONTENT_TYPES)
        package.writestr("_rels/.rels", _RELS)
        package.writestr("3D/3dmodel.model", model_xml(meshes, title))
    return out.getvalue()


def write_3mf(meshes: list[SurfaceMesh], out_dir: Path, stem: str = "segments") -> list[Path]:
    return [write_atomic(out_dir / f"{stem}.3mf", threemf_bytes(meshes, stem))]
