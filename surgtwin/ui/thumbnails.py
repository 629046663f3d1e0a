"""Small preview images of DICOM series for the data browser (numpy only, no Qt).

A thumbnail decodes the pixels of one frame only, the middle one of the series, so it is
cheap enough to make for every series right after the header scan. It never raises: a
frame that cannot be decoded gives a grey placeholder together with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from surgtwin.core.dicom import Series
from surgtwin.core.dicom.inventory import FrameHeader
from surgtwin.core.dicom.pixels import iter_decoded
from surgtwin.core.dicom.scan import NOT_VOLUME_MODALITIES

THUMBNAIL_SIZE = 96
PLACEHOLDER_GREY = 128
# Soft-tissue window (HU) for CT previews: organs and vessels are what users look for.
CT_WINDOW = (40.0, 400.0)  # level, width
# MR and other modalities: robust min/max (a few hot pixels must not wash the image out).
PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True)
class Thumbnail:
    image: np.ndarray  # (h, w, 3) uint8
    reason: str | None = None  # why it is a placeholder; None for a real preview
    failed_file: str | None = None  # the file whose pixels could not be decoded (a warning)

    @property
    def placeholder(self) -> bool:
        return self.reason is not None


def series_thumbnail(series: Series, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """The middle image of ``series`` as an (h, w, 3) uint8 preview fitting ``size``×``size``."""
    return make_thumbnail(series, size).image


def make_thumbnail(series: Series, size: int = THUMBNAIL_SIZE) -> Thumbnail:
    """The preview and, for a grey placeholder, why no image could be shown."""
    if not series.frames:
        return Thumbnail(placeholder_image(size), "the series has no images")
    if series.modality in NOT_VOLUME_MODALITIES:
        return Thumbnail(placeholder_image(size), NOT_VOLUME_MODALITIES[series.modality])
    frame = middle_frame(series)
    if frame.samples_per_pixel != 1:
        return Thumbnail(placeholder_image(size), f"colour images ({frame.photometric}) are not previewed")
    try:
        stored = next(iter_decoded([frame]))[1]
        gray = _to_display(stored, frame)
    except Exception as exc:  # noqa: BLE001 - any decoder failure becomes a placeholder, never a crash
        reason = f"the middle image cannot be decoded: {exc}"
        return Thumbnail(placeholder_image(size), reason, failed_file=frame.display)
    return Thumbnail(_fit(gray, frame, size))


def middle_frame(series: Series) -> FrameHeader:
    """The frame in the middle along the slice normal (or of the file order without geometry)."""
    frames = series.geometry.frames if series.geometry is not None else series.frames
    return frames[len(frames) // 2]


def placeholder_image(size: int = THUMBNAIL_SIZE) -> np.ndarray:
    image = np.full((size, size, 3), PLACEHOLDER_GREY, dtype=np.uint8)
    # A darker cross makes it read as "no image" rather than as a flat grey picture.
    diagonal = np.arange(size)
    image[diagonal, diagonal] = image[diagonal, size - 1 - diagonal] = 96
    return image


def _to_display(stored: np.ndarray, frame: FrameHeader) -> np.ndarray:
    """Stored values -> modality values -> 0..1 grey (inverted for MONOCHROME1)."""
    values = stored.astype(np.float32) * np.float32(frame.rescale_slope) + np.float32(frame.rescale_intercept)
    if frame.modality == "CT" and frame.rescale_type in ("HU", ""):
        level, width = CT_WINDOW
        low, high = level - width / 2, level + width / 2
    else:
        low, high = (float(v) for v in np.percentile(values, PERCENTILES))
    if high <= low:
        high = low + 1.0
    gray = np.clip((values - low) / (high - low), 0.0, 1.0)
    return 1.0 - gray if frame.photometric == "MONOCHROME1" else gray


def _fit(gray: np.ndarray, frame: FrameHeader, size: int) -> np.ndarray:
    """Scale to fit ``size`` keeping the physical aspect ratio (pixel spacing), box-averaged."""
    rows, cols = gray.shape
    row_mm, col_mm = frame.pixel_spacing or (1.0, 1.0)
    height_mm, width_mm = rows * row_mm, cols * col_mm
    scale = size / max(height_mm, width_mm)
    out_h = max(1, min(size, round(height_mm * scale)))
    out_w = max(1, min(size, round(width_mm * scale)))
    # Average whole blocks first so thin structures do not alias away, then sample.
    block = max(1, min(rows // out_h, cols // out_w))
    if block > 1:
        h, w = rows // block * block, cols // block * block
        gray = gray[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3))
    row_index = np.minimum((np.arange(out_h) + 0.5) * gray.shape[0] / out_h, gray.shape[0] - 1).astype(int)
    col_index = np.minimum((np.arange(out_w) + 0.5) * gray.shape[1] / out_w, gray.shape[1] - 1).astype(int)
    small = (gray[np.ix_(row_index, col_index)] * 255.0 + 0.5).astype(np.uint8)
    return np.repeat(small[:, :, None], 3, axis=2)
