"""The reward node's parameters: names, defaults, descriptions and validation (no ROS).

Per-camera parameters are declared once `image_keys` is known:
`cameras.<key>.topic`, `.crop`, `.compressed`, `.frame_size`. A camera's
`cameras.<key>.driver` block belongs to the launch file (hil_serl_reward.ros.drivers): the
node neither declares nor refuses it.
Validators return None when a value is acceptable, else the reason it is not; the node
uses them at start-up and for every runtime change.
"""
import dataclasses
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from hil_serl_reward.model.constants import CONVOLUTIONS, DEVICES
from hil_serl_reward.pipeline.camera_set import Camera
from hil_serl_reward.pipeline.image_conversion import DEFAULT_MAX_PIXELS
from hil_serl_reward.pipeline.preprocessing import CropError, parse_crop, parse_frame_size

RELIABILITIES = ('best_effort', 'reliable')
Validator = Callable[[Any], Optional[str]]


@dataclasses.dataclass(frozen=True)
class Range:
    """A numeric range validator; the node also advertises it in the parameter descriptor."""

    low: float
    high: float
    low_open: bool = False

    def __call__(self, value: Any) -> Optional[str]:
        bracket = '(' if self.low_open else '['
        if isinstance(value, bool) or not isinstance(value, (int, float)):   # a file's text
            return f'must be a number in {bracket}{self.low}, {self.high}], got {value!r}'
        ok = (value > self.low if self.low_open else value >= self.low) and value <= self.high
        return None if ok else f'must be in {bracket}{self.low}, {self.high}], got {value}'


_in_range = Range


def _one_of(choices: Sequence[str]) -> Validator:
    def check(value: Any) -> Optional[str]:
        return None if value in choices else f'must be one of {list(choices)}, got {value!r}'
    return check


def _image_keys(value: Any) -> Optional[str]:
    if not isinstance(value, (list, tuple)):       # `image_keys: []` arrives without a type
        return (f'needs a list of camera key strings, e.g. ["wrist_1", "front"], got '
                f'{value!r}')
    keys = list(value)
    if not keys:
        return 'needs at least one camera key'
    if len(set(keys)) != len(keys):
        return f'keys must be unique, got {keys}'
    if any(not k or not k.replace('_', '').replace('/', '').isalnum() for k in keys):
        return f'keys must be letters, digits, _ or /, got {keys}'
    return None


RIG_NAME = re.compile(r'[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*')
STAGE_NAME = re.compile(r'[A-Za-z][A-Za-z0-9_]*')


def _name_list(value: Any, pattern: re.Pattern, what: str, example: str, rule: str,
               reserved: Sequence[str] = ()) -> Optional[str]:
    """A list of unique names, each matching `pattern` and none `reserved`."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        return f'needs a list of {what} strings, e.g. {example}, got {value!r}'
    bad = [name for name in value if not pattern.fullmatch(name) or name in reserved]
    if bad:
        return f'each {rule}, got {bad}'
    if len(set(value)) != len(value):
        return f'names must be unique, got {list(value)}'
    return None


def _rigs(value: Any) -> Optional[str]:
    return _name_list(value, RIG_NAME, 'namespace', '["left", "right"]',
                      'rig is a relative namespace (letters, digits, _ and /, starting with a '
                      'letter)')


def _stages(value: Any) -> Optional[str]:
    return _name_list(value, STAGE_NAME, 'stage name', '["grasp", "place"]',
                      'stage is a name of letters, digits and _, starting with a letter, and '
                      'not a parameter of the node',
                      reserved=[p.name for p in NODE_PARAMETERS] + ['cameras', 'qos_overrides'])


def _names(value: Any) -> Optional[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        return f'needs a list of class name strings, got {value!r}'
    if len(set(value)) != len(value):
        return f'names must be unique, got {list(value)}'
    return None


def _parses(parse: Callable[[Any], Any]) -> Validator:
    """A validator from a parser that raises CropError with the reason."""
    def check(value: Any) -> Optional[str]:
        try:
            parse(value)
        except CropError as exc:
            return str(exc)
        return None
    return check


_crop = _parses(parse_crop)
_frame_size = _parses(parse_frame_size)


def _file_name_word(value: Any) -> Optional[str]:
    """A name that stays a file name inside output_dir: no separators, no '..', no leading
    dot or dash."""
    if re.fullmatch(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,99}', value or '') and '..' not in value:
        return None
    return (f'must be a file-name-safe word (letters, digits, _ . -, not starting with . or -, '
            f'no ..), got {value!r}')


def _topic(value: Any) -> Optional[str]:
    return None if value and ' ' not in value else f'not a topic name: {value!r}'


@dataclasses.dataclass(frozen=True)
class Parameter:
    name: str
    default: Any
    description: str
    read_only: bool = True
    validate: Optional[Validator] = None


NODE_PARAMETERS: List[Parameter] = [
    Parameter('checkpoint_path', '',
              'classifier_ckpt/ folder or one checkpoint_<N> (hil-serl or ours); changing it '
              'at runtime reloads the model, a failed load keeps the old one',
              read_only=False),
    Parameter('autostart', True,
              'configure and activate at start-up (a plain node); false leaves the lifecycle '
              'transitions to a manager (ros2 lifecycle set <node> configure / activate)'),
    Parameter('reject_unknown_parameters', True,
              'a parameter given for this node (params file, -p) that it does not declare, '
              'e.g. a misspelt one, stops start-up naming the nearest known name; false only '
              'warns'),
    Parameter('random_init', False,
              'serve an untrained, randomly initialised classifier when checkpoint_path is '
              'empty (demos and tests only)'),
    Parameter('image_keys', ['wrist_1', 'front'],
              "camera keys in the checkpoint's classifier_keys order (the concatenation order)",
              validate=_image_keys),
    Parameter('rigs', [],
              'serve several rigs with the same checkpoint, e.g. ["left", "right"]: each '
              "rig's cameras are read under its namespace (left/<cameras.<key>.topic>) and "
              'its results published there (left/reward, ...); sets of rigs that are waiting '
              'together are classified in one batch; empty = one rig, topics as given',
              validate=_rigs),
    Parameter('stages', [],
              "one classifier per stage of a multi-stage task (hil-serl's "
              'MultiStageBinaryRewardClassifierWrapper), all on these cameras, e.g. ["grasp", '
              '"place"]: <stage>.checkpoint_path and <stage>.threshold per stage, results '
              'under <stage>/ (grasp/reward, ...); stages holding the same backbone (hil-serl '
              'trains them so) share one backbone pass per set; empty = one classifier',
              validate=_stages),
    Parameter('threshold', 0.5, 'reward is 1.0 when the success probability exceeds this '
              '(float32, as hil-serl); n-way: the least probability of a winning target class',
              read_only=False, validate=_in_range(0.0, 1.0)),
    Parameter('class_names', [],
              "an n-way checkpoint's classes in its output order (hil-serl's egg_flip: 3); "
              'empty = class_0, class_1, ...; binary checkpoints: success and failure',
              validate=_names),
    Parameter('target_classes', [],
              'n-way: the classes that count as success; a set succeeds when the winning '
              'class is one of them with a probability of at least `threshold`',
              validate=_names),
    Parameter('min_consecutive', 1, 'success (reward 1.0) only after this many processed sets '
              'in a row above the threshold; 1 = hil-serl, each set on its own',
              read_only=False, validate=_in_range(1, 1000)),
    Parameter('frame_id', '',
              "header.frame_id of the `classification` results; empty = the frame_id of the "
              "newest image of the set (the one whose stamp the result carries)"),
    Parameter('sync_slop', 0.0,
              'largest stamp spread (s) of a synchronised camera set; 0 = auto: from the '
              "cameras' measured periods, enough for free-running cameras at any phase "
              '((1 - 1/N) x the slowest period + jitter; half the period for two cameras)',
              validate=_in_range(0.0, 10.0)),
    Parameter('max_stamp_ahead', 0.1,
              "seconds a frame's stamp may be ahead of this node's clock (clock skew between "
              "hosts); a frame stamped further ahead is refused (stamp_ahead), so one bad "
              "stamp cannot make its camera's next frames look older than it",
              validate=_in_range(0.0, 3600.0, low_open=True)),
    Parameter('max_image_pixels', DEFAULT_MAX_PIXELS,
              'largest image (width x height) accepted; a compressed image is checked from '
              'its PNG/JPEG header before decoding; larger ones are refused (too_large)',
              validate=_in_range(1, 10**9)),
    Parameter('sync_queue_size', 10, 'messages kept per camera while waiting for a match',
              validate=_in_range(1, 1000)),
    Parameter('qos_reliability', 'best_effort',
              'camera subscription reliability (best_effort = sensor data QoS; reliable '
              'matches drivers that only offer reliable)',
              validate=_one_of(RELIABILITIES)),
    Parameter('device', 'auto', 'auto (GPU when JAX has one), cpu or gpu',
              validate=_one_of(DEVICES)),
    Parameter('convolutions', 'auto',
              "how the model computes: auto (fast on a CPU with a shared backbone, else "
              "direct), fast (Winograd), direct (plain convolutions, the cameras as one "
              "batch), or hil-serl (hil-serl's model code op for op: its logits to the bit)",
              validate=_one_of(tuple(CONVOLUTIONS))),
    Parameter('keep_cpus_awake', True,
              'while serving on the CPU, wake each CPU every 0.2 ms from an idle-priority '
              'helper: on VMs a CPU idle between frames came back slow (about 2x per set at '
              '15 Hz); costs about 0.015 cores per CPU; false for a real-time PC'),
    Parameter('pin_xla_threads', True,
              "while serving on the CPU, pin each of XLA's compute threads to a CPU of its "
              'own: after an idle frame period the kernel woke them on one CPU (a 15 Hz call '
              '8.4-10.5 ms, pinned 5.1-5.7, back to back 4.3); costs no CPU time; false '
              'leaves their placement to the kernel'),
    Parameter('cpu_latency_limit_us', -1,
              "while serving, hold the kernel's CPU latency request "
              '(/dev/cpu_dma_latency) at this many microseconds: 0 = idle CPUs poll instead of '
              'halting (a 15 Hz call 1.13-1.28x back to back -> 1.07-1.20x; the cores run '
              'instead of sleeping); needs root or a udev rule; -1 = no request',
              validate=_in_range(-1, 10**6)),
    Parameter('debug_image_rate', 5.0,
              'most ~/debug_image messages per second (the model inputs, probability and '
              'decision drawn for a person); published only while something subscribes; 0 = '
              'never', read_only=False, validate=_in_range(0.0, 100.0)),
    Parameter('review_dir', '',
              'folder that keeps every set the node calls a success, as model inputs in '
              "hil-serl's classifier_data format, one file per set, for finding false "
              "positives; with rigs, a folder per rig in it; '' = off"),
    Parameter('camera_timeout', 1.0, 'seconds without images before diagnostics warn',
              read_only=False, validate=_in_range(0.0, 3600.0, low_open=True)),
    Parameter('diagnostics_period', 1.0, 'seconds between diagnostics messages',
              validate=_in_range(0.0, 60.0, low_open=True)),
]

_SHARED_INPUT = ('image_keys', 'sync_slop', 'sync_queue_size', 'qos_reliability',
                 'max_stamp_ahead', 'max_image_pixels', 'camera_timeout',
                 'reject_unknown_parameters')
RECORDER_PARAMETERS: List[Parameter] = [p for p in NODE_PARAMETERS if p.name in _SHARED_INPUT] + [
    Parameter('label_topic', 'success_label',
              'std_msgs/Bool: sets arriving while it is true are recorded as successes'),
    Parameter('output_dir', 'classifier_data', 'folder for the *_success_images_* and '
              '*_failure_images_* pickles'),
    Parameter('experiment', 'experiment', 'file name prefix, as hil-serl\'s exp_name; a '
              'file-name-safe word (letters, digits, _ . -)', validate=_file_name_word),
    Parameter('successes_needed', 200, 'stop after this many successes (hil-serl default 200)',
              validate=_in_range(1, 10**7)),
    Parameter('flush_every', 50, 'write a chunk file after this many new transitions',
              validate=_in_range(1, 10**6)),
    Parameter('state_dim', 0, 'add a zero `state` (1, state_dim) to each observation for '
              'upstream trainers whose env has proprio state; 0 = images only',
              validate=_in_range(0, 4096)),
]

STAGE_PARAMETERS: List[Parameter] = [
    Parameter('checkpoint_path', '', "this stage's binary checkpoint (as checkpoint_path); "
              'changing it at runtime reloads the stage, the others serving on',
              read_only=False),
    Parameter('threshold', 0.5, "this stage's threshold (default: the node's `threshold`)",
              read_only=False, validate=_in_range(0.0, 1.0)),
]

CAMERA_PARAMETERS: List[Parameter] = [
    Parameter('topic', '', 'image topic of this camera (default <key>/image_raw; remap freely)',
              validate=_topic),
    Parameter('crop', '', "hil-serl crop on the full frame as 'rows, cols' slices, e.g. "
              "'150:450, 350:1100' or '50:-200, 200:-200'; empty = whole frame",
              validate=_crop),
    Parameter('compressed', False, 'subscribe to sensor_msgs/CompressedImage on '
              "'<topic>/compressed' (image_transport's name; JPEG, PNG or TIFF, honouring "
              "its format field)"),
    Parameter('frame_size', '', "the frame size the crop is written for, 'WIDTHxHEIGHT' "
              "(hil-serl's cameras: 1280x720): frames of another size are refused "
              '(frame_size), as the crop would take another part of the scene; empty = any '
              'size', validate=_frame_size),
]


DRIVER_BLOCK = 'driver'


def transport_topic(topic: str, compressed: bool) -> str:
    """The topic a camera is subscribed on: image_transport publishes compressed frames on
    `<base>/compressed`; a topic already ending so is taken as it is."""
    if not compressed or topic.rstrip('/').endswith('/compressed') or topic == 'compressed':
        return topic
    return f"{topic.rstrip('/')}/compressed"


def is_driver_parameter(name: str, image_keys: Sequence[str]) -> bool:
    """`cameras.<key>.driver.*`: read by the launch file, not by the node."""
    return any(name.startswith(f'cameras.{key}.{DRIVER_BLOCK}.') for key in image_keys)


def camera_parameter_name(key: str, field: str) -> str:
    return f'cameras.{key}.{field}'


def camera_defaults(key: str) -> Dict[str, Any]:
    return {**{p.name: p.default for p in CAMERA_PARAMETERS}, 'topic': f'{key}/image_raw'}


def with_defaults(values: Mapping[str, Any]) -> Dict[str, Any]:
    """`values` completed with the node's defaults, cameras.<key>.* included: what the node
    would run with, for tools that read a params file without ROS."""
    full = {p.name: p.default for p in NODE_PARAMETERS}
    full.update(values)
    for key in full['image_keys']:
        for field, default in camera_defaults(key).items():
            full.setdefault(camera_parameter_name(key, field), default)
    return full


def cameras_from(values: Mapping[str, Any]) -> List[Camera]:
    def get(key: str, field: str) -> Any:
        return values[camera_parameter_name(key, field)]
    return [Camera(key, transport_topic(get(key, 'topic'), get(key, 'compressed')),
                   parse_crop(get(key, 'crop')), get(key, 'compressed'),
                   parse_frame_size(get(key, 'frame_size')))
            for key in values['image_keys']]


def stage_parameter_name(stage: str, field: str) -> str:
    return f'{stage}.{field}'


def node_value_with_stages(name: str, value: Any, stages: Sequence[str]) -> str:
    """Why the node's own `name` (checkpoint_path, threshold) is refused with stages, at
    start-up and at runtime alike."""
    own = ', '.join(stage_parameter_name(stage, name) for stage in stages)
    return f'{name}: {value!r} with stages: each stage has its own ({own})'


def all_parameter_names(image_keys: Sequence[str], stages: Sequence[str] = ()) -> List[str]:
    names = [p.name for p in NODE_PARAMETERS]
    names += [camera_parameter_name(k, p.name) for k in image_keys for p in CAMERA_PARAMETERS]
    names += [stage_parameter_name(s, p.name) for s in stages for p in STAGE_PARAMETERS]
    return names


def validator_for(name: str) -> Optional[Parameter]:
    for parameter in NODE_PARAMETERS + RECORDER_PARAMETERS:
        if parameter.name == name:
            return parameter
    field = name.rsplit('.', 1)[-1]
    group = CAMERA_PARAMETERS if name.startswith('cameras.') else \
        STAGE_PARAMETERS if name.count('.') == 1 else []
    return next((parameter for parameter in group if parameter.name == field), None)


def resolve_classes(n_way: int, class_names: Sequence[str], target_classes: Sequence[str]
                    ) -> Tuple[Tuple[str, ...], Tuple[int, ...]]:
    """The class names of a checkpoint's outputs and the indices of the success classes;
    ValueError saying what was expected and found. Binary: ('success', 'failure'), no
    targets (the threshold decides)."""
    if n_way == 2:
        if class_names or target_classes:
            raise ValueError(f'class_names {list(class_names)} / target_classes '
                             f'{list(target_classes)} are for n-way checkpoints; this one is '
                             f'binary (one logit): leave them empty')
        return ('success', 'failure'), ()
    names = tuple(class_names) or tuple(f'class_{i}' for i in range(n_way))
    if len(names) != n_way:
        raise ValueError(f'the checkpoint is {n_way}-way, class_names has {len(names)}: '
                         f'{list(names)}')
    unknown = [name for name in target_classes if name not in names]
    if not target_classes or unknown:
        raise ValueError(f'a {n_way}-way checkpoint needs target_classes, the classes that '
                         f'count as success, among class_names {list(names)}; got '
                         f'{list(target_classes)}')
    return names, tuple(names.index(name) for name in target_classes)


def check(values: Mapping[str, Any]) -> List[str]:
    """Every problem with a full set of parameter values, as 'name: reason'."""
    problems = []
    for name, value in values.items():
        parameter = validator_for(name)
        if parameter and parameter.validate:
            reason = parameter.validate(value)
            if reason:
                problems.append(f'{name}: {reason}')
    problems += _crops_for_their_frame_size(values)
    if values.get('rigs'):
        problems += [f"{name}: {value!r} is absolute; with rigs each rig's cameras are read "
                     f"under its namespace, so camera topics must be relative"
                     for name, value in values.items()
                     if name.startswith('cameras.') and name.endswith('.topic')
                     and str(value).startswith(('/', '~'))]
    if values.get('stages'):
        if values.get('rigs'):
            problems.append(f"stages: {list(values['stages'])} with rigs "
                            f"{list(values['rigs'])}: a node serves several rigs with one "
                            f"classifier or one rig's stages, not both (a node per rig)")
        if values.get('checkpoint_path'):
            problems.append(node_value_with_stages('checkpoint_path', values['checkpoint_path'],
                                                   values['stages']))
        problems += [f"{name}: {list(values[name])} are for n-way checkpoints; stages are "
                     f"binary" for name in ('class_names', 'target_classes') if values.get(name)]
    return problems


def _crops_for_their_frame_size(values: Mapping[str, Any]) -> List[str]:
    """A crop must lie within the frame size it is written for: one past it would be clipped
    on every frame (a typo, or a crop of another camera)."""
    problems = []
    for key in values.get('image_keys') or []:
        crop_name, size_name = (camera_parameter_name(key, f) for f in ('crop', 'frame_size'))
        if _crop(values.get(crop_name)) or _frame_size(values.get(size_name)):
            continue                                    # said by their own validators
        size = parse_frame_size(values.get(size_name))
        if size is None:
            continue
        crop = parse_crop(values.get(crop_name))
        try:
            past = crop.past_frame(*size)
            crop.box_on(*size)
        except CropError as exc:
            past = [str(exc)]
        if past:
            problems.append(f"{crop_name}: '{crop.text}' does not fit {size_name} "
                            f"{size[0]}x{size[1]}: {', '.join(past)}")
    return problems


def rig_cameras(cameras: Sequence[Camera], rig: str) -> List[Camera]:
    """`cameras` as one rig reads them: topics under the rig's namespace ('' = as given)."""
    return [dataclasses.replace(camera, topic=f'{rig}/{camera.topic}' if rig else camera.topic)
            for camera in cameras]
