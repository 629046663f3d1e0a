"""View layouts: the same view widgets move between cells and hide; none is destroyed."""

from __future__ import annotations

import numpy as np
import pytest
import shiboken6
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget

from surgtwin.ui.view_grid import LAYOUTS, VIEW_3D, ViewGrid
from tests.ui.harness import show_widget

AXES = ("axial", "coronal", "sagittal")
EXPECTED_VISIBLE = {
    "4-up": {"axial", "coronal", "sagittal", VIEW_3D},
    "single-axial": {"axial"},
    "single-coronal": {"coronal"},
    "single-sagittal": {"sagittal"},
    "3d-only": {VIEW_3D},
    "1+3": {"axial", "coronal", "sagittal", VIEW_3D},
}


def _views() -> tuple[dict[str, QWidget], QWidget]:
    slice_views = {axis: QWidget() for axis in AXES}
    for axis, view in slice_views.items():
        view.setObjectName(axis)
    return slice_views, QWidget()


@pytest.fixture
def grid(qtbot) -> ViewGrid:
    slice_views, view_3d = _views()
    return show_widget(qtbot, ViewGrid(slice_views, view_3d), (800, 600))


def _settle() -> None:
    QApplication.processEvents()
    QApplication.processEvents()


def test_every_layout_shows_its_views_and_keeps_the_same_widgets(grid):
    originals = dict(grid.views)
    destroyed: list[str] = []
    for name, view in originals.items():
        view.destroyed.connect(lambda *_args, name=name: destroyed.append(name))
    area = grid.contentsRect().width() * grid.contentsRect().height()

    for name in (*LAYOUTS, "4-up"):
        grid.set_layout(name)
        _settle()
        assert grid.layout_name == name
        assert set(grid.visible_views()) == EXPECTED_VISIBLE[name], name
        for view_name, view in grid.views.items():
            assert view is originals[view_name] and view.parent() is grid
            assert view.isVisible() == (view_name in EXPECTED_VISIBLE[name]), (name, view_name)
        shown = [grid.views[v].geometry() for v in EXPECTED_VISIBLE[name]]
        covered = sum(r.width() * r.height() for r in shown)
        assert covered > 0.9 * area, name  # the shown views fill the grid
        for a in shown:  # and do not overlap
            assert all(a == b or not a.intersects(b) for b in shown)
    assert destroyed == []


def test_four_up_puts_axial_and_3d_on_top(grid):
    grid.set_layout("4-up")
    _settle()
    g = {name: view.geometry() for name, view in grid.views.items()}
    assert g["axial"].top() == g[VIEW_3D].top() < g["coronal"].top() == g["sagittal"].top()
    assert g["axial"].left() == g["coronal"].left() < g[VIEW_3D].left() == g["sagittal"].left()
    assert abs(g["axial"].width() - g[VIEW_3D].width()) <= 2


def test_one_plus_three_has_one_large_view_and_a_column_of_three(grid):
    grid.set_layout("1+3", primary=VIEW_3D)
    _settle()
    assert grid.primary_view == VIEW_3D
    big = grid.views[VIEW_3D].geometry()
    small = [grid.views[axis].geometry() for axis in AXES]
    assert all(big.width() > 2 * s.width() and big.height() > 2 * s.height() for s in small)
    assert len({s.left() for s in small}) == 1 and small[0].left() > big.left()
    assert sorted(s.top() for s in small) == [s.top() for s in small]  # stacked in order

    grid.set_layout("1+3", primary="coronal")
    _settle()
    assert grid.views["coronal"].width() > 2 * grid.views["axial"].width()


def test_maximize_toggles_one_view_and_restores_the_layout(grid):
    grid.set_layout("1+3", primary="axial")
    grid.maximize("sagittal")
    _settle()
    assert grid.maximized_view == "sagittal" and grid.visible_views() == ["sagittal"]
    assert grid.views["sagittal"].width() > 0.9 * grid.contentsRect().width()
    assert grid.layout_name == "1+3"  # the layout to come back to

    grid.maximize("sagittal")
    _settle()
    assert grid.maximized_view is None
    assert set(grid.visible_views()) == EXPECTED_VISIBLE["1+3"]
    assert grid.views["axial"].width() > 2 * grid.views["sagittal"].width()

    grid.maximize(VIEW_3D)
    grid.set_layout("single-coronal")  # choosing a layout ends the maximized state
    assert grid.maximized_view is None and grid.visible_views() == ["coronal"]


def test_unknown_names_are_refused_without_changing_the_layout(grid):
    grid.set_layout("single-axial")
    with pytest.raises(ValueError, match="unknown layout"):
        grid.set_layout("2x3")
    with pytest.raises(ValueError, match="unknown view"):
        grid.maximize("oblique")
    with pytest.raises(ValueError, match="needs the views"):
        ViewGrid({"axial": QWidget()}, QWidget())
    assert grid.layout_name == "single-axial" and grid.visible_views() == ["axial"]


def test_a_real_3d_interactor_survives_every_layout_switch(qtbot):
    """The pyvistaqt GL widget is hidden and moved, never re-created; it still renders afterwards."""
    pyvista = pytest.importorskip("pyvista")
    from pyvistaqt import QtInteractor

    from surgtwin.render import capture_window

    container = QWidget()
    interactor = QtInteractor(container)
    QVBoxLayout(container).addWidget(interactor.interactor)
    interactor.add_mesh(pyvista.Sphere(radius=1.0), color="red")
    slice_views, _ = _views()
    grid = show_widget(qtbot, ViewGrid(slice_views, container), (640, 480))
    gl_widget = interactor.interactor
    try:
        for name in (*LAYOUTS, "3d-only"):
            grid.set_layout(name)
            _settle()
            interactor.render()  # renders also while hidden (scene changes do)
        grid.maximize(VIEW_3D)
        _settle()
        assert shiboken6.isValid(gl_widget) and interactor.interactor is gl_widget
        assert gl_widget.isVisible() and gl_widget.width() > 0.9 * grid.contentsRect().width()
        interactor.render()
        rgb = np.asarray(capture_window(interactor.ren_win))
        red = (rgb[..., 0] > 150) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)
        assert red.mean() > 0.02  # the sphere is drawn in the re-shown view
    finally:
        interactor.close()
