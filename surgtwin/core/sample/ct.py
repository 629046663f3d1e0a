"""Tissue layers -> CT numbers (HU): portal-venous contrast, partial volume, noise.

Partial volume: each layer covers a voxel by a fraction that ramps linearly across the
surface over about one voxel (from the signed distance), and the result is blurred by
a small in-plane point-spread function, as a scanner's reconstruction kernel would.
Noise: white Gaussian noise, smoothed in-plane so it is spatially correlated like real
CT noise, then scaled to ``NOISE_SD``. Everything runs in float64 with a fixed seed so
that the stored integers are reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from scipy.ndimage import gaussian_filter

from surgtwin.core.sample.anatomy import Layer
from surgtwin.core.sample.shapes import Grid

AIR_HU = -1000.0
NOISE_SD = 12.0  # HU, typical of a 3 mm abdominal reconstruction
EDGE_WIDTH_MM = 2.5  # partial-volume ramp, between the 2 mm pixel and the 3 mm slice
PSF_SIGMA_PX = 0.6  # in-plane point-spread function (standard deviation, pixels)
NOISE_CORRELATION_PX = 0.8
RESCALE_INTERCEPT = -1024
MAX_STORED = 4095  # 12 bits stored

# Portal-venous phase (~70 s after an iodinated bolus).
TISSUE_HU: dict[str, float] = {
    "skin": 30.0,
    "fat": -105.0,
    "visceral_fat": -95.0,
    "muscle": 50.0,
    "lung": -860.0,
    "gas": -990.0,
    "liver": 105.0,
    "tumour": 55.0,  # hypovascular metastasis: hypodense to enhanced liver
    "spleen": 115.0,
    "pancreas": 100.0,
    "bile": 8.0,
    "bowel_wall": 95.0,  # enhancing mucosa
    "fluid": 15.0,
    "stool": -30.0,
    "arterial_blood": 290.0,
    "portal_blood": 180.0,
    "caval_blood": 140.0,  # mixes unopacified blood from the legs
    "disc": 85.0,
    "csf": 20.0,
}


def _bone(depth: np.ndarray) -> np.ndarray:
    """Cortical shell (~1150 HU at the surface) over cancellous bone (~250 HU)."""
    return 250.0 + 900.0 * np.exp(-np.maximum(depth, 0.0) / 2.0)


def _kidney(depth: np.ndarray) -> np.ndarray:
    """Enhancing cortex (~190 HU) over a less enhanced medulla (~145 HU)."""
    return 145.0 + 45.0 / (1.0 + np.exp((depth - 6.0) / 1.0))


DEPTH_MODELS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"bone": _bone, "kidney": _kidney}


def ideal_hu(grid: Grid, layers: Iterable[Layer]) -> np.ndarray:
    """Noise-free attenuation with partial volume at every tissue boundary."""
    hu = np.full(grid.shape, AIR_HU)
    for layer in layers:
        sd = layer.sd.astype(np.float64)
        fraction = np.clip(0.5 - sd / EDGE_WIDTH_MM, 0.0, 1.0)
        model = DEPTH_MODELS.get(layer.tissue)
        value = model(-sd) if model is not None else TISSUE_HU[layer.tissue]
        view = hu[layer.box]
        view += fraction * (value - view)
    return gaussian_filter(hu, sigma=(0.0, PSF_SIGMA_PX, PSF_SIGMA_PX), mode="nearest")


def correlated_noise(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    white = np.random.default_rng(seed).standard_normal(shape)
    noise = gaussian_filter(white, sigma=(0.0, NOISE_CORRELATION_PX, NOISE_CORRELATION_PX))
    return noise * (NOISE_SD / float(noise.std()))


def simulate_ct(grid: Grid, layers: Iterable[Layer], seed: int) -> np.ndarray:
    """Stored pixel values (uint16, ``[k, j, i]``); HU = stored + RESCALE_INTERCEPT."""
    hu = ideal_hu(grid, layers) + correlated_noise(grid.shape, seed)
    stored = np.clip(np.rint(hu - RESCALE_INTERCEPT), 0, MAX_STORED)
    return stored.astype(np.uint16)
