"""The model's view as one picture (no ROS): what `~/debug_image` shows the person tuning
crops and threshold in rqt_image_view or Foxglove.

Each camera's exact model input (the 128x128 crop-resize) is enlarged by an integer factor
without smoothing, so every model pixel is a `scale` x `scale` block of the same value; the
tiles sit side by side in `image_keys` order (the concatenation order), above a caption
strip with the probability, the threshold, the decision and the set stamp. The tiles are
never drawn on: what is seen is what the classifier got.
"""
from typing import Mapping, Sequence

import cv2
import numpy as np

CAPTION_HEIGHT = 44
GAP = 4                                      # columns between tiles
SUCCESS_COLOUR = (40, 200, 60)               # RGB
FAILURE_COLOUR = (220, 60, 40)


def enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    """Each pixel as a scale x scale block of the same value: no smoothing to hide pixels."""
    return np.repeat(np.repeat(np.asarray(image), scale, axis=0), scale, axis=1)


def tile_origin(index: int, scale: int, size: int = 128) -> int:
    """Column where camera `index`'s tile starts."""
    return index * (size * scale + GAP)


def model_view(images: Mapping[str, np.ndarray], keys: Sequence[str], probability: float,
               threshold: float, success: bool, stamp_ns: int, scale: int = 3) -> np.ndarray:
    """RGB uint8 (H, W, 3): the tiles, then the caption strip."""
    tiles = [enlarge(images[k], scale) for k in keys]
    height = tiles[0].shape[0]
    width = tile_origin(len(tiles), scale, tiles[0].shape[1] // scale) - GAP
    view = np.zeros((height + CAPTION_HEIGHT, width, 3), np.uint8)
    for index, tile in enumerate(tiles):
        left = tile_origin(index, scale, tile.shape[1] // scale)
        view[:height, left:left + tile.shape[1]] = tile
    colour = SUCCESS_COLOUR if success else FAILURE_COLOUR
    view[height:] = (30, 30, 30)
    view[height:height + 4, :] = colour
    decision = 'SUCCESS' if success else 'failure'
    seconds, nanoseconds = divmod(int(stamp_ns), 1_000_000_000)
    lines = [f'p = {probability:.4f}  threshold {threshold:g}  {decision}',
             f'{" | ".join(keys)}   stamp {seconds}.{nanoseconds:09d}']
    for row, text in enumerate(lines):
        cv2.putText(view, text, (6, height + 20 + 17 * row), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, colour if row == 0 else (220, 220, 220), 1, cv2.LINE_AA)
    return view
