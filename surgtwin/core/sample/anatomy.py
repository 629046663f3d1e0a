"""The sample patient: an abdomen built from analytic shapes, in LPS millimetres.

LPS: +x is the patient's left, +y posterior, +z superior. The patient lies supine, so
the spine is at +y and gas floats to -y (anterior). Sizes follow adult anatomy, with the
craniocaudal extent compressed a little so that liver dome to iliac arteries fits 64
slices. ``build_layers`` returns the tissues in painting order: a later layer replaces
an earlier one wherever its signed distance is <= 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from surgtwin.core.sample.shapes import (
    Box,
    Grid,
    box_sd,
    ellipse_sd,
    ellipsoid_sd,
    path_box,
    rotation,
    spline_path,
    tube_sd,
)

LABELS: dict[int, str] = {
    1: "skin",
    2: "fat",
    3: "muscle",
    4: "bone",
    5: "liver",
    6: "liver_tumour",
    7: "kidney_left",
    8: "kidney_right",
    9: "aorta",
    10: "iliac_left",
    11: "iliac_right",
    12: "spleen",
    13: "vena_cava",
    14: "portal_vein",
    15: "renal_arteries",
    16: "stomach",
    17: "bowel",
    18: "gallbladder",
    19: "lung",
    20: "spinal_canal",
    21: "intervertebral_disc",
    22: "pancreas",
}
LABEL_VALUES: dict[str, int] = {name: value for value, name in LABELS.items()}

# Landmarks the tests and the README refer to (mm, LPS z unless stated).
ANEURYSM_MAX_Z = -118.0
STENOSIS_Z = -177.0  # right common iliac artery; a slice position, so a slice hits the waist
STENOSIS_FRACTION = 0.65  # diameter reduction


@dataclass(frozen=True)
class Layer:
    label: int
    tissue: str  # key of the CT module's attenuation table
    box: Box
    sd: np.ndarray  # signed distance (mm, < 0 inside) on ``box``, float32


def _layer(name: str, tissue: str, box: Box, sd: np.ndarray) -> Layer:
    return Layer(LABEL_VALUES[name], tissue, box, np.asarray(sd, dtype=np.float32))


# --- body wall ------------------------------------------------------------------------
# Outlines as (a, b_anterior, b_posterior): the back is flatter than the belly.
BODY = (170.0, 125.0, 110.0)
MUSCLE_OUTER = (145.0, 105.0, 95.0)  # subcutaneous fat 15-25 mm
CAVITY = (133.0, 93.0, 80.0)  # abdominal wall muscle ~12 mm
SKIN_MM = 2.5


def _outline_sd(x: np.ndarray, y: np.ndarray, outline: tuple[float, float, float]) -> np.ndarray:
    a, b_ant, b_post = outline
    return ellipse_sd(x, y, 0.0, 0.0, a, np.where(y > 0, b_post, b_ant))


def spine_y(z: np.ndarray | float) -> np.ndarray:
    """Centre of the vertebral bodies (y, mm): a gentle lumbar lordosis peaking at L3."""
    return 44.0 + 0.0003 * (np.asarray(z, dtype=np.float64) + 120.0) ** 2


def diaphragm_z(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Height of the diaphragm: two domes (right higher) over a central tendon."""

    def dome(cx: float, cy: float, ax: float, peak: float, drop: float) -> np.ndarray:
        ay = np.where(y > cy, 85.0, 125.0)  # the posterior recess reaches lowest
        q2 = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2
        return peak - drop * q2 * q2  # flat top, steep sides

    return np.maximum(
        np.maximum(dome(-60.0, 10.0, 90.0, 30.0, 150.0), dome(60.0, 15.0, 85.0, 22.0, 150.0)),
        dome(0.0, -30.0, 60.0, 15.0, 150.0),
    )


def _below_diaphragm(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    return z - (diaphragm_z(x, y) - 5.0)  # 5 mm of diaphragm muscle above abdominal organs


def _body_wall(grid: Grid) -> list[Layer]:
    box = grid.full
    x, y, z = grid.coords(box)
    body = _outline_sd(x, y, BODY) + 0 * z
    cavity = _outline_sd(x, y, CAVITY) + 0 * z
    dia = diaphragm_z(x, y)
    return [
        _layer("skin", "skin", box, body),
        _layer("fat", "fat", box, body + SKIN_MM),
        _layer("muscle", "muscle", box, _outline_sd(x, y, MUSCLE_OUTER) + 0 * z),
        _layer("fat", "visceral_fat", box, cavity),
        _layer("muscle", "muscle", box, np.maximum(cavity, dia - 5.0 - z)),  # diaphragm
        _layer("lung", "lung", box, np.maximum(cavity + 1.0, dia - z)),
    ]


def _back_muscles(grid: Grid) -> list[Layer]:
    box = grid.box((-95.0, 10.0, -1e3), (95.0, 110.0, 1e3))
    x, y, z = grid.coords(box)
    ys = spine_y(z)
    paraspinal = np.minimum(
        ellipse_sd(x, y, -32.0, ys + 36.0, 24.0, 13.0),
        ellipse_sd(x, y, 32.0, ys + 36.0, 24.0, 13.0),
    )
    lumborum = np.maximum(
        np.minimum(
            ellipse_sd(x, y, -58.0, ys + 20.0, 14.0, 9.0),
            ellipse_sd(x, y, 58.0, ys + 20.0, 14.0, 9.0),
        ),
        z + 45.0,
    )
    layers = [_layer("muscle", "muscle", box, np.minimum(paraspinal, lumborum))]
    for side in (-1.0, 1.0):  # psoas: arises at T12/L1 and thickens caudally
        ctrl = [(26, 46, -40), (33, 43, -75), (37, 40, -103), (43, 38, -131), (56, 36, -200)]
        path, radii = spline_path([(side * a, b, c) for a, b, c in ctrl], [3, 11, 15, 18, 20])
        pbox = path_box(grid, path, radii)
        layers.append(_layer("muscle", "muscle", pbox, tube_sd(grid, pbox, path, radii)))
    return layers


# --- skeleton -------------------------------------------------------------------------
VERTEBRA_PITCH = 28.0  # body 22 mm + disc 6 mm (compressed from adult ~35 mm)
VERTEBRA_CENTRES = tuple(9.0 - VERTEBRA_PITCH * n for n in range(-1, 9))  # T11 at z = 9


def _spine(grid: Grid) -> list[Layer]:
    box = grid.box((-70.0, 0.0, -1e3), (70.0, 110.0, 1e3))
    x, y, z = grid.coords(box)
    ys = spine_y(z)
    ax = 19.0 - 0.03 * z  # bodies widen caudally
    ay = 15.0 - 0.012 * z
    section = ellipse_sd(x, y, 0.0, ys, ax, ay)
    canal_y = ys + ay + 10.0
    bone = np.full(section.shape, 1e3)
    disc = np.full(section.shape, 1e3)
    for zc in VERTEBRA_CENTRES:
        arch = np.maximum(
            ellipse_sd(x, y, 0.0, canal_y, 16.0, 14.0), -ellipse_sd(x, y, 0.0, canal_y, 9.0, 8.0)
        )
        parts = [
            np.maximum(section, np.abs(z - zc) - 11.0),  # vertebral body
            np.maximum(arch, np.abs(z - zc + 2.0) - 9.0),  # pedicles and laminae
            box_sd(x, y, z, (0.0, canal_y + 18.0, zc - 6.0), (3.5, 9.0, 8.0)),  # spinous
            box_sd(x, y, z, (-25.0, canal_y - 4.0, zc), (13.0, 3.5, 4.5)),  # transverse
            box_sd(x, y, z, (25.0, canal_y - 4.0, zc), (13.0, 3.5, 4.5)),
        ]
        for part in parts:
            np.minimum(bone, part, out=bone)
        np.minimum(disc, np.maximum(section + 1.0, np.abs(z - zc + 14.0) - 3.0), out=disc)
    canal = ellipse_sd(x, y, 0.0, canal_y, 8.5, 7.5) + 0 * z
    return [
        _layer("bone", "bone", box, bone),
        _layer("intervertebral_disc", "disc", box, disc),
        _layer("spinal_canal", "csf", box, canal),
    ]


# Ribs 8-12: (posterior z at the costovertebral joint, anterior end angle, drop in mm).
RIBS = ((93.0, 160.0, 95.0), (65.0, 150.0, 85.0), (37.0, 135.0, 65.0), (9.0, 105.0, 40.0),
        (-19.0, 75.0, 25.0))  # fmt: skip


def _ribs(grid: Grid) -> list[Layer]:
    layers = []
    a, b_ant, b_post = (1.04 * v for v in CAVITY)  # ribs run within the muscle wall
    for z_post, theta_end, drop in RIBS:
        for side in (-1.0, 1.0):
            ys = float(spine_y(z_post))
            ctrl = [(side * 18.0, ys + 8.0, z_post)]  # head, beside the vertebral body
            for t in np.linspace(0.0, 1.0, 12):
                theta = np.radians(22.0 + t * (theta_end - 22.0))  # 0 = posterior midline
                b = b_post if np.cos(theta) > 0 else b_ant
                ctrl.append((side * a * np.sin(theta), b * np.cos(theta), z_post - drop * t**1.3))
            path, radii = spline_path(ctrl, np.full(len(ctrl), 4.5), step=2.0)
            box = path_box(grid, path, radii)
            if any(s.stop <= s.start for s in box):
                continue
            layers.append(_layer("bone", "bone", box, tube_sd(grid, box, path, radii)))
    return layers


# --- viscera --------------------------------------------------------------------------


Coords = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _organ(grid: Grid, lo: tuple[float, ...], hi: tuple[float, ...]) -> tuple[Box, Coords]:
    """A box with its coordinates and the bound every upper-abdominal organ obeys."""
    box = grid.box(lo, hi)
    x, y, z = grid.coords(box)
    limit = np.maximum(_outline_sd(x, y, CAVITY) + 2.0, _below_diaphragm(x, y, z))
    return box, (x, y, z, limit)


def _bowel(grid: Grid) -> list[Layer]:
    colon = [(-100, 0, -205), (-102, -5, -160), (-98, -15, -128), (-80, -50, -112),
             (-40, -75, -118), (0, -82, -122), (40, -75, -115), (80, -45, -100),
             (102, -5, -85), (108, 10, -110), (105, 10, -150), (100, 10, -205)]  # fmt: skip
    # Small bowel: loops that mostly run craniocaudally, so axial slices cut them across.
    small: list[tuple[float, float, float]] = [(25, -12, -98), (55, -40, -95)]  # from D-J flexure
    columns = [(80, -38, -58), (55, -48, -70), (62, -38, -188), (32, -50, -150),
               (48, -75, -185), (12, -62, -140), (-12, -78, -186), (-40, -60, -140),
               (-25, -42, -186), (-62, -38, -110), (-70, -68, -185)]  # fmt: skip
    for n, (cx, cy, z_end) in enumerate(columns):
        z_start = small[-1][2]
        small.append((cx + 6 * (-1) ** n, cy + 4, 0.7 * z_start + 0.3 * z_end))
        small.append((cx, cy, z_end))
    layers = []
    for ctrl, radius, wall, content, gas_at in (
        (colon, 20.0, 3.0, "stool", (3, 4, 5, 6, 9)),
        (small, 12.0, 2.5, "fluid", (4, 11, 19)),
    ):
        path, radii = spline_path(ctrl, np.full(len(ctrl), radius))
        box = path_box(grid, path, radii)
        x, y, z = grid.coords(box)
        sd = tube_sd(grid, box, path, radii)
        layers.append(_layer("bowel", "bowel_wall", box, sd))
        layers.append(_layer("bowel", content, box, sd + wall))
        for n in gas_at:  # gas rises anteriorly (-y) in a supine patient
            c = np.asarray(ctrl[n], dtype=np.float64) + np.array([0.0, -0.6 * radius, 0.0])
            bubble = ellipsoid_sd(x, y, z, c, (radius, 0.8 * radius, radius))
            layers.append(_layer("bowel", "gas", box, np.maximum(sd + wall, bubble)))
    return layers


def _upper_abdomen(grid: Grid) -> list[Layer]:
    layers = []
    # Stomach: wall, fluid, and a gas cap anteriorly.
    box, (x, y, z, limit) = _organ(grid, (-10, -80, -100), (110, 30, 30))
    centre = (45.0, -22.0, -25.0)
    sd = np.maximum(ellipsoid_sd(x, y, z, centre, (42, 34, 55), rotation(30.0)), limit)
    layers.append(_layer("stomach", "bowel_wall", box, sd))
    layers.append(_layer("stomach", "fluid", box, sd + 4.0))
    layers.append(_layer("stomach", "gas", box, np.maximum(sd + 4.0, y - (centre[1] - 12.0))))
    # Spleen: along the left posterolateral ribs.
    box, (x, y, z, limit) = _organ(grid, (40, -20, -100), (135, 110, 40))
    sd = ellipsoid_sd(x, y, z, (90.0, 42.0, -18.0), (28, 66, 58), rotation(-35.0))
    layers.append(_layer("spleen", "spleen", box, np.maximum(sd, limit)))
    # Liver: right lobe plus a left lobe draped over the stomach, under the right dome.
    box, (x, y, z, limit) = _organ(grid, (-140, -100, -140), (80, 90, 40))
    right = ellipsoid_sd(x, y, z, (-62.0, 0.0, -30.0), (75, 95, 90), rotation(-10.0))
    left = ellipsoid_sd(x, y, z, (5.0, -58.0, -28.0), (62, 28, 34), rotation(-18.0))
    layers.append(_layer("liver", "liver", box, np.maximum(np.minimum(right, left), limit)))
    gallbladder = ellipsoid_sd(x, y, z, (-45.0, -58.0, -92.0), (14, 15, 32), rotation(0, 35))
    layers.append(_layer("gallbladder", "bile", box, gallbladder))
    tumour = ellipsoid_sd(x, y, z, (-88.0, -22.0, -52.0), (15.0, 13.5, 14.0), rotation(25.0))
    layers.append(_layer("liver_tumour", "tumour", box, tumour))
    # Pancreas: head by the duodenum, neck over the portal confluence, tail at the spleen.
    path, r = spline_path([(-20, -22, -108), (0, -24, -96), (35, -12, -82), (72, 12, -62)],
                          [15.0, 10.0, 10.0, 8.0])  # fmt: skip
    pbox = path_box(grid, path, r)
    layers.append(_layer("pancreas", "pancreas", pbox, tube_sd(grid, pbox, path, r)))
    # Portal venous system: SMV and splenic vein join behind the pancreas neck.
    for ctrl, radii in (
        ([(5, -32, -160), (3, -18, -120), (2, -12, -95), (-22, -8, -78), (-40, -5, -65),
          (-65, 0, -55), (-92, 6, -48)], [4.5, 5.5, 6.5, 7.0, 6.5, 5.0, 3.5]),
        ([(-40, -5, -65), (-20, -25, -52), (5, -45, -42)], [5.0, 4.5, 3.5]),
        ([(2, -12, -95), (40, 0, -82), (75, 22, -55)], [6.0, 4.5, 4.0]),
    ):  # fmt: skip
        path, r = spline_path(ctrl, radii)
        pbox = path_box(grid, path, r)
        layers.append(_layer("portal_vein", "portal_blood", pbox, tube_sd(grid, pbox, path, r)))
    return layers


def _kidney_frame(side: float) -> np.ndarray:
    """Local axes (columns): lateral-posterior, anteroposterior, long axis (pole to pole)."""
    hilum = np.array([-side * np.cos(np.radians(30)), -np.sin(np.radians(30)), 0.0])
    long_axis = np.array([-side * 0.18, 0.12, 1.0])  # upper pole medial and posterior
    long_axis /= np.linalg.norm(long_axis)
    u = -hilum - (-hilum @ long_axis) * long_axis
    u /= np.linalg.norm(u)
    return np.column_stack([u, np.cross(long_axis, u), long_axis])


KIDNEY_CENTRES = {1.0: (80.0, 46.0, -80.0), -1.0: (-78.0, 48.0, -92.0)}  # right sits lower


def _kidneys(grid: Grid) -> list[Layer]:
    layers = []
    for side, name in ((1.0, "kidney_left"), (-1.0, "kidney_right")):
        c = np.asarray(KIDNEY_CENTRES[side])
        frame = _kidney_frame(side)
        box = grid.box(c - 70.0, c + 70.0)
        x, y, z = grid.coords(box)
        semi = np.array([30.0, 22.0, 55.0])
        layers.append(_layer("fat", "visceral_fat", box, ellipsoid_sd(x, y, z, c, semi + 9, frame)))
        layers.append(_layer(name, "kidney", box, ellipsoid_sd(x, y, z, c, semi, frame)))
        sinus = c - 17.0 * frame[:, 0]
        layers.append(_layer("fat", "visceral_fat", box,
                             ellipsoid_sd(x, y, z, sinus, (12.0, 9.0, 28.0), frame)))  # fmt: skip
    return layers


# --- vessels --------------------------------------------------------------------------
AORTA = [(4, 26, 10, 11.5), (6, 22, -30, 11.0), (8, 17, -65, 10.5), (9, 15, -80, 10.5),
         (9, 14, -92, 10.5), (11, 8, -104, 17.0), (13, 3, ANEURYSM_MAX_Z, 24.0),
         (12, 6, -132, 18.0), (9, 13, -143, 10.0), (8, 15, -150, 9.0)]  # fmt: skip
ILIAC_LEFT = [(8, 15, -150, 6.0), (20, 13, -165, 5.6), (30, 9, -180, 5.3), (38, 6, -198, 5.0)]
ILIAC_RIGHT = [(8, 15, -150, 6.0), (-3, 13, -163, 5.6), (-14, 10, -176, 5.4),
               (-24, 8, -188, 5.2), (-32, 6, -200, 5.0)]  # fmt: skip
VENA_CAVA = [(-20, 26, 10, 12.5), (-22, 20, -40, 12.0), (-25, 18, -80, 12.0),
             (-28, 18, -120, 11.0), (-22, 20, -150, 10.5), (-10, 22, -166, 10.0)]  # fmt: skip


def _vessel(
    grid: Grid,
    name: str,
    tissue: str,
    ctrl: Sequence[Sequence[float]],
    stenosis_z: float | None = None,
) -> Layer:
    """A tube through (x, y, z, radius) control points, optionally with a stenosis."""
    pts = np.asarray(ctrl, dtype=np.float64)
    path, radii = spline_path(pts[:, :3], pts[:, 3])
    if stenosis_z is not None:  # waist, Gaussian along the centreline (sigma 6 mm)
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
        s0 = arc[np.argmin(np.abs(path[:, 2] - stenosis_z))]
        radii = radii * (1.0 - STENOSIS_FRACTION * np.exp(-(((arc - s0) / 6.0) ** 2)))
    box = path_box(grid, path, radii)
    return _layer(name, tissue, box, tube_sd(grid, box, path, radii))


def _vessels(grid: Grid) -> list[Layer]:
    crus = [(x, y, z, r + 4.0) for x, y, z, r in AORTA[:3]]  # diaphragmatic crura
    renal = [
        [(10, 15, -76, 3.0), (35, 22, -78, 3.0), (64, 37, -80, 3.0)],
        [(8, 16, -77, 3.0), (-15, 34, -82, 3.0), (-40, 40, -88, 3.0), (-63, 39, -92, 3.0)],
    ]
    veins = [
        VENA_CAVA,
        [(-10, 22, -166, 9.0), (12, 30, -178, 8.0), (30, 26, -200, 7.5)],  # left common iliac
        [(-10, 22, -166, 9.0), (-24, 24, -184, 8.0), (-32, 24, -200, 7.5)],
    ]
    return [
        _vessel(grid, "muscle", "muscle", crus),
        *(_vessel(grid, "renal_arteries", "arterial_blood", c) for c in renal),
        *(_vessel(grid, "vena_cava", "caval_blood", c) for c in veins),
        _vessel(grid, "aorta", "arterial_blood", AORTA),
        _vessel(grid, "iliac_left", "arterial_blood", ILIAC_LEFT),
        _vessel(grid, "iliac_right", "arterial_blood", ILIAC_RIGHT, stenosis_z=STENOSIS_Z),
    ]


def build_layers(grid: Grid) -> list[Layer]:
    """All tissues in painting order (outside in; bone last so nothing paints over it)."""
    return [
        *_body_wall(grid),
        *_bowel(grid),
        *_upper_abdomen(grid),
        *_back_muscles(grid),
        *_kidneys(grid),
        *_vessels(grid),
        *_ribs(grid),
        *_spine(grid),
    ]


def paint_labels(grid: Grid, layers: list[Layer]) -> np.ndarray:
    """The ground-truth label map (uint8, ``[k, j, i]``): the last layer covering a voxel wins."""
    labels = np.zeros(grid.shape, dtype=np.uint8)
    for layer in layers:
        view = labels[layer.box]
        view[layer.sd <= 0] = layer.label
    return labels
