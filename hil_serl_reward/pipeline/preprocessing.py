"""hil-serl's image pipeline: crop the full-resolution frame, cv2.resize to 128x128, RGB uint8.

hil-serl (franka_env.get_im, hil-serl-classifier.md §5) does `IMAGE_CROP[key](bgr_frame)`
(numpy slicing), `cv2.resize(crop, (128, 128))` (INTER_LINEAR, aspect ratio not kept), then
BGR->RGB. Crop and resize act on each channel alone, so converting to RGB first gives the
same pixels. Crops are written as the slice inside `img[...]`: "150:450, 350:1100",
"50:-200, 200:-200", ":, 250:", "200:, :, :" — the same semantics as the upstream lambdas,
negative bounds included. An empty string keeps the whole frame.
"""
import dataclasses
import re
from typing import List, Optional, Tuple

import cv2
import numpy as np

from hil_serl_reward.model.constants import IMAGE_SIZE

INTERPOLATION = cv2.INTER_LINEAR
_BOUND = r'\s*(-?\d+)?\s*'
_SLICE = re.compile(rf'^{_BOUND}(?::{_BOUND}(?::{_BOUND})?)?$')


class CropError(ValueError):
    """A crop that cannot be parsed, or that leaves nothing of a frame."""


@dataclasses.dataclass(frozen=True)
class Crop:
    rows: slice = dataclasses.field(default_factory=lambda: slice(None))
    cols: slice = dataclasses.field(default_factory=lambda: slice(None))
    text: str = ''

    def apply(self, frame: np.ndarray) -> np.ndarray:
        cropped = frame[self.rows, self.cols]
        if cropped.shape[0] == 0 or cropped.shape[1] == 0:
            raise CropError(f"crop '{self.text}' leaves nothing of a "
                            f'{frame.shape[1]}x{frame.shape[0]} frame')
        return cropped

    def past_frame(self, width: int, height: int) -> List[str]:
        """The bounds that reach past a width x height frame, e.g. 'cols bound 1100 (640
        cols)'. Slicing clips them without a word, in hil-serl too: the model then sees
        less of the scene than the crop says, nearly always because the camera sends
        another size than the crop was written for (hil-serl's crops are for 1280x720)."""
        return [f'{name} bound {bound} ({size} {name})'
                for name, piece, size in (('rows', self.rows, height), ('cols', self.cols, width))
                for bound in (piece.start, piece.stop)
                if bound is not None and not -size <= bound <= size]

    def box_on(self, width: int, height: int) -> Tuple[int, int, int, int]:
        """The pixels the crop takes of a width x height frame as (top, bottom, left, right),
        bottom and right exclusive; a reversed slice (a flipped camera) by the pixels it
        takes. CropError if it takes none."""
        rows, cols = range(*self.rows.indices(height)), range(*self.cols.indices(width))
        if not rows or not cols:
            raise CropError(f"crop '{self.text}' leaves nothing of a {width}x{height} frame")
        return min(rows), max(rows) + 1, min(cols), max(cols) + 1

    def describe_on(self, width: int, height: int) -> str:
        """'rows 150:450, cols 350:640': what the crop takes of a width x height frame."""
        top, bottom, left, right = self.box_on(width, height)
        return f'rows {top}:{bottom}, cols {left}:{right}'


def _parse_slice(text: str, crop: str) -> slice:
    match = _SLICE.match(text)
    if not match or (':' not in text and match.group(1) is None):
        raise CropError(f"crop '{crop}': '{text.strip()}' is not a slice like 150:450 or :-200")
    if ':' not in text:
        raise CropError(f"crop '{crop}': '{text.strip()}' selects a single row/column; "
                        f"write a range, e.g. {text.strip()}:{int(match.group(1)) + 1}")
    start, stop, step = (None if g is None else int(g) for g in match.groups())
    if step == 0:
        raise CropError(f"crop '{crop}': slice step cannot be zero")
    return slice(start, stop, step)


FrameSize = Tuple[int, int]         # (width, height)


def parse_frame_size(text: Optional[str]) -> Optional[FrameSize]:
    """'1280x720' -> (1280, 720); '' -> None (any size). The size a crop was written for:
    its bounds only mean what they were chosen to on frames of that size."""
    if text is not None and not isinstance(text, str):
        raise CropError(f'frame size {text!r}: expected WIDTHxHEIGHT such as "1280x720"')
    text = (text or '').strip()
    if not text:
        return None
    match = re.fullmatch(r'(\d+)\s*[xX]\s*(\d+)', text)
    if not match or not int(match.group(1)) or not int(match.group(2)):
        raise CropError(f"frame size '{text}': expected WIDTHxHEIGHT such as 1280x720")
    return int(match.group(1)), int(match.group(2))


def parse_crop(text: Optional[str]) -> Crop:
    """The slices inside hil-serl's `img[...]`: 'rows', 'rows, cols' or 'rows, cols,
    channels' (egg_flip's `img[200:, :, :]` is '200:, :, :'); '' is the full frame. The
    channel slice must keep the three channels the model takes."""
    text = (text or '').strip()
    if not text:
        return Crop()
    parts = text.split(',')
    if len(parts) > 3:
        raise CropError(f"crop '{text}': expected 'rows', 'rows, cols' or 'rows, cols, "
                        f"channels' such as '150:450, 350:1100'")
    slices = [_parse_slice(part, text) for part in parts] + [slice(None)] * (3 - len(parts))
    if slice(None).indices(3) != slices[2].indices(3):
        raise CropError(f"crop '{text}': the channel slice '{parts[2].strip()}' does not keep "
                        f"all three colour channels, which the classifier takes")
    return Crop(slices[0], slices[1], text)


def preprocess(frame_rgb: np.ndarray, crop: Crop, size: Tuple[int, int] = IMAGE_SIZE
               ) -> np.ndarray:
    """Full RGB frame -> the (128, 128, 3) uint8 image the classifier was trained on."""
    cropped = np.ascontiguousarray(crop.apply(frame_rgb))
    return cv2.resize(cropped, (size[1], size[0]), interpolation=INTERPOLATION)
