"""Volume rendering and clipping, rendered off-screen and checked pixel by pixel.

The phantom is a bright ball on the patient's left and superior side of an otherwise empty
(air) volume whose LPS extent is centred on x = 0, so the anterior camera looks at x = 0:
the ball must appear right of the image centre (patient left on screen right) and above
it. Grids are stored mirrored and oblique; a renderer ignoring the direction matrix would
put the ball elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest

from surgtwin.core.mesh import extract_meshes
from surgtwin.core.scene import Scene
from surgtwin.core.segmentation.model import Segment, Segmentation
from surgtwin.core.volume import Volume
from surgtwin.render import VOLUME_PRESETS, RenderError, SceneRenderer, VolumeRendering, snapshot_view
from surgtwin.render.scene_view import BACKGROUND
from tests.render.imaging import background_fraction, color_pixels

SIZE = (320, 240)
BALL_LPS = np.array([25.0, 0.0, 20.0])  # patient left, superior
BALL_RADIUS = 10.0
N = 40
STEP = 2.0


def _rotation_z(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


def grid(direction: np.ndarray, n: int = N, step: float = STEP) -> np.ndarray:
    """ijk_to_lps with unit axes ``direction`` (columns) whose voxel centres are centred on 0."""
    matrix = np.eye(4)
    matrix[:3, :3] = direction * step
    matrix[:3, 3] = -matrix[:3, :3] @ np.full(3, (n - 1) / 2.0)
    return matrix


GRIDS = {
    "i_mirrored": grid(np.diag([-1.0, 1.0, 1.0])),  # i runs to patient right: det < 0
    "k_mirrored_oblique": grid(_rotation_z(30.0) @ np.diag([1.0, 1.0, -1.0])),
    "plain": grid(np.eye(3)),
}


def phantom(ijk_to_lps: np.ndarray, values: dict[float, tuple[np.ndarray, float]] | None = None) -> Volume:
    """Air with balls: ``{hu: (centre, radius)}``, by default the bright bone ball."""
    values = values or {1000.0: (BALL_LPS, BALL_RADIUS)}
    k, j, i = np.mgrid[:N, :N, :N]
    ijk = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1)
    lps = (ijk @ ijk_to_lps[:3, :3].T + ijk_to_lps[:3, 3]).reshape(N, N, N, 3)
    voxels = np.full((N, N, N), -1000, dtype=np.int16)
    for hu, (centre, radius) in values.items():
        voxels[np.linalg.norm(lps - centre, axis=-1) < radius] = hu
    return Volume(voxels, ijk_to_lps, modality="CT", units="HU")


def shown(rgb: np.ndarray) -> np.ndarray:
    """Pixels that are not background."""
    bg = np.rint(np.array(BACKGROUND) * 255.0)
    return np.any(np.abs(rgb.astype(np.int16) - bg) > 12, axis=-1)


def render(volume: Volume, preset: str = "ct_bone", **kwargs) -> tuple[np.ndarray, VolumeRendering]:
    view = SceneRenderer(Scene("volume"))
    rendering = VolumeRendering(volume, view.renderer, preset)
    for name, value in kwargs.items():
        getattr(rendering, name)(value)
    try:
        return snapshot_view(view, SIZE, "anterior"), rendering
    finally:
        view.close()


@pytest.mark.parametrize("grid_name", list(GRIDS))
def test_ball_appears_on_the_patient_left_and_superior(grid_name: str, artifacts) -> None:
    rgb, rendering = render(phantom(GRIDS[grid_name]))
    from surgtwin.render import write_png

    write_png(rgb, artifacts / f"volume_rendering_{grid_name}.png")
    mask = shown(rgb)
    rows, cols = np.nonzero(mask)
    assert 150 < mask.sum() < 0.3 * mask.size, mask.sum()  # a ball, not nothing, not everything
    assert rgb[mask].max() > 150  # lit, not black
    # The view spans the 78 mm-wide volume: the ball (25 mm left) sits well right of the centre.
    assert cols.mean() > SIZE[0] / 2 + 15, (grid_name, cols.mean())
    assert rows.mean() < SIZE[1] / 2 - 10, (grid_name, rows.mean())  # superior is up
    assert rendering.preset == "ct_bone"


@pytest.mark.parametrize(
    ("preset", "hu"),
    [("ct_bone", 1000.0), ("ct_soft_tissue", 60.0), ("ct_angio", 350.0), ("ct_lung", -550.0)],
)
def test_each_ct_preset_shows_its_tissue_and_bone_hides_soft_tissue(preset: str, hu: float) -> None:
    volume = phantom(GRIDS["plain"], {hu: (np.zeros(3), 15.0)})
    rgb, _ = render(volume, preset)
    assert shown(rgb).sum() > 500, preset
    if hu < 150.0:  # below bone: invisible with the bone preset
        bone_view, _ = render(volume, "ct_bone")
        assert shown(bone_view).sum() < 0.05 * shown(rgb).sum()


def test_mr_preset_scales_to_the_volume_range() -> None:
    volume = phantom(GRIDS["plain"], {-200.0: (np.zeros(3), 15.0)})  # any units: relative preset
    volume.voxels += 1000  # 0 outside, 800 inside
    volume.modality, volume.units = "MR", ""
    rgb, rendering = render(volume, "mr_default")
    assert rendering.value_range == (0.0, 800.0)
    assert shown(rgb).sum() > 500
    assert VOLUME_PRESETS["mr_default"].relative


def test_hidden_rendering_and_unknown_preset() -> None:
    rgb, rendering = render(phantom(GRIDS["plain"]), set_visible=False)
    assert not rendering.visible
    assert background_fraction(rgb, BACKGROUND) == 1.0
    with pytest.raises(RenderError, match="ct_bone"):
        rendering.set_preset("nope")


def test_clipping_plane_cuts_the_volume_rendering() -> None:
    from vtkmodules.vtkCommonDataModel import vtkPlane

    volume = phantom(GRIDS["i_mirrored"])
    keep_left, keep_right = vtkPlane(), vtkPlane()
    keep_left.SetNormal(1.0, 0.0, 0.0)  # the side the normal points to stays: x > 0
    keep_right.SetNormal(-1.0, 0.0, 0.0)
    left, _ = render(volume, set_clipping_plane=keep_left)
    right, _ = render(volume, set_clipping_plane=keep_right)
    assert shown(left).sum() > 150
    assert shown(right).sum() == 0  # the ball lies at x = 15..35 mm: all of it cut away


def test_clipping_plane_cuts_mesh_actors_through_the_scene_renderer() -> None:
    labels = np.zeros((N, N, N), dtype=np.uint8)
    ijk_to_lps = grid(np.eye(3), step=1.0)
    k, j, i = np.mgrid[:N, :N, :N]
    labels[(i - 19.5) ** 2 + (j - 19.5) ** 2 + (k - 19.5) ** 2 < 14.0**2] = 1
    seg = Segmentation(labels, ijk_to_lps, {1: Segment("ball", (0.9, 0.2, 0.2))})
    scene = Scene("clip")
    scene.add(next(iter(extract_meshes(seg).values())))
    view = SceneRenderer(scene)
    try:
        whole = snapshot_view(view, SIZE, "anterior")
        from vtkmodules.vtkCommonDataModel import vtkPlane

        plane = vtkPlane()
        plane.SetNormal(1.0, 0.0, 0.0)  # keep the patient's left: the screen's right half
        view.set_clipping_plane(plane)
        half = snapshot_view(view, SIZE, "anterior")
        assert view.clipping_plane is plane
        view.set_clipping_plane(None)
        again = snapshot_view(view, SIZE, "anterior")
    finally:
        view.close()
    red = (0.9, 0.2, 0.2)
    middle = SIZE[0] // 2
    whole_l, whole_r = (color_pixels(whole, red)[:, s].sum() for s in (slice(0, middle), slice(middle, None)))
    half_l, half_r = (color_pixels(half, red)[:, s].sum() for s in (slice(0, middle), slice(middle, None)))
    assert whole_l > 1000 and whole_r > 1000
    assert half_l < 0.03 * whole_l  # the right half of the patient is gone
    assert half_r > 0.8 * whole_r  # (the cut face is open: back faces show, still red)
    assert color_pixels(again, red).sum() == color_pixels(whole, red).sum()
