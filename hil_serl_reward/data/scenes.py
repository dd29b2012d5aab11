"""Generated camera scenes with a visually defined success, for demos, tests and training.

A red disc slides back and forth across a table; the task counts as a success while the
disc is inside the green target square. Each camera key sees the same world from its own
viewpoint (shift, zoom, brightness), so a classifier needs every view to agree.
"""
import math
import zlib
from typing import Tuple

import cv2
import numpy as np

TARGET_X = (0.62, 0.86)   # target square, in world x (0..1)
TARGET_Y = (0.38, 0.62)


class SyntheticScene:
    def __init__(self, width: int = 640, height: int = 480, period_s: float = 4.0,
                 seed: int = 0) -> None:
        self.width, self.height, self.period_s = width, height, period_s
        rng = np.random.default_rng(seed)
        # a small bank of sensor-noise frames: drawing fresh noise for every 1280x720 frame
        # would cost the simulator more CPU than the classifier it feeds
        self._noise = [rng.integers(0, 25, (height, width, 3), dtype=np.uint8) for _ in range(4)]
        self._renders = 0
        self._backgrounds = {}

    def object_position(self, t: float) -> Tuple[float, float]:
        phase = (t % self.period_s) / self.period_s
        x = 0.12 + 0.74 * (0.5 - 0.5 * math.cos(2 * math.pi * phase))
        y = 0.5 + 0.06 * math.sin(4 * math.pi * phase)
        return x, y

    def success(self, t: float) -> bool:
        x, y = self.object_position(t)
        return TARGET_X[0] <= x <= TARGET_X[1] and TARGET_Y[0] <= y <= TARGET_Y[1]

    def render(self, key: str, t: float) -> np.ndarray:
        """RGB uint8 (height, width, 3) view of camera `key` at time `t`."""
        view = zlib.crc32(key.encode()) % 997
        zoom = 1.0 + (view % 5) * 0.08
        shift_x = ((view // 5) % 7 - 3) * 0.02
        shift_y = ((view // 35) % 5 - 2) * 0.02
        brightness = 0.85 + (view % 3) * 0.1

        def to_px(x: float, y: float) -> Tuple[int, int]:
            px = ((x - 0.5) * zoom + 0.5 + shift_x) * self.width
            py = ((y - 0.5) * zoom + 0.5 + shift_y) * self.height
            return int(round(px)), int(round(py))

        if key not in self._backgrounds:
            background = np.empty((self.height, self.width, 3), np.uint8)
            background[:] = (150 * brightness, 120 * brightness, 90 * brightness)
            self._backgrounds[key] = background
        image = self._backgrounds[key].copy()
        cv2.rectangle(image, to_px(TARGET_X[0], TARGET_Y[0]), to_px(TARGET_X[1], TARGET_Y[1]),
                      (40, 200, 60), thickness=max(2, self.width // 160))
        radius = int(0.07 * zoom * min(self.width, self.height))
        cv2.circle(image, to_px(*self.object_position(t)), radius, (220, 30, 30), thickness=-1)
        self._renders += 1
        noisy = cv2.add(image, self._noise[self._renders % len(self._noise)])
        return cv2.subtract(noisy, (12, 12, 12, 0))


def labelled_samples(keys, count: int, seed: int = 0, width: int = 320, height: int = 240,
                     crops=None):
    """`count` random moments of the scene, each camera cropped (`crops[key]`, default the
    whole frame) and resized to 128x128 as the node would, with their success labels: a
    learnable set for tests and demos."""
    from hil_serl_reward.pipeline.preprocessing import Crop, preprocess
    crops = crops or {}
    scene = SyntheticScene(width, height, seed=seed)
    times = np.random.default_rng(seed).uniform(0, scene.period_s, count)
    images = {k: np.stack([preprocess(scene.render(k, t), crops.get(k, Crop())) for t in times])
              for k in keys}
    labels = np.array([scene.success(t) for t in times], np.int32)
    return images, labels
