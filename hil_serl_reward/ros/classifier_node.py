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
"""
import collections
import gc
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter as RosParameter
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float32, String
from std_srvs.srv import Trigger

from hil_serl_reward.data.classifier_data import DataWriteError
from hil_serl_reward.data.review import ReviewFolder
from hil_serl_reward.model.checkpoint import CheckpointError, resolve_checkpoint
from hil_serl_reward.model.inference import DeviceError, RewardClassifier
from hil_serl_reward.model.reward_classifier import ClassifierSpec, init_params
from hil_serl_reward.model.xla_flags import (
    PREALLOCATE, share_the_gpu, use_eigen_convolutions, use_gpu_command_buffers)
from hil_serl_reward.pipeline.camera_set import (
    CameraSetError, CameraSetPreprocessor, ConsecutiveSuccess, NonFiniteOutput, RewardResult,
    classify)
from hil_serl_reward.pipeline.debug_view import model_view
from hil_serl_reward.pipeline.image_conversion import rgb_to_msg
from hil_serl_reward.pipeline.model_reload import ModelReload
from hil_serl_reward.pipeline.stamps import write_stamp
from hil_serl_reward.pipeline.stats import Window
from hil_serl_reward.ros import classification, config
from hil_serl_reward.ros.camera_input import CameraSetInput, StartupError, declare_parameters
from hil_serl_reward.ros.cpu_tickers import CpuTickers
from hil_serl_reward.ros.cv_bridge_probe import make_converter
from hil_serl_reward.ros.malloc_tuning import malloc_setting
from hil_serl_reward.ros.node_main import run_node
from hil_serl_reward.ros.params_file import NODE_NAME

ClassifierLoader = Callable[[str], RewardClassifier]


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
        self.review: Optional[ReviewFolder] = None
        self._reloader = ModelReload(self._load_or_fail, self._reloaded)
        self._reload_problem: Optional[str] = None
        self._generation = 0            # cleanups so far: a reload started before one is void
        self._refuse_unregistered_transitions()
        self._values = declare_parameters(self, config.NODE_PARAMETERS)
        if before_jax is not None:
            before_jax(self._values['convolutions'])
        self.image_keys: Tuple[str, ...] = tuple(self._values['image_keys'])
        self.cameras = config.cameras_from(self._values)
        self.threshold = float(self._values['threshold'])
        self.consecutive = ConsecutiveSuccess(int(self._values['min_consecutive']))
        self.camera_timeout = float(self._values['camera_timeout'])
        self.frame_id: str = self._values['frame_id']
        self.debug_image_rate = float(self._values['debug_image_rate'])
        self._last_debug_image = float('-inf')
        self._last_problem: Optional[str] = None
        self.classification_pub: Optional[Any] = None
        self.class_pub: Optional[Any] = None             # n-way only, as confidence_pub
        self.confidence_pub: Optional[Any] = None
        self.class_names: Tuple[str, ...] = ()
        self.targets: Tuple[int, ...] = ()
        self.checkpoint_path = self._values['checkpoint_path']
        self._loader = loader or self._load_classifier
        self._model_lock = threading.Lock()
        self.classifier: Optional[RewardClassifier] = None
        self.converter = make_converter(int(self._values['max_image_pixels']),
                                        self.get_logger().warning)
        self.preprocessor = CameraSetPreprocessor(self.cameras, self.converter)
        self.input: Optional[CameraSetInput] = None
        self._configure_failure: Optional[Exception] = None
        self._autostarting = bool(self._values['autostart'])
        self._init_counters()

        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_service(Trigger, '~/reload', self._on_reload)
        self.create_timer(float(self._values['diagnostics_period']), self._publish_diagnostics)
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
            classifier = self._load_or_fail(self.checkpoint_path)
            if self._values['review_dir']:
                self.review = self._open_review_folder(self._values['review_dir'])
        except Exception as exc:  # rclpy would swallow it: autostart raises it, else logged
            self._configure_failure = exc
            if not self._autostarting:
                self.get_logger().error(f'configure failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        with self._model_lock:
            self.classifier = classifier
        self.class_names, self.targets = config.resolve_classes(
            classifier.spec.n_way, self._values['class_names'], self._values['target_classes'])
        if self.targets:                                # n-way: the winning class, plainly
            self.class_pub = self.create_lifecycle_publisher(String, 'class', 10)
            self.confidence_pub = self.create_lifecycle_publisher(Float32, 'confidence', 10)
        self.reward_pub = self.create_lifecycle_publisher(Float32, 'reward', 10)
        self.success_pub = self.create_lifecycle_publisher(Bool, 'success', 10)
        self.probability_pub = self.create_lifecycle_publisher(Float32, 'probability', 10)
        self.debug_image_pub = self.create_lifecycle_publisher(Image, '~/debug_image', 1)
        if classification.UNAVAILABLE:
            self.get_logger().warning(f'{classification.TOPIC} is off: '
                                      f'{classification.UNAVAILABLE}')
        else:
            self.classification_pub = self.create_lifecycle_publisher(
                classification.Classification, classification.TOPIC, 10)
        self.get_logger().info(
            f'configured: {self._model_description()} on {classifier.device}')
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
        self.consecutive.streak = 0     # sets before a pause are not in a row with those after
        self.input = CameraSetInput(self, self._values, self.cameras)
        self._worker = threading.Thread(target=self._work, args=(self.input,),
                                        name='inference', daemon=True)
        self._worker.start()
        if self._values['keep_cpus_awake'] and self.classifier.device.platform == 'cpu':
            self._tickers = CpuTickers()
        self.get_logger().info(
            'serving; cameras '
            + ', '.join(f"{c.key} <- {self.input.topic(c)}"
                        f"{' (compressed)' if c.compressed else ''}"
                        f"{' crop ' + repr(c.crop.text) if c.crop.text else ''}"
                        for c in self.cameras)
            + f'; synchroniser: {self.input.subscriber.backend}; image conversion: '
            f'{self.converter.backend}; threshold {self.threshold}'
            + (f' for {self.consecutive.needed} sets in a row' if self.consecutive.needed > 1
               else ''))
        return super().on_activate(state)       # enables the lifecycle publishers

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_serving()
        self.get_logger().info('deactivated: unsubscribed from the cameras, publishing '
                               'nothing; the model stays loaded')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._close_review_folder()
        with self._model_lock:
            self.classifier = None
            self._generation += 1
            self._reload_problem = None
        self.input = None
        self._init_counters()
        for publisher in (self.reward_pub, self.success_pub, self.probability_pub,
                          self.debug_image_pub, self.classification_pub, self.class_pub,
                          self.confidence_pub):
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self.classification_pub = self.class_pub = self.confidence_pub = None
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
        self.input.mailbox.close()
        self._worker.join(timeout=5.0)
        self._worker = None
        self.input.close()
        if self._tickers is not None:
            self._tickers.close()
            self._tickers = None

    # ---- configuration -----------------------------------------------------------------

    def _open_review_folder(self, folder: str) -> ReviewFolder:
        try:
            review = ReviewFolder(Path(folder))
        except DataWriteError as exc:
            raise StartupError(f'review_dir: {exc}') from exc
        self.get_logger().info(f'keeping every success for review in {review.writer.folder}')
        return review

    def _close_review_folder(self) -> None:
        if self.review is not None:
            self.review.close()
            self.review = None

    def _load_classifier(self, path: str) -> RewardClassifier:
        device = self._values['device']
        form = None if self._values['convolutions'] == 'auto' else self._values['convolutions']
        if path:
            return RewardClassifier.from_checkpoint(path, image_keys=self.image_keys,
                                                    device=device, form=form)
        if not self._values['random_init']:
            raise StartupError(
                'checkpoint_path is empty: set it to a classifier_ckpt/ folder or a '
                'checkpoint_<N>, or set random_init:=true to serve an untrained classifier')
        self.get_logger().warning(
            'serving an UNTRAINED, randomly initialised classifier (random_init, no '
            'checkpoint_path): its rewards mean nothing')
        spec = ClassifierSpec(self.image_keys)
        return RewardClassifier(spec, init_params(spec), device=device, form=form)

    def _load_or_fail(self, path: str) -> RewardClassifier:
        try:
            classifier = self._loader(path)
        except (CheckpointError, DeviceError, ValueError) as exc:
            raise StartupError(f'cannot load the classifier: {exc}') from exc
        except Exception as exc:   # a reader's own failure on a crafted file: one line too
            raise StartupError(f'cannot load the classifier from {path!r}: '
                               f'{type(exc).__name__}: {exc}') from exc
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
        if classifier.checkpoint is not None:
            for note in classifier.checkpoint.notes:
                self.get_logger().warning(note)
        return classifier

    def _model_description(self) -> str:
        if self.classifier is None:
            return 'no classifier (not configured)'
        checkpoint = self.classifier.checkpoint
        if checkpoint is None:
            return 'an untrained classifier'
        return f'{checkpoint.path} ({checkpoint.format}, step {checkpoint.step})'

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
        if 'checkpoint_path' in new_values and self.classifier is None:
            self.checkpoint_path = new_values['checkpoint_path']     # loaded by configure
        elif 'checkpoint_path' in new_values:
            error = self._start_reload(new_values['checkpoint_path'])
            if error:
                return SetParametersResult(successful=False, reason=error)
        if 'threshold' in new_values:
            self.threshold = float(new_values['threshold'])
        if 'min_consecutive' in new_values:
            self.consecutive.needed = int(new_values['min_consecutive'])
        if 'camera_timeout' in new_values:
            self.camera_timeout = float(new_values['camera_timeout'])
        if 'debug_image_rate' in new_values:
            self.debug_image_rate = float(new_values['debug_image_rate'])
        return SetParametersResult(successful=True)

    def _start_reload(self, path: str) -> Optional[str]:
        """Checks what can be checked at once (the path designates a checkpoint), then loads
        on the reload thread while the current model serves; returns why not."""
        try:
            if path:
                resolve_checkpoint(path)
        except CheckpointError as exc:
            self.counts['reload_failures'] += 1
            message = f'reload of {path!r} refused, keeping {self._model_description()}: {exc}'
            self.get_logger().error(message)
            return message
        with self._model_lock:
            generation = self._generation
        busy = self._reloader.start(path, generation)
        if busy:
            return busy
        self.get_logger().info(f'loading {path!r}; {self._model_description()} serves until '
                               f'it is ready')
        return None

    def _reloaded(self, path: str, generation: int, classifier: Optional[RewardClassifier],
                  error: Optional[Exception]) -> None:
        """On the reload thread: swap the new model in between two sets, or keep the old one
        and say why in the log and, until the next reload succeeds, in diagnostics."""
        with self._model_lock:
            if self.classifier is None or self._generation != generation:
                return                  # cleaned up meanwhile: configure loads anew
            if classifier is not None:
                self.classifier, self.checkpoint_path = classifier, path
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
        error = self._start_reload(self.checkpoint_path)
        response.success = error is None
        response.message = error or (
            f'loading {self.checkpoint_path!r}; {self._model_description()} serves until it '
            f'is ready (diagnostics: reload, checkpoint)')
        return response

    # ---- counters -------------------------------------------------------------------------

    def _init_counters(self) -> None:
        self.counts: Dict[str, int] = collections.Counter()
        self.convert_latency = Window()
        self.resize_latency = Window()
        self.inference_latency = Window()
        self.publishing_latency = Window()
        self.publish_latency = Window()
        self.last_result: Optional[RewardResult] = None
        self._last_error: Optional[str] = None
        self._started = time.monotonic()

    # ---- inference worker ---------------------------------------------------------------

    def _work(self, camera_input: CameraSetInput) -> None:
        """Until the mailbox is closed (deactivate): a mailbox per activation, so a set
        left from before can never be served after the next activate."""
        while (item := camera_input.mailbox.take()) is not None:
            try:
                self._process(*item)
            except Exception as exc:  # the worker must outlive any one set; diagnostics: ERROR
                self.counts['processing_errors'] += 1
                self._last_error = f'{type(exc).__name__}: {exc}'
                self.get_logger().error(f'processing a camera set failed: {self._last_error}',
                                        throttle_duration_sec=2.0)

    def _process(self, messages: Sequence[Any], stamp: int) -> None:
        try:
            images = self.preprocessor(messages)
        except CameraSetError as exc:
            self.input.reject(exc.camera.key, exc.reason, f'skipping camera set: {exc}')
            return
        with self._model_lock:
            classifier = self.classifier
        try:
            result = self.consecutive(classify(images, classifier, self.threshold, stamp,
                                               self.targets))
        except NonFiniteOutput as exc:      # diagnostics: ERROR until a set is published
            self.counts['non_finite_outputs'] += 1
            self._last_error = f'not publishing: {exc}'
            self.get_logger().error(self._last_error, throttle_duration_sec=2.0)
            return
        publishing = time.perf_counter()
        frame_id = self.frame_id or classification.newest_frame_id(messages)
        self.reward_pub.publish(Float32(data=result.reward))
        self.success_pub.publish(Bool(data=result.success))
        self.probability_pub.publish(Float32(data=result.probability))
        if self.class_pub is not None:
            self.class_pub.publish(String(data=self.class_names[result.winner]))
            self.confidence_pub.publish(Float32(data=result.class_probabilities[result.winner]))
        if self.classification_pub is not None:
            self.classification_pub.publish(classification.classification_message(
                stamp, frame_id, result.probability,
                tuple(zip(self.class_names, result.class_probabilities))))
        self._publish_debug_image(images, result, frame_id)
        if self.review is not None and result.success:
            self.review.keep(images)
        self.publish_latency.add((self.get_clock().now().nanoseconds - stamp) / 1e9)
        self.publishing_latency.add(time.perf_counter() - publishing)
        self._last_error = None
        self.counts['sets_published'] += 1
        self.last_result = result
        self.convert_latency.add(self.preprocessor.convert_s)
        self.resize_latency.add(self.preprocessor.resize_s)
        self.inference_latency.add(result.inference_s)

    def _publish_debug_image(self, images: Dict[str, Any], result: RewardResult,
                             frame_id: str) -> None:
        """Only while someone subscribes, at most debug_image_rate per second: nothing is
        drawn or sent otherwise (one subscription count per set)."""
        if self.debug_image_rate <= 0 or self.debug_image_pub.get_subscription_count() == 0:
            return
        now = time.monotonic()
        if now - self._last_debug_image < 1.0 / self.debug_image_rate:
            return
        self._last_debug_image = now
        view = model_view(images, self.image_keys, result.probability, self.threshold,
                          result.success, result.stamp_ns)
        msg = Image(**rgb_to_msg(view))
        write_stamp(msg.header.stamp, result.stamp_ns)
        msg.header.frame_id = frame_id
        self.debug_image_pub.publish(msg)
        self.counts['debug_images'] += 1

    # ---- diagnostics --------------------------------------------------------------------

    def status(self) -> Tuple[bytes, str]:
        if not self.serving:
            return DiagnosticStatus.OK, ('inactive: not subscribed to the cameras'
                                         if self.classifier else 'unconfigured: no model loaded')
        if self._last_error:
            return DiagnosticStatus.ERROR, f'processing failing: {self._last_error}'
        silent = []
        for camera, meter in zip(self.cameras, self.input.rates):
            quiet = meter.silent_for()
            waited = time.monotonic() - self._started if quiet is None else quiet
            if waited > self.camera_timeout:
                state = 'no images yet' if quiet is None else f'silent {quiet:.1f} s'
                silent.append(f'{camera.key} ({state})')
        wrong_types = self.input.topic_problems()
        if wrong_types:
            return DiagnosticStatus.ERROR, 'wrong message type: ' + '; '.join(wrong_types)
        if silent:
            return DiagnosticStatus.WARN, 'cameras silent: ' + ', '.join(silent)
        stalled = self.input.stall_reason(max(self.camera_timeout, 2.0))
        if stalled:
            return DiagnosticStatus.WARN, stalled
        if self.review is not None and self.review.last_error:
            return DiagnosticStatus.WARN, f'review folder failing: {self.review.last_error}'
        if self._reload_problem:
            return DiagnosticStatus.WARN, self._reload_problem
        return DiagnosticStatus.OK, 'publishing rewards'

    def diagnostic_values(self) -> Dict[str, str]:
        def ms(window: Window) -> Dict[str, str]:
            return {q: '-' if v is None else f'{v * 1e3:.2f}'
                    for q, v in window.percentiles(50, 95, 99).items()}

        classifier = self.classifier
        values = {
            **(self.input.diagnostic_values() if self.input else {}),
            'image conversion': self.converter.backend,
            'classification': (f'off: {classification.UNAVAILABLE}' if classification.UNAVAILABLE
                               else f'on ({self.resolve_topic_name(classification.TOPIC)})'),
            'device': str(classifier.device) if classifier else '-',
            'convolutions': ('-' if classifier is None else 'fast (Winograd, space-to-depth)'
                             if classifier.form == 'fast' else classifier.form),
            'xla flags': os.environ.get('XLA_FLAGS', ''),
            'xla preallocate': os.environ.get(PREALLOCATE, 'JAX default (75 % of the GPU)'),
            **{f'device memory {name} (MiB)': f'{mib:.1f}'
               for name, mib in (classifier.device_memory_mib() if classifier else {}).items()},
            'gil switch interval (ms)': f'{sys.getswitchinterval() * 1e3:g}',
            'malloc': malloc_setting(),
            'keep cpus awake': self._tickers.describe() if self._tickers else 'off',
            'checkpoint': self._model_description(),
            'threshold': f'{self.threshold:g}',
            'min consecutive': str(self.consecutive.needed),
            'sets above threshold in a row': str(self.consecutive.streak),
            'sets published': str(self.counts['sets_published']),
            'debug images published': str(self.counts['debug_images']),
            **({} if self.review is None else {
                'review sets kept': str(self.review.kept),
                'review sets dropped': str(self.review.dropped),
                'review write failures': str(self.review.write_failures)}),
            'non-finite outputs': str(self.counts['non_finite_outputs']),
            'processing errors': str(self.counts['processing_errors']),
            'reload': f'loading {loading}' if (loading := self._reloader.loading) else 'idle',
            'reloads': str(self.counts['reloads']),
            'reload failures': str(self.counts['reload_failures']),
        }
        # The latency budget of a set, in order: each camera's frame arriving, waiting for
        # the set's other frames, behind the previous inference, then the node's own stages.
        windows = [] if self.input is None else [
            *((f'{camera.key} arrival', window) for camera, window in
              zip(self.input.cameras, self.input.arrival_latency)),
            ('sync wait', self.input.sync_wait), ('transport', self.input.transport_latency),
            ('mailbox wait', self.input.mailbox.waits)]
        for name, window in windows + [('convert', self.convert_latency),
                                       ('crop/resize', self.resize_latency),
                                       ('inference', self.inference_latency),
                                       ('publishing', self.publishing_latency),
                                       ('stamp to publish', self.publish_latency)]:
            for q, v in ms(window).items():
                values[f'{name} latency {q} (ms)'] = v
        if self.last_result is not None:
            values['last set stamp (ns)'] = str(self.last_result.stamp_ns)
            values['last probability'] = f'{self.last_result.probability:.4f}'
        return values

    def _publish_diagnostics(self) -> None:
        classifier = self.classifier
        level, message = self.status()
        if level != DiagnosticStatus.OK and message != self._last_problem:
            log = self.get_logger().error if level == DiagnosticStatus.ERROR else \
                self.get_logger().warning
            log(message, throttle_duration_sec=5.0)
        self._last_problem = message if level != DiagnosticStatus.OK else None
        status = DiagnosticStatus(level=level, message=message,
                                  name=f'{self.get_fully_qualified_name()}: reward classifier',
                                  hardware_id=str(classifier.device) if classifier else '')
        status.values = [KeyValue(key=k, value=v) for k, v in self.diagnostic_values().items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    def destroy_node(self) -> None:
        self._reloader.join(timeout=10.0)     # not torn down under a load still compiling
        self._stop_serving()
        self._close_review_folder()
        super().destroy_node()


# The inference worker needs the GIL back the moment XLA releases it, while the executor
# runs Python for 30 Hz image callbacks. At CPython's default 5 ms switch interval it waits
# for them in 5 ms slices: at 2 x 640x480 @ 30 Hz on 2 cores the node then dropped about
# 28 % of the sets, at 0.1 ms none (README, Performance; measured with the three executor
# threads the node had then).
GIL_SWITCH_INTERVAL_S = 1e-4


def xla_flags_for(convolutions: str) -> None:
    """XLA's own CPU convolutions and the GPU's command buffers (xla_flags.py) for every
    model form but `hil-serl`, which promises hil-serl's bits: those need the XLA flags of
    hil-serl's process, left as the environment gives them (XLA's defaults unless the user
    set XLA_FLAGS)."""
    if convolutions != 'hil-serl':
        use_eigen_convolutions()
        use_gpu_command_buffers()


def main(args: Optional[List[str]] = None) -> int:
    share_the_gpu()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    return run_node(lambda: ClassifierNode(before_jax=xla_flags_for), NODE_NAME,
                    (StartupError,), args=args)


if __name__ == '__main__':
    sys.exit(main())
