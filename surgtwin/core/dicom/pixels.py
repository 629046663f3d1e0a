"""Decode frames' stored values, file by file, with clear errors naming the file."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from typing import BinaryIO, cast

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder, iter_pixels
from pydicom.pixels.decoders import JPEG2000Decoder, JPEG2000LosslessDecoder
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from surgtwin.core.dicom.inventory import FrameHeader
from surgtwin.core.errors import DicomError


def _gdcm_only_as_last_resort() -> None:
    """gdcm aborts the whole process (C++ terminate) on some corrupt JPEG 2000 streams.

    pydicom tries every plugin until one succeeds, so gdcm is taken out of the JPEG 2000
    decoders where another plugin (pylibjpeg-openjpeg, pillow) decodes them; a corrupt
    stream then becomes a DicomError instead of killing the application.
    """
    for decoder in (JPEG2000Decoder, JPEG2000LosslessDecoder):
        if "gdcm" in decoder.available_plugins and len(decoder.available_plugins) > 1:
            decoder.remove_plugin("gdcm")


_gdcm_only_as_last_resort()


def decoder_available(transfer_syntax: str) -> bool:
    """Whether an installed plugin can decode this transfer syntax (native ones always can)."""
    try:
        return bool(get_decoder(UID(transfer_syntax)).is_available)
    except (NotImplementedError, ValueError):
        return False


@contextmanager
def _decode_errors(frame: FrameHeader) -> Iterator[None]:
    try:
        yield
    except DicomError:
        raise
    except (NotImplementedError, RuntimeError) as exc:
        text = str(exc).lower()
        # "exceptions were raised by all available plugins": decoders exist, the stream is bad.
        missing = "plugin" in text and "raised by all available plugins" not in text
        if missing or "no pixel data decoders" in text or "not supported" in text:
            name = UID(frame.transfer_syntax).name
            raise DicomError(
                f"{frame.display}: no decoder available for '{name}' ({exc})",
                code="unsupported_codec",
            ) from exc
        raise DicomError(
            f"{frame.display}: pixel data cannot be decoded ({exc})", code="corrupt_pixel_data"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - codecs raise anything on corrupt streams
        syntax = UID(frame.transfer_syntax)
        if not syntax.is_transfer_syntax:
            raise DicomError(
                f"{frame.display}: no decoder available for transfer syntax '{syntax.name}' "
                f"(not one this version of pydicom knows; {type(exc).__name__}: {exc})",
                code="unsupported_codec",
            ) from exc
        raise DicomError(
            f"{frame.display}: pixel data cannot be decoded ({type(exc).__name__}: {exc})",
            code="corrupt_pixel_data",
        ) from exc


def iter_decoded(frames: list[FrameHeader]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (position in ``frames``, stored values) for every frame, opening each file once.

    Frames of one multi-frame file are decoded in one pass over it, one frame in memory
    at a time; order follows the files, so callers place frames by the position given.
    """
    by_file: dict[str, list[int]] = {}
    for k, frame in enumerate(frames):
        by_file.setdefault(frame.display, []).append(k)
    for positions in by_file.values():
        positions.sort(key=lambda k: frames[k].frame_index)
        first = frames[positions[0]]
        indices = [frames[k].frame_index for k in positions]
        with (
            _decode_errors(first),
            first.source.open() as fp,
            closing(
                _frames_of(_pixel_source(fp, first), indices if first.number_of_frames > 1 else None)
            ) as decoded,
        ):
            for k in positions:
                with _decode_errors(frames[k]):
                    arr = next(decoded)
                yield k, _checked(arr, frames[k])


def _frames_of(source: BinaryIO | Dataset, indices: list[int] | None) -> Generator[np.ndarray, None, None]:
    # iter_pixels is a generator (typed as an Iterator): closing it releases the file.
    return cast("Generator[np.ndarray, None, None]", iter_pixels(source, indices=indices))


def _pixel_source(fp: BinaryIO, frame: FrameHeader) -> BinaryIO | Dataset:
    """What ``iter_pixels`` reads: the file itself, or for a deflated file its inflated dataset.

    ``iter_pixels`` parses a file's raw stream and cannot inflate a deflated one (it
    finds no Pixel Data), so those are read whole (they are inflated in memory anyway).
    """
    if frame.transfer_syntax == DeflatedExplicitVRLittleEndian:
        return dcmread(fp)
    return fp


def _checked(arr: np.ndarray, frame: FrameHeader) -> np.ndarray:
    if arr.shape != (frame.rows, frame.columns):
        raise DicomError(
            f"{frame.display}: decoded image is {arr.shape}, header says {frame.rows}x{frame.columns}",
            code="corrupt_pixel_data",
        )
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def stored_range(frame: FrameHeader) -> tuple[int, int]:
    """The values a frame's BitsStored/PixelRepresentation can hold."""
    if frame.pixel_representation == 1:
        return -(2 ** (frame.bits_stored - 1)), 2 ** (frame.bits_stored - 1) - 1
    return 0, 2**frame.bits_stored - 1
