"""classifier_node: synchronised cameras in; reward, success, probability and the stamped
classification out.

A managed (lifecycle) node: configure loads and compiles the classifier and makes the output
publishers, activate subscribes to the cameras and starts the inference worker, deactivate
stops both, cleanup drops the model. With `autostart` (the default) it configures and
activates itself at start-up and a configuration problem ends the process with the reason;
`autostart:=false` leaves the transitions to a lifecycle manager (`ros2 lifecycle set`).

DDS callbacks only validate a message and hand complete camera sets to a one-slot mailbox;
a worker thread converts, crops, resizes and classifies the newest set, so inference never
runs in a callback and the node never falls behind the cameras (replaced sets are counted).
With `rigs` the node serves several rigs (rig.py) with one model: each rig has its own
cameras, mailbox and outputs, and the worker classifies every rig's waiting set in one batch.
With `stages` it serves one classifier per stage of a task on one set of cameras
(model/stages.py: one call, the shared backbone run once), each stage's results under its name.
"""
import collections
import gc
import os
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter as RosParameter
from std_srvs.srv import Trigger

from hil_serl_reward.data.classifier_data import DataWriteError
from hil_serl_reward.data.review import ReviewFolder
from hil_serl_reward.model.checkpoint import CheckpointError, resolve_checkpoint
from hil_serl_reward.model.inference import DeviceError, RewardClassifier, batch_sizes_for
from hil_serl_reward.model.reward_classifier import ClassifierSpec, init_params
from hil_serl_reward.model.stages import StageClassifiers
from hil_serl_reward.model.xla_flags import (
    PREALLOCATE, share_the_gpu, use_cpu_ynn_fusions, use_gpu_command_buffers)
from hil_serl_reward.pipeline.camera_set import (
    CameraSetError, CameraSetPreprocessor, NonFiniteOutput, classify_sets, classify_stages)
from hil_serl_reward.pipeline.mailbox import take_each
from hil_serl_reward.pipeline.model_reload import ModelReload
from hil_serl_reward.pipeline.stats import Window
from hil_serl_reward.ros import classification, config, xla_threads
from hil_serl_reward.ros.camera_input import StartupError, declare_parameters
from hil_serl_reward.ros.cpu_latency import CPU_LATENCY_DEVICE, CpuLatencyRequest
from hil_serl_reward.ros.cpu_tickers import CpuTickers
from hil_serl_reward.ros.cv_bridge_probe import make_converter
from hil_serl_reward.ros.diagnostics import diagnostics_publisher
from hil_serl_reward.ros.malloc_tuning import malloc_setting
from hil_serl_reward.ros.node_main import run_node
from hil_serl_reward.ros.params_file import NODE_NAME
from hil_serl_reward.ros.rig import Rig

ClassifierLoader = Callable[[str], RewardClassifier]
Model = Union[RewardClassifier, StageClassifiers]


class ClassifierNode(LifecycleNode):
    def __init__(self, loader: Optional[ClassifierLoader] = None,
                 before_jax: Optional[Callable[[str], None]] = None, **kwargs: Any) -> None:
        """`before_jax(convolutions)` runs once the parameters are read and before anything
        starts JAX (the first load): the executable's process settings that depend on them."""
        super().__init__(NODE_NAME, **kwargs)
        # What destroy_node stops, set before anything can fail: on Kilted, rclpy's shutdown
        # also destroys a node whose __init__ raised.
        self._worker: Optional[threading.Thread] = None
        self._tickers: Optional[CpuTickers] = None
        self._xla_threads = 'not pinned'
        self._cpu_latency: Optional[CpuLatencyRequest] = None
        self._cpu_latency_state = 'no request'
        self.rigs: List[Rig] = []
        self._reloader = ModelReload(self._load_for_reload, self._reloaded)
        self._reload_problem: Optional[str] = None
        self._generation = 0            # cleanups so far: a reload started before one is void
        self._model_lock = threading.Lock()
        self._refuse_unregistered_transitions()
        self._values = declare_parameters(self, config.NODE_PARAMETERS)
        if before_jax is not None:
            before_jax(self._values['convolutions'])
        self.image_keys: Tuple[str, ...] = tuple(self._values['image_keys'])
        self.cameras = config.cameras_from(self._values)
        self.threshold = float(self._values['threshold'])
        self.stages: Tuple[str, ...] = tuple(self._values['stages'])
        name = config.stage_parameter_name
        self.stage_paths = {s: self._values[name(s, 'checkpoint_path')] for s in self.stages}
        self.stage_thresholds = {s: float(self._values[name(s, 'threshold')])
                                 for s in self.stages}
        min_consecutive = int(self._values['min_consecutive'])
        if self.stages:
            self.rigs = [Rig(self, stage, self.cameras, min_consecutive, role='stage')
                         for stage in self.stages]
        else:
            self.rigs = [Rig(self, name, config.rig_cameras(self.cameras, name),
                             min_consecutive) for name in self._values['rigs'] or ['']]
        self.camera_timeout = float(self._values['camera_timeout'])
        self.frame_id: str = self._values['frame_id']
        self.debug_image_rate = float(self._values['debug_image_rate'])
        self.class_names: Tuple[str, ...] = ()
        self.targets: Tuple[int, ...] = ()
        self.checkpoint_path = self._values['checkpoint_path']
        self._loader = loader or self._load_classifier
        self.classifier: Optional[Model] = None
        self.converter = make_converter(int(self._values['max_image_pixels']),
                                        self.get_logger().warning)
        self.preprocessor = CameraSetPreprocessor(self.cameras, self.converter)
        self._configure_failure: Optional[Exception] = None
        self._autostarting = bool(self._values['autostart'])
        self._init_counters()

        self.diagnostics_pub = diagnostics_publisher(
            self, float(self._values['diagnostics_period']), self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_service(Trigger, '~/reload', self._on_reload)
        if self._autostarting:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise self._configure_failure or StartupError('configure failed')
            self.trigger_activate()
            self._autostarting = False

    # ---- lifecycle ----------------------------------------------------------------------

    def _refuse_unregistered_transitions(self) -> None:
        """rclpy's change_state service raises RCLError, ending the process, when a request
        names a transition that does not start from the current state by id only (by
        label it answers success = false): answer such a request the same way."""
        service = self._service_change_state
        change_state = service.callback

        def guarded(request: Any, response: Any) -> Any:
            try:
                return change_state(request, response)
            except _rclpy.RCLError as exc:
                self.get_logger().warning(
                    f'refused lifecycle transition id {request.transition.id} '
                    f'{request.transition.label!r} from {self._state_machine.current_state[1]}:'
                    f' {str(exc).splitlines()[0]}')
                response.success = False
                return response
        service.callback = guarded

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            classifier = self._load_stages(self.stage_paths) if self.stages else \
                self._load_or_fail(self.checkpoint_path)
            if self._values['review_dir']:
                self._open_review_folders(Path(self._values['review_dir']))
        except Exception as exc:  # rclpy would swallow it: autostart raises it, else logged
            self._configure_failure = exc
            if not self._autostarting:
                self.get_logger().error(f'configure failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        with self._model_lock:
            self.classifier = classifier
        self.class_names, self.targets = config.resolve_classes(
            classifier.spec.n_way, self._values['class_names'], self._values['target_classes'])
        for rig in self.rigs:
            rig.create_publishers(n_way_outputs=bool(self.targets))
        if classification.UNAVAILABLE:
            self.get_logger().warning(f'{classification.TOPIC} is off: '
                                      f'{classification.UNAVAILABLE}')
        self.get_logger().info(
            f'configured: {self._model_description()} on {classifier.device}'
            + (f'; {len(self.rigs)} rigs ({", ".join(r.name for r in self.rigs)}), batches '
               f'of {", ".join(map(str, classifier.batch_sizes))} compiled'
               if len(self.rigs) > 1 and not self.stages else '')
            + (f'; stages {", ".join(self.stages)}, {classifier.backbone_passes} backbone '
               f'pass{"es" if classifier.backbone_passes > 1 else ""} per set'
               if self.stages else '')
            + (f' (a call holds at most {classifier.largest_call} sets: XLA\'s scratch for '
               f'more would page-fault on every call)'
               if not self.stages and classifier.largest_call is not None
               and classifier.largest_call < len(self.rigs) else ''))
        # What is alive now (imports, the model: about 180k objects) lives as long as the
        # node; frozen, no later collection scans it. A full collection over it took 80 ms
        # holding the GIL, and the third checkpoint reload set one off: a 2.2-2.5 period gap
        # in the results at 15 Hz (docs/performance.md). Collected first, so that no garbage
        # is frozen with it (a reconfigure collects what the last one left).
        gc.collect()
        gc.freeze()
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._init_counters()
        condition = threading.Condition()       # one worker waits on every rig's mailbox
        for rig in self.rigs:
            if self.stages and rig is not self.rigs[0]:
                rig.share_input(self.rigs[0])
            else:
                rig.subscribe(self._values, condition)
        self._worker = threading.Thread(target=self._work, args=(list(self.rigs),),
                                        name='inference', daemon=True)
        self._worker.start()
        on_cpu = self.classifier.device.platform == 'cpu'
        if self._values['cpu_latency_limit_us'] >= 0:     # a GPU's calls start on a CPU too
            self._hold_cpu_latency(self._values['cpu_latency_limit_us'])
        if self._values['keep_cpus_awake'] and on_cpu and not self._cpus_poll:
            self._tickers = CpuTickers()
        if self._values['pin_xla_threads'] and on_cpu:
            self._xla_threads = xla_threads.describe(xla_threads.pin_compute_threads())
        needed = self.rigs[0].consecutive.needed
        self.get_logger().info(
            'serving; cameras '
            + ', '.join(f"{c.key} <- {rig.input.topic(c)}"
                        f"{' (compressed)' if c.compressed else ''}"
                        f"{' crop ' + repr(c.crop.text) if c.crop.text else ''}"
                        for rig in self.rigs if rig.owns_input for c in rig.cameras)
            + f'; synchroniser: {self.rigs[0].input.subscriber.backend}; image conversion: '
            f'{self.converter.backend}; threshold '
            + (', '.join(f'{stage} {threshold:g}' for stage, threshold in
                         self.stage_thresholds.items()) if self.stages else f'{self.threshold}')
            + (f' for {needed} sets in a row' if needed > 1 else '')
            + (f'; CPU latency request {self._cpu_latency_state}' if self._cpu_latency else ''))
        return super().on_activate(state)       # enables the lifecycle publishers

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_serving()
        self.get_logger().info('deactivated: unsubscribed from the cameras, publishing '
                               'nothing; the model stays loaded')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._close_review_folders()
        with self._model_lock:
            self.classifier = None
            self._generation += 1
            self._reload_problem = None
        self._reloader.drop_waiting()
        self._init_counters()
        for rig in self.rigs:
            rig.input = None
            rig.reset_counters()
            rig.destroy_publishers()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_serving()
        return TransitionCallbackReturn.SUCCESS

    @property
    def serving(self) -> bool:
        return self._worker is not None

    def _stop_serving(self) -> None:
        """Worker first, then the subscriptions: nothing is published after this returns."""
        if self._worker is None:
            return
        for rig in self.rigs:
            rig.input.mailbox.close()
        self._worker.join(timeout=5.0)
        self._worker = None
        for rig in self.rigs:
            rig.unsubscribe()
        if self._tickers is not None:
            self._tickers.close()
            self._tickers = None
        if self._cpu_latency is not None:
            self._cpu_latency.close()
            self._cpu_latency = None
            self._cpu_latency_state = 'released (not serving)'

    def _hold_cpu_latency(self, limit_us: int) -> None:
        """cpu_latency_limit_us: where the kernel refuses (no root, no such device), the
        node serves without it and says why, in the log and in diagnostics."""
        try:
            self._cpu_latency = CpuLatencyRequest(limit_us)
        except OSError as error:
            self._cpu_latency_state = (
                f'not held: {error} (needs root or a udev rule giving this user '
                f'{CPU_LATENCY_DEVICE})')
            self.get_logger().warning(f'cpu_latency_limit_us {limit_us}: '
                                      f'{self._cpu_latency_state}; serving without it')
            return
        self._cpu_latency_state = self._cpu_latency.describe()

    @property
    def _cpus_poll(self) -> bool:
        """A request of 0 is held: idle CPUs poll, and the tickers would only slow the
        calls (measured: cpu_latency.py)."""
        return self._cpu_latency is not None and self._cpu_latency.limit_us == 0

    # ---- configuration -----------------------------------------------------------------

    def _open_review_folders(self, folder: Path) -> None:
        """`folder` for one rig; with `rigs`, a folder per rig in it (`<folder>/<rig>`), so
        that a success kept for review says which rig it came from. All or none."""
        for rig in self.rigs:
            try:
                rig.review = ReviewFolder(folder / rig.name if rig.name else folder)
            except DataWriteError as exc:
                self._close_review_folders()
                raise StartupError(f'review_dir: {exc}') from exc
            self.get_logger().info(f'{rig.label()}keeping every success for review in '
                                   f'{rig.review.writer.folder}')

    def _close_review_folders(self) -> None:
        for rig in self.rigs:
            if rig.review is not None:
                rig.review.close()
                rig.review = None

    def _device_and_form(self) -> Tuple[str, Optional[str]]:
        form = None if self._values['convolutions'] == 'auto' else self._values['convolutions']
        return self._values['device'], form

    def _load_classifier(self, path: str) -> RewardClassifier:
        device, form = self._device_and_form()
        batch_sizes = batch_sizes_for(len(self.rigs))
        if path:
            return RewardClassifier.from_checkpoint(path, image_keys=self.image_keys,
                                                    device=device, form=form,
                                                    batch_sizes=batch_sizes)
        if not self._values['random_init']:
            raise StartupError(
                'checkpoint_path is empty: set it to a classifier_ckpt/ folder or a '
                'checkpoint_<N>, or set random_init:=true to serve an untrained classifier')
        self.get_logger().warning(
            'serving an UNTRAINED, randomly initialised classifier (random_init, no '
            'checkpoint_path): its rewards mean nothing')
        spec = ClassifierSpec(self.image_keys)
        return RewardClassifier(spec, init_params(spec), device=device, form=form,
                                batch_sizes=batch_sizes)

    def _load_stages(self, paths: Dict[str, str],
                     reuse: Optional[Dict[str, RewardClassifier]] = None) -> StageClassifiers:
        """Every stage's checkpoint (those in `reuse` taken as they are: a reload of one stage
        reads only its own), served in one call; StartupError naming the stage."""
        device, form = self._device_and_form()
        classifiers = {}
        for stage, path in paths.items():
            if reuse and stage in reuse:
                classifiers[stage] = reuse[stage]
                continue
            if not path:
                raise StartupError(f"{config.stage_parameter_name(stage, 'checkpoint_path')} "
                                   f'is empty: each stage needs its own checkpoint (a '
                                   f'classifier_ckpt/ folder or a checkpoint_<N>)')
            classifiers[stage] = self._read(
                lambda: RewardClassifier.from_checkpoint(
                    path, image_keys=self.image_keys, device=device, form=form, warm_up=False),
                path, f'stage {stage!r}', stage)
        try:
            stages = StageClassifiers(classifiers)
        except (CheckpointError, ValueError) as exc:
            raise StartupError(f'cannot serve the stages: {exc}') from exc
        if stages.backbone_passes > 1:
            self.get_logger().warning(
                f"stages {' | '.join(', '.join(group) for group in stages.backbone_groups())} "
                f'hold different backbone weights: {stages.backbone_passes} backbone passes per '
                f'set instead of one (hil-serl trains every stage on the same frozen ImageNet '
                f'ResNet-10; these were trained unfrozen or from other weights)')
        return stages

    def _load_for_reload(self, path: str, token: Tuple[int, Optional[str]]) -> Model:
        """The reload thread's load: `path` for the one classifier, or for stage token[1]
        (the other stages serve on as they are), or every stage's own (~/reload)."""
        stage = token[1]
        if not self.stages:
            return self._load_or_fail(path)
        if stage is None:
            return self._load_stages(self.stage_paths)
        serving = self.classifier.stages if self.classifier is not None else {}
        return self._load_stages({**self.stage_paths, stage: path},
                                 reuse={name: c for name, c in serving.items() if name != stage})

    def _read(self, load: Callable[[], RewardClassifier], path: str, what: str,
              stage: str = '') -> RewardClassifier:
        """`load()`, a failure as one StartupError line naming `what` ('the classifier',
        "stage 'grasp'"); the checkpoint's notes logged (with `stage`, as that stage's)."""
        try:
            classifier = load()
        except (CheckpointError, DeviceError, ValueError) as exc:
            raise StartupError(f'cannot load {what}: {exc}') from exc
        except Exception as exc:   # a reader's own failure on a crafted file: one line too
            raise StartupError(f'cannot load {what} from {path!r}: '
                               f'{type(exc).__name__}: {exc}') from exc
        if classifier.checkpoint is not None:
            for note in classifier.checkpoint.notes:
                self.get_logger().warning(f'stage {stage}: {note}' if stage else note)
        return classifier

    def _load_or_fail(self, path: str) -> RewardClassifier:
        classifier = self._read(lambda: self._loader(path), path, 'the classifier')
        n_way = classifier.spec.n_way
        serving = self.classifier
        if serving is not None and serving.spec.n_way != n_way:
            raise StartupError(f'{path} is {n_way}-way, the serving classifier '
                               f'{serving.spec.n_way}-way: a reload keeps the outputs (cleanup '
                               f'and configure to change them)')
        try:
            config.resolve_classes(n_way, self._values['class_names'],
                                   self._values['target_classes'])
        except ValueError as exc:
            raise StartupError(f'{path}: {exc}') from None
        return classifier

    def _model_description(self, stage: Optional[str] = None) -> str:
        """The checkpoint that serves (with stages: `stage`'s, or every stage's)."""
        classifier = self.classifier
        if classifier is None:
            return 'no classifier (not configured)'
        if isinstance(classifier, StageClassifiers):
            return '; '.join(f'{name}: {_describe(c)}' for name, c in classifier.stages.items()
                             if stage in (None, name))
        return _describe(classifier)

    def _on_set_parameters(self, parameters: List[RosParameter]) -> SetParametersResult:
        new_values = {}
        for parameter in parameters:
            spec = config.validator_for(parameter.name)
            if spec is None:
                continue
            reason = spec.validate(parameter.value) if spec.validate else None
            if reason:
                return SetParametersResult(successful=False, reason=f'{parameter.name}: {reason}')
            new_values[parameter.name] = parameter.value
        if self.stages:
            refused = [name for name in ('checkpoint_path', 'threshold') if name in new_values]
            if refused:
                return SetParametersResult(successful=False, reason=config.node_value_with_stages(
                    refused[0], new_values[refused[0]], self.stages))
        for name, value in new_values.items():
            stage, _, field = name.partition('.')
            if stage not in self.stages:
                continue
            if field == 'threshold':
                self.stage_thresholds[stage] = float(value)
            elif self.classifier is None:
                self.stage_paths[stage] = value                 # loaded by configure
            else:
                started, message = self._start_reload(value, stage)
                if not started:
                    return SetParametersResult(successful=False, reason=message)
        if 'checkpoint_path' in new_values and self.classifier is None:
            self.checkpoint_path = new_values['checkpoint_path']     # loaded by configure
        elif 'checkpoint_path' in new_values:
            started, message = self._start_reload(new_values['checkpoint_path'])
            if not started:
                return SetParametersResult(successful=False, reason=message)
        if 'threshold' in new_values:
            self.threshold = float(new_values['threshold'])
        if 'min_consecutive' in new_values:
            for rig in self.rigs:
                rig.consecutive.needed = int(new_values['min_consecutive'])
        if 'camera_timeout' in new_values:
            self.camera_timeout = float(new_values['camera_timeout'])
        if 'debug_image_rate' in new_values:
            self.debug_image_rate = float(new_values['debug_image_rate'])
        return SetParametersResult(successful=True)

    def _start_reload(self, path: str, stage: Optional[str] = None) -> Tuple[bool, str]:
        """Checks what can be checked at once (the path designates a checkpoint), then loads
        on the reload thread (after the load under way, if any) while the current model
        serves; returns whether it was accepted and what happens (or why not). With stages:
        `path` for `stage`, or (stage None) every stage from its own path."""
        paths = [path] if stage or not self.stages else list(self.stage_paths.values())
        try:
            for each in filter(None, paths):
                resolve_checkpoint(each)
        except CheckpointError as exc:
            self.counts['reload_failures'] += 1
            message = (f"reload of {', '.join(map(repr, paths))} refused, keeping "
                       f'{self._model_description(stage)}: {exc}')
            self.get_logger().error(message)
            return False, message
        with self._model_lock:
            generation = self._generation
        what = f'stage {stage}: {path}' if stage else ', '.join(paths)
        queued = self._reloader.start(path if stage or not self.stages else what,
                                      (generation, stage), key=stage)
        message = (f'loading {what!r}' + (f', {queued}' if queued else '') +
                   f'; {self._model_description(stage)} serves until it is ready')
        self.get_logger().info(message)
        return True, message

    def _reloaded(self, path: str, token: Tuple[int, Optional[str]], classifier: Optional[Model],
                  error: Optional[Exception]) -> None:
        """On the reload thread: swap the new model in between two sets, or keep the old one
        and say why in the log and, until the next reload succeeds, in diagnostics."""
        generation, stage = token
        with self._model_lock:
            if self.classifier is None or self._generation != generation:
                return                  # cleaned up meanwhile: configure loads anew
            if classifier is not None:
                self.classifier = classifier
                if stage:
                    self.stage_paths[stage] = path
                elif not self.stages:
                    self.checkpoint_path = path
                self._reload_problem = None
        if classifier is not None:
            self.counts['reloads'] += 1
            self.get_logger().info(f'reloaded: now serving {self._model_description()}')
            return
        self.counts['reload_failures'] += 1
        self._reload_problem = (f'reload of {path!r} failed, keeping '
                                f'{self._model_description()}: {error}')
        self.get_logger().error(self._reload_problem)

    def _on_reload(self, request: Trigger.Request, response: Trigger.Response
                   ) -> Trigger.Response:
        if self.classifier is None:
            response.success = False
            response.message = 'not configured: configure loads checkpoint_path'
            return response
        response.success, message = self._start_reload(self.checkpoint_path)
        response.message = message + (' (diagnostics: reload, checkpoint)'
                                      if response.success else '')
        return response

    # ---- counters -------------------------------------------------------------------------

    def _init_counters(self) -> None:
        """The node's own counters; each rig keeps its own (Rig.reset_counters)."""
        self.counts: Dict[str, int] = collections.Counter()
        self.inference_latency = Window()
        self.sets_per_batch = Window()
        self._last_error: Optional[str] = None

    # ---- inference worker ---------------------------------------------------------------

    def _work(self, rigs: List[Rig]) -> None:
        """Until the mailboxes are closed (deactivate): mailboxes per activation, so a set
        left from before can never be served after the next activate."""
        readers = [rig for rig in rigs if rig.owns_input]      # stages: the first reads
        mailboxes = [rig.input.mailbox for rig in readers]
        while (taken := take_each(mailboxes)) is not None:
            try:
                self._process([(readers[index], *item) for index, item in taken])
            except Exception as exc:  # the worker must outlive any one set; diagnostics: ERROR
                self.counts['processing_errors'] += 1
                self._last_error = f'{type(exc).__name__}: {exc}'
                self.get_logger().error(f'processing a camera set failed: {self._last_error}',
                                        throttle_duration_sec=2.0)

    def _process(self, sets: Sequence[Tuple[Rig, Sequence[Any], int]]) -> None:
        """Every rig's waiting set, (rig, messages, set stamp), classified in one batch; with
        stages the one set, classified by every stage."""
        ready = []
        for rig, messages, stamp in sets:
            try:
                images = self.preprocessor(messages)
            except CameraSetError as exc:
                rig.input.refuse_set(exc.camera.key, exc.reason, str(exc), rig.label())
                continue
            rig.input.frame_sizes.update(self.preprocessor.frame_sizes)
            ready.append((rig, messages, stamp, images, self.preprocessor.convert_s,
                          self.preprocessor.resize_s))
        if not ready:
            return
        with self._model_lock:
            classifier = self.classifier
        if self.stages:
            (_, messages, stamp, images, convert_s, resize_s), = ready
            by_stage, inference_s = classify_stages(images, classifier, self.stage_thresholds,
                                                    stamp)
            outputs = [((rig, messages, stamp, images, convert_s, resize_s), by_stage[rig.name])
                       for rig in self.rigs]
        else:
            results, inference_s = classify_sets(
                [images for _, _, _, images, _, _ in ready], classifier, self.threshold,
                [stamp for _, _, stamp, _, _, _ in ready], self.targets)
            outputs = list(zip(ready, results))
        for (rig, messages, _, images, convert_s, resize_s), result in outputs:
            if isinstance(result, NonFiniteOutput):
                rig.not_finite(result)
                continue
            rig.publish(rig.consecutive(result), messages, images, self.frame_id,
                        self.class_names, self.debug_image_rate,
                        self.stage_thresholds.get(rig.name, self.threshold), convert_s, resize_s)
        self._last_error = None
        self.inference_latency.add(inference_s)
        self.sets_per_batch.add(len(ready))

    # ---- diagnostics --------------------------------------------------------------------

    def status(self, rig: Optional[Rig] = None) -> Tuple[bytes, str]:
        """The diagnostics level and message of `rig` (default: the first)."""
        rig = rig or self.rigs[0]
        if not self.serving:
            return DiagnosticStatus.OK, ('inactive: not subscribed to the cameras'
                                         if self.classifier else 'unconfigured: no model loaded')
        if self._last_error:
            return DiagnosticStatus.ERROR, f'processing failing: {self._last_error}'
        problem = rig.status(self.camera_timeout)
        if problem:
            return problem
        if self._reload_problem:
            return DiagnosticStatus.WARN, self._reload_problem
        return DiagnosticStatus.OK, 'publishing rewards'

    def diagnostic_values(self, rig: Optional[Rig] = None) -> Dict[str, str]:
        """What diagnostics say of the node and of `rig` (default: the first)."""
        def ms(window: Window) -> Dict[str, str]:
            return {q: '-' if v is None else f'{v * 1e3:.2f}'
                    for q, v in window.percentiles(50, 95, 99).items()}

        rig = rig or self.rigs[0]
        classifier = self.classifier
        values = {
            **rig.diagnostic_values(),
            'image conversion': self.converter.backend,
            'classification': (
                f'off: {classification.UNAVAILABLE}' if classification.UNAVAILABLE
                else f'on ({self.resolve_topic_name(rig.topic(classification.TOPIC))})'),
            'device': str(classifier.device) if classifier else '-',
            'convolutions': ('-' if classifier is None else 'fast (Winograd, space-to-depth)'
                             if classifier.form == 'fast' else classifier.form),
            'xla flags': os.environ.get('XLA_FLAGS', ''),
            'xla preallocate': os.environ.get(PREALLOCATE, 'JAX default (75 % of the GPU)'),
            **{f'device memory {name} (MiB)': f'{mib:.1f}'
               for name, mib in (classifier.device_memory_mib() if classifier else {}).items()},
            'gil switch interval (ms)': f'{sys.getswitchinterval() * 1e3:g}',
            'malloc': malloc_setting(),
            'keep cpus awake': (self._tickers.describe() if self._tickers
                                else 'off: idle CPUs poll (cpu latency 0)' if self._cpus_poll
                                else 'off'),
            'xla threads': self._xla_threads,
            'cpu latency': self._cpu_latency_state,
            'checkpoint': self._model_description(rig.name if self.stages else None),
            'threshold': f'{self.stage_thresholds.get(rig.name, self.threshold):g}',
            'min consecutive': str(rig.consecutive.needed),
            'processing errors': str(self.counts['processing_errors']),
            'reload': f'loading {loading}' if (loading := self._reloader.loading) else 'idle',
            'reloads': str(self.counts['reloads']),
            'reload failures': str(self.counts['reload_failures']),
        }
        if self.stages:
            values['stages'] = ', '.join(self.stages)
            values['backbone passes per set'] = \
                str(classifier.backbone_passes) if classifier else '-'
        if self._values['rigs']:
            values['rigs'] = str(len(self.rigs))
            values['batches compiled'] = ', '.join(map(str, classifier.batch_sizes)) \
                if classifier else '-'
            for q, v in self.sets_per_batch.percentiles(50, 100).items():
                values[f'sets per batch {q}'] = '-' if v is None else f'{v:g}'
        for name, window in rig.latency_windows(self.inference_latency):
            for q, v in ms(window).items():
                values[f'{name} latency {q} (ms)'] = v
        return values

    def _publish_diagnostics(self) -> None:
        """One status per rig (one rig: the node's), each with the node's values."""
        classifier = self.classifier
        array = DiagnosticArray()
        for rig in self.rigs:
            level, message = self.status(rig)
            rig.problems.update(level, message)
            name = f'{self.get_fully_qualified_name()}: reward classifier'
            status = DiagnosticStatus(level=level, message=message,
                                      name=f'{name} ({rig.name})' if rig.name else name,
                                      hardware_id=str(classifier.device) if classifier else '')
            status.values = [KeyValue(key=k, value=v)
                             for k, v in self.diagnostic_values(rig).items()]
            array.status.append(status)
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    def destroy_node(self) -> None:
        """A load under way is voided (its model would never serve) and said: the process
        exits once it has ended (model_reload.py), which may be seconds after the signal."""
        with self._model_lock:
            self._generation += 1
        self._reloader.drop_waiting()
        if loading := self._reloader.loading:
            self.get_logger().info(f'stopping during the load of {loading}: its model is '
                                   f'dropped; the process exits when the load has ended (a '
                                   f'compile cannot be interrupted)')
        self._stop_serving()
        self._close_review_folders()
        super().destroy_node()


def _describe(classifier: RewardClassifier) -> str:
    checkpoint = classifier.checkpoint
    if checkpoint is None:
        return 'an untrained classifier'
    return f'{checkpoint.path} ({checkpoint.format}, step {checkpoint.step})'


# The inference worker needs the GIL back the moment XLA releases it, while the executor
# runs Python for 30 Hz image callbacks. At CPython's default 5 ms switch interval it waits
# for them in 5 ms slices: at 2 x 640x480 @ 30 Hz on 2 cores the node then dropped about
# 28 % of the sets, at 0.1 ms none (README, Performance; measured with the three executor
# threads the node had then).
GIL_SWITCH_INTERVAL_S = 1e-4


def xla_flags_for(convolutions: str) -> None:
    """XLA's own CPU convolutions with YNNPACK's reductions and the GPU's command buffers
    (xla_flags.py) for every model form but `hil-serl`, which promises hil-serl's bits:
    those need the XLA flags of hil-serl's process, left as the environment gives them
    (XLA's defaults unless the user set XLA_FLAGS)."""
    if convolutions != 'hil-serl':
        use_cpu_ynn_fusions()
        use_gpu_command_buffers()


def main(args: Optional[List[str]] = None) -> int:
    share_the_gpu()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    return run_node(lambda: ClassifierNode(before_jax=xla_flags_for), NODE_NAME,
                    (StartupError,), args=args)


if __name__ == '__main__':
    sys.exit(main())
