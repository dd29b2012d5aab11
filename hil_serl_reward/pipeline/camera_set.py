"""From a synchronised set of camera messages to classifier inputs and a reward (no ROS).

The reward node and the data recorder share this: the recorder stores exactly the pixels
the node classifies.
"""
import dataclasses
import time
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from hil_serl_reward.pipeline.decision import above_threshold, winning_target
from hil_serl_reward.pipeline.image_conversion import ImageConverter, ImageError, describe
from hil_serl_reward.pipeline.preprocessing import Crop, CropError, FrameSize, preprocess

if TYPE_CHECKING:   # types only: the launch files import Camera under a Python without JAX
    from hil_serl_reward.model.inference import RewardClassifier
    from hil_serl_reward.model.stages import StageClassifiers


@dataclasses.dataclass(frozen=True)
class Camera:
    key: str
    topic: str
    crop: Crop
    compressed: bool = False
    frame_size: Optional[FrameSize] = None     # the size the crop is for; None: any size


class CameraSetError(ValueError):
    """One camera of a set could not be used; names the camera, the reason and the image."""

    def __init__(self, camera: Camera, reason: str, detail: str, info: str) -> None:
        super().__init__(f"camera '{camera.key}' on {camera.topic}: {detail} [{info}]")
        self.camera = camera
        self.reason = reason


class CameraSetPreprocessor:
    """Converts, crops and resizes each camera's frame as hil-serl does."""

    def __init__(self, cameras: Sequence[Camera], converter: ImageConverter) -> None:
        self.cameras = tuple(cameras)
        self.converter = converter
        self.convert_s = 0.0    # time spent in the last call, for the latency breakdown
        self.resize_s = 0.0
        # each camera's frame size (width, height) in the last call: the crop is only
        # what it was written for on frames of the size it was written for
        self.frame_sizes: Dict[str, Tuple[int, int]] = {}

    def __call__(self, messages: Sequence[Any]) -> Dict[str, np.ndarray]:
        images = {}
        self.convert_s = self.resize_s = 0.0
        for camera, msg in zip(self.cameras, messages):
            try:
                start = time.perf_counter()
                frame = self.converter.to_rgb(msg)
                converted = time.perf_counter()
                self.frame_sizes[camera.key] = (frame.shape[1], frame.shape[0])
                images[camera.key] = preprocess(frame, camera.crop)
                self.convert_s += converted - start
                self.resize_s += time.perf_counter() - converted
            except ImageError as exc:
                raise CameraSetError(camera, exc.reason, str(exc), str(describe(msg))) from exc
            except CropError as exc:
                raise CameraSetError(camera, 'crop', str(exc), str(describe(msg))) from exc
        return images


class FrameSizes:
    """Each camera's frame size in the sets used, and whether its crop fits frames of that
    size. A crop that reaches past the frame is clipped without a word (numpy slicing, in
    hil-serl too): the model then sees another part of the scene than the one the crop was
    chosen for, nearly always a camera sending another size than the crop was written for
    (hil-serl's crops are for its cameras' 1280x720 frames). Updated by the worker, read by
    diagnostics: each change replaces the dicts whole."""

    def __init__(self, cameras: Sequence[Camera]) -> None:
        self.cameras = tuple(cameras)
        self.sizes: Dict[str, Tuple[int, int]] = {}        # key -> (width, height)
        self.problems: Dict[str, str] = {}                 # key -> what the crop does there

    def update(self, sizes: Mapping[str, Tuple[int, int]]) -> None:
        """`sizes` of one set (CameraSetPreprocessor.frame_sizes); only a change is looked
        at."""
        for camera in self.cameras:
            size = sizes.get(camera.key)
            if size is None or size == self.sizes.get(camera.key):
                continue
            self.sizes = {**self.sizes, camera.key: size}
            problems = {k: v for k, v in self.problems.items() if k != camera.key}
            past = camera.crop.past_frame(*size)
            if past:
                problems[camera.key] = (
                    f"camera '{camera.key}': crop '{camera.crop.text}' reaches past its "
                    f"{size[0]}x{size[1]} frames ({', '.join(past)}): the model sees "
                    f'{camera.crop.describe_on(*size)} of them; is the camera at the size the '
                    f'crop was written for (hil-serl: 1280x720)?')
            self.problems = problems

    def problem(self) -> Optional[str]:
        return '; '.join(self.problems[c.key] for c in self.cameras
                         if c.key in self.problems) or None

    def diagnostic_values(self) -> Dict[str, str]:
        return {f'{key} frame size': f'{width}x{height}'
                for key, (width, height) in self.sizes.items()}


@dataclasses.dataclass(frozen=True)
class RewardResult:
    stamp_ns: int
    logit: float            # binary: the logit; n-way: the winning class's
    probability: float      # binary: of success; n-way: of the target classes together
    success: bool
    class_probabilities: Tuple[float, ...] = ()     # n-way: softmax, in the classes' order
    winner: int = -1                                # n-way: the argmax class

    @property
    def reward(self) -> float:
        return 1.0 if self.success else 0.0


class NonFiniteOutput(ValueError):
    """The classifier returned NaN or inf; nothing is published for that set."""


def classify_sets(image_sets: Sequence[Dict[str, np.ndarray]], classifier: 'RewardClassifier',
                  threshold: float, stamps: Sequence[int], targets: Sequence[int] = ()
                  ) -> Tuple[List[Union[RewardResult, NonFiniteOutput]], float]:
    """One inference for every set (one per rig): each set's result in order, and the
    seconds the inference took. Binary: success when the probability is above `threshold`.
    n-way: when the winning class is one of `targets` with a probability of at least
    `threshold`. A set whose output is not finite gets a NonFiniteOutput in its place: the
    other rigs' sets are still good."""
    batch = {key: np.stack([images[key] for images in image_sets])
             for key in image_sets[0]}
    start = time.perf_counter()
    prediction = classifier.predict(batch)
    inference_s = time.perf_counter() - start
    return [_decide(logits, probabilities, threshold, stamp, targets)
            for logits, probabilities, stamp in
            zip(prediction.logits, prediction.probabilities, stamps)], inference_s


def classify_stages(images: Dict[str, np.ndarray], stages: 'StageClassifiers',
                    thresholds: Mapping[str, float], stamp: int
                    ) -> Tuple[Dict[str, Union[RewardResult, NonFiniteOutput]], float]:
    """One inference for one set and every stage: each stage's result (binary, success above
    its own threshold) and the seconds the inference took."""
    start = time.perf_counter()
    predictions = stages.predict(images)
    inference_s = time.perf_counter() - start
    return {name: _decide(prediction.logits[0], prediction.probabilities[0],
                          thresholds[name], stamp, ())
            for name, prediction in predictions.items()}, inference_s


def _decide(logits: np.ndarray, probabilities: np.ndarray, threshold: float, stamp_ns: int,
            targets: Sequence[int]) -> Union[RewardResult, NonFiniteOutput]:
    logits = np.asarray(logits, np.float64)
    probabilities = np.atleast_1d(np.asarray(probabilities, np.float64))
    if not (np.isfinite(logits).all() and np.isfinite(probabilities).all()):
        return NonFiniteOutput(f'classifier output is not finite (logits {logits.tolist()}, '
                               f'probabilities {probabilities.tolist()})')
    if logits.shape[-1] == 1:
        probability = float(probabilities[0])
        return RewardResult(stamp_ns, float(logits[0]), probability,
                            above_threshold(probability, threshold))
    success, winner = winning_target(probabilities, targets, threshold)
    return RewardResult(stamp_ns, float(logits[winner]),
                        float(sum(probabilities[i] for i in targets)), success,
                        tuple(float(p) for p in probabilities), winner)


class ConsecutiveSuccess:
    """Debounces the success decision: success only once `needed` processed sets in a row
    were above the threshold, so that one misclassified frame cannot end an episode.
    `needed` = 1 is hil-serl's rule, each set on its own."""

    def __init__(self, needed: int = 1) -> None:
        self.needed = needed
        self.streak = 0

    def __call__(self, result: RewardResult) -> RewardResult:
        self.streak = self.streak + 1 if result.success else 0
        return dataclasses.replace(result, success=self.streak >= self.needed)


def set_stamp(stamps: Sequence[int]) -> int:
    """The stamp a set is reported under: its newest frame."""
    return max(stamps)
