"""Fault injection: what a hostile or clumsy user and a faulty robot do to the nodes, over DDS
where there is DDS. Each case was found to fail once (issue: reliability); the module keeps
it fixed, next to cases that held then and must keep holding.

Hostile files (issue "Hostile files"), class by class: 1 reload/start-up of a FIFO, /dev/zero,
a deep sidecar, a huge Orbax claim (HOSTILE_CHECKPOINTS); 2-3 crafted pickles
(CRAFTED_PICKLES, the memoised-array case in test_malformed_classifier_data_is_one_line);
4 dtypes and finite corruption (HOSTILE_CHECKPOINTS, NanOnCameraSets); 5 decompression bombs
(section 3 and test_preview_crops.py); 6 use_sim_time (test_gym_wrapper.py,
test_on_a_simulator_clock_the_wrapper_runs_on_it); 7 a second results publisher
(test_client.py); 8 params files (section 4); 9 hostile recordings (test_preview_crops.py);
10 malformed classifier_data. The fuzz run: test_fuzz.py, `make fuzz`."""
import codecs
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from flax import serialization
from lifecycle_msgs.msg import Transition
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage

from hil_serl_reward.data.classifier_data import transition, write_pickle
from hil_serl_reward.model.checkpoint import CheckpointError, load_checkpoint
from hil_serl_reward.model.inference import RewardClassifier
from hil_serl_reward.model.pretrained import PretrainedWeightsError, load_resnet10_weights
from hil_serl_reward.ros.camera_input import StartupError
from hil_serl_reward.ros.record_data import DataRecorder
from hil_serl_reward.tools import evaluate, preview_crops, train_classifier
from ros_harness import ns_stamp
from test_classifier_node import KEYS, frames, send_set, send_set_front_compressed
from test_lifecycle import Lifecycle
from test_training import write_scene_data

pytestmark = pytest.mark.usefixtures('ros')


@pytest.fixture
def node(bench, checkpoint_for):
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            camera_timeout=60.0)
    bench.connect(list(KEYS))
    return node


def serves_next_set(bench, stamp, seed=0):
    """A good set after the fault is still classified."""
    count = len(bench.outputs['probability'])
    send_set(bench, frames(seed), stamp)
    bench.wait_outputs(count + 1)


# ---- 1. lifecycle abuse -------------------------------------------------------------------

def test_an_unregistered_transition_by_id_is_refused_not_fatal(bench, node):
    lifecycle = Lifecycle(bench, node)
    assert not lifecycle.transition(Transition.TRANSITION_CONFIGURE)    # not from active
    assert not lifecycle.transition(99)                                  # no such transition
    assert lifecycle.state() == 'active'
    serves_next_set(bench, 100_000_000)


# ---- 2. the recorder and its disk --------------------------------------------------------

def recorder_command(bench, out, *params):
    return [sys.executable, '-m', 'hil_serl_reward.ros.record_data', '--ros-args',
            '-r', f'__ns:={bench.namespace}', '-p', f'output_dir:={out}', *params]


def recorder_values(bench):
    """The recorder's last diagnostics values as this side received them ({} before any):
    what it says it got, for a failure's message."""
    statuses = [s for s in bench.diagnostics if s.name.endswith(': recorder')]
    return {kv.key: kv.value for kv in statuses[-1].values} if statuses else {}


def output_or_kill(process, timeout, bench):
    """The output of `process` (started with start_new_session) once it ends; past `timeout`
    its whole group is killed (under unshare and sh the recorder is a grandchild, left running
    into later tests when only `process` was killed), and the output says what the recorder
    reported getting."""
    try:
        return process.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        kill_group(process)
        return (process.communicate()[0] + f'\n[still running after {timeout} s: killed; its '
                f'last diagnostics here: {recorder_values(bench)}]')


def kill_group(process):
    """Kills `process` (started with start_new_session) and every process under it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def in_small_filesystem(folder, size, command, read_only=False):
    """`command` with `folder` a tmpfs of `size` (a full disk), in a mount namespace of its
    own; afterwards the shell lists what the folder holds, then exits with the command's
    code."""
    if shutil.which('unshare') is None or os.geteuid() != 0:
        pytest.skip('needs root and unshare for a private tmpfs')
    options = f'size={size}' + (',ro' if read_only else '')
    script = (f'mount -t tmpfs -o {options} tmpfs {folder} || exit 99; '
              f'"$@"; rc=$?; echo "LEFT: $(ls -A {folder} | tr "\\n" " ")"; exit $rc')
    return ['unshare', '-m', 'sh', '-c', script, 'sh', *command]


@pytest.mark.own_participant
def test_a_full_disk_stops_the_recorder_loudly_and_leaves_no_partial_file(bench, tmp_path):
    folder = tmp_path / 'small'
    folder.mkdir()
    # each transition holds two 128x128 images twice (observations, next_observations):
    # about 200 kB; chunks of 2 fit twice into 1 MB, the third does not
    command = in_small_filesystem(folder, '1m', recorder_command(
        bench, folder, '-p', 'flush_every:=2', '-p', 'successes_needed:=1000'))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        bench.wait(lambda: bench.camera('wrist_1').get_subscription_count() > 0
                   and bench.camera('front').get_subscription_count() > 0, 30, 'the recorder')
        stamp = 100_000_000
        while process.poll() is None and stamp < 100 * 100_000_000:
            send_set(bench, frames(stamp % 7), stamp)
            stamp += 100_000_000
            time.sleep(0.1)
        log = output_or_kill(process, 30, bench)
    finally:
        kill_group(process)
    assert process.returncode == 1, log
    assert 'No space left on device' in log and log.count('NOT on disk') == 1, log
    assert 'Traceback' not in log, log
    left = log.split('LEFT:')[1].split()
    assert left and not [name for name in left if name.endswith('.tmp')], left

    def errors():
        return [s for s in bench.diagnostics
                if s.level == DiagnosticStatus.ERROR and 'write failed' in s.message]
    try:        # published just before the recorder exits: it may still be on its way here
        bench.wait(lambda: errors(), 5.0, 'the write-failed diagnostics')
    except AssertionError:
        pass
    assert errors(), [s.message for s in bench.diagnostics]


def test_a_read_only_output_dir_fails_at_start(bench, tmp_path):
    folder = tmp_path / 'ro'
    folder.mkdir()
    command = in_small_filesystem(folder, '1m', recorder_command(bench, folder),
                                  read_only=True)
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert 'not writable' in result.stderr and 'Read-only file system' in result.stderr
    assert 'Traceback' not in result.stderr


def test_an_output_dir_that_cannot_be_created_fails_at_start(bench, tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    result = subprocess.run(recorder_command(bench, blocker / 'sub'), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert 'not writable' in result.stderr and 'Traceback' not in result.stderr


@pytest.mark.parametrize('experiment', ['../escape', '/abs/name', '.hidden', 'a/b', ''])
def test_experiment_cannot_leave_the_output_dir(bench, tmp_path, experiment):
    with pytest.raises(StartupError, match='file-name-safe word'):
        DataRecorder(namespace=bench.namespace, parameter_overrides=[
            Parameter('output_dir', value=str(tmp_path / 'out')),
            Parameter('experiment', value=experiment)])
    assert not (tmp_path / 'escape').exists()


@pytest.mark.own_participant
def test_recorder_interrupted_by_sigterm_keeps_everything(bench, tmp_path):
    """Held before: a signal at any moment loses nothing (kept here beside the disk faults)."""
    out = tmp_path / 'data'
    process = subprocess.Popen(
        recorder_command(bench, out, '-p', 'flush_every:=1000', '-p', 'successes_needed:=1000'),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def recorded_so_far():
        """What the recorder's diagnostics say it holds (nothing is on disk yet)."""
        return int(recorder_values(bench).get('failures recorded', 0))

    try:
        bench.wait(lambda: bench.camera('front').get_subscription_count() > 0, 60, 'recorder')
        stamp = 100_000_000
        deadline = time.monotonic() + 60
        while recorded_so_far() < 5 and time.monotonic() < deadline:
            send_set(bench, frames(stamp % 7), stamp)
            stamp += 100_000_000
            time.sleep(0.1)
        held = recorded_so_far()
        process.send_signal(signal.SIGTERM)
        log = process.communicate(timeout=30)[0]
    finally:
        process.kill()
    assert process.returncode == 0 and 'Traceback' not in log, log
    on_disk = sum(len(pickle.loads(p.read_bytes())) for p in out.glob('*.pkl'))
    assert on_disk >= held >= 5, (log, recorder_values(bench))


def train_command(data, out):
    return [sys.executable, '-m', 'hil_serl_reward.tools.train_classifier', '--data', str(data),
            '--image-keys', *KEYS, '--random-init', '--steps', '2', '--val-fraction', '0',
            '--output', str(out)]


def test_a_full_disk_after_training_is_one_line_and_no_partial_checkpoint(tmp_path):
    write_scene_data(tmp_path / 'data', count=20)
    out = tmp_path / 'small'
    out.mkdir()
    done = subprocess.run(in_small_filesystem(out, '1m', train_command(tmp_path / 'data', out)),
                          capture_output=True, text=True, timeout=300)
    log = done.stdout + done.stderr
    assert done.returncode == 1, log
    assert 'the checkpoint was NOT written' in done.stderr, log
    assert 'No space left on device' in done.stderr and 'Traceback' not in log, log
    assert done.stdout.split('LEFT:')[1].split() == [], log


def test_an_output_folder_that_takes_no_files_fails_before_training(tmp_path):
    write_scene_data(tmp_path / 'data', count=20)
    out = tmp_path / 'read_only'
    out.mkdir()
    done = subprocess.run(in_small_filesystem(out, '1m', train_command(tmp_path / 'data', out),
                                              read_only=True),
                          capture_output=True, text=True, timeout=300)
    log = done.stdout + done.stderr
    assert done.returncode == 2 and 'Read-only file system' in done.stderr, log
    assert 'parameters:' not in done.stdout and 'Traceback' not in log, log


def test_a_full_disk_while_evaluate_writes_is_one_line(tmp_path, checkpoint_for):
    write_scene_data(tmp_path / 'data', count=20)
    out = tmp_path / 'small'
    out.mkdir()
    command = [sys.executable, '-m', 'hil_serl_reward.tools.evaluate',
               str(checkpoint_for(KEYS)), '--classifier-data', str(tmp_path / 'data'),
               '--image-keys', *KEYS, '--output', str(out)]
    # room for the CSV, not for the pictures (matplotlib raised; cv2.imwrite returns False)
    done = subprocess.run(in_small_filesystem(out, '16k', command), capture_output=True,
                          text=True, timeout=300)
    log = done.stdout + done.stderr
    assert done.returncode == 1 and f'evaluate: writing to {out} failed' in done.stderr, log
    assert 'review pictures' not in done.stdout and 'Traceback' not in log, log


# ---- 3. oversized images -----------------------------------------------------------------

def png_claiming(width, height):
    """A real PNG whose header (IHDR) claims another size: what a crafted message carries."""
    ok, png = cv2.imencode('.png', np.zeros((8, 8, 3), np.uint8))
    data = bytearray(png.tobytes())
    data[16:24] = width.to_bytes(4, 'big') + height.to_bytes(4, 'big')
    return bytes(data)


def test_oversized_compressed_images_are_refused_before_decoding(bench, checkpoint_for):
    bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                     camera_timeout=60.0, **{'cameras.front.compressed': True})
    bench.camera('front', compressed=True)
    bench.connect(list(KEYS))
    ok, big = cv2.imencode('.png', np.zeros((4200, 4200, 3), np.uint8))   # 17.6 Mpx, 60 kB
    for stamp, data in ((100_000_000, png_claiming(60000, 60000)), (200_000_000, big.tobytes())):
        bench.publish('front', ns_stamp(CompressedImage(format='png', data=data), stamp))
    bench.wait(lambda: bench.latest_diagnostics().get('front rejected too_large') == '2', 10,
               'two too_large rejections')
    send_set_front_compressed(bench, frames(1), 300_000_000)
    bench.wait_outputs(1)
    diag = bench.latest_diagnostics()
    assert diag['processing errors'] == '0' and diag['level'] == DiagnosticStatus.OK


def test_oversized_raw_images_are_refused(bench, checkpoint_for):
    bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                     camera_timeout=60.0, max_image_pixels=100 * 100)
    bench.connect(list(KEYS))
    send_set(bench, frames(2), 100_000_000)                 # 160 x 120 = 19200 pixels
    bench.wait(lambda: bench.latest_diagnostics().get('wrist_1 rejected too_large') == '1', 10,
               'a too_large rejection')
    assert bench.outputs['probability'] == []


# ---- 4. parameters files -----------------------------------------------------------------

def run_node(*args, timeout=120):
    return subprocess.run([sys.executable, '-m', 'hil_serl_reward.ros.classifier_node', *args],
                          capture_output=True, text=True, timeout=timeout)


def params_yaml(tmp_path, body, name='rig.yaml'):
    path = tmp_path / name
    path.write_text('/**/hil_serl_reward:\n  ros__parameters:\n' + body)
    return path


def test_misspelt_parameters_stop_start_up_with_the_nearest_name(tmp_path):
    path = params_yaml(tmp_path, '    random_init: true\n    thresold: 0.9\n'
                       '    cameras:\n      wrist_1:\n        crpo: "1:2, 3:4"\n')
    result = run_node('--ros-args', '--params-file', str(path))
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert "'thresold' (did you mean 'threshold'?)" in result.stderr
    assert "'cameras.wrist_1.crpo' (did you mean 'cameras.wrist_1.crop'?)" in result.stderr


@pytest.mark.parametrize('tool', ['preview_crops', 'evaluate', 'train_classifier'])
def test_every_tool_reads_a_hostile_params_file_in_one_line(tmp_path, capsys, tool):
    path = tmp_path / 'rig.yaml'
    path.write_text('[' * 100_000)
    data = tmp_path / 'data'
    write_scene_data(data, count=4)                # train_classifier reads the data first
    args = {'preview_crops': ['--folder', str(tmp_path)],
            'evaluate': [str(tmp_path), '--classifier-data', str(data)],
            'train_classifier': ['--data', str(data), '--random-init', '--image-keys', *KEYS,
                                 '--output', str(tmp_path / 'out')]}[tool]
    module = {'preview_crops': preview_crops, 'evaluate': evaluate,
              'train_classifier': train_classifier}[tool]
    assert module.main(['--params-file', str(path), *args]) == 2
    err = capsys.readouterr().err
    assert f"parameters file '{path}' is nested too deeply" in err and len(err.splitlines()) == 1


def test_unknown_parameters_only_warn_when_asked(bench, checkpoint_for):
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            reject_unknown_parameters=False, thresold=0.9)
    assert node.threshold == 0.5 and node.serving


def test_the_recorder_checks_its_parameters_too(bench, tmp_path):
    with pytest.raises(StartupError, match="'flush_evry' \\(did you mean 'flush_every'\\?\\)"):
        DataRecorder(namespace=bench.namespace, parameter_overrides=[
            Parameter('output_dir', value=str(tmp_path / 'out')),
            Parameter('flush_evry', value=5)])


@pytest.mark.parametrize('content, message', [
    (None, "cannot read parameters file '{path}': No such file or directory"),
    ('a: [1\n', "parameters file '{path}' is not valid YAML"),
    ('- just\n- a list\n', "parameters file '{path}' holds list"),
    ('x: 1\n', 'cannot start: failed to initialize rcl'),
    ('/**:\n  ros__parameters:\n    image_keys: []\n',       # an empty list has no type
     'image_keys: needs a list of camera key strings'),
    ('[' * 100_000, "parameters file '{path}' is nested too deeply"),      # RecursionError
    ('[' * 3_000_000, "parameters file '{path}' is 2.9 MiB"),
    ('', "parameters file '{path}' holds nothing"),
], ids=['missing', 'bad_yaml', 'a_list', 'no_section', 'empty_image_keys', 'deep', 'huge',
        'empty'])     # the contents as ids: a 3 MB PYTEST_CURRENT_TEST, too long for exec
def test_an_unreadable_params_file_is_one_line(tmp_path, content, message):
    path = tmp_path / 'rig.yaml'
    if content is not None:
        path.write_text(content)
    result = run_node('--ros-args', '--params-file', str(path), timeout=60)
    assert result.returncode == 1
    assert message.format(path=path) in result.stderr
    assert 'Traceback' not in result.stderr


# ---- 6. stamps from the future -----------------------------------------------------------

def test_a_frame_from_the_future_cannot_blind_its_camera(bench, node):
    now = bench.probe.get_clock().now().nanoseconds
    send_set(bench, frames(0), now + 900_000_000)                 # 0.9 s ahead
    send_set(bench, frames(1), now + 10**15)                      # 11 days ahead
    bench.wait(lambda: bench.latest_diagnostics().get('front rejected stamp_ahead') == '2', 10,
               'four stamp_ahead rejections')
    now = bench.probe.get_clock().now().nanoseconds
    serves_next_set(bench, now, seed=2)                           # at once, not 0.9 s later
    bench.wait(lambda: len(bench.classifications) == 1, 5, 'the stamped classification')
    diag = bench.latest_diagnostics()
    assert diag['wrist_1 rejected stamp_ahead'] == '2'
    assert diag.get('wrist_1 rejected stamp_backwards') is None


# ---- 7. corrupt weights ------------------------------------------------------------------

def corrupt(checkpoint_folder, tmp_path):
    """A copy of the checkpoint with four bytes inside the head's kernel flipped to NaN."""
    copy = tmp_path / 'corrupt'
    shutil.copytree(checkpoint_folder, copy)
    [ckpt] = copy.glob('checkpoint_*')
    loaded = load_checkpoint(ckpt, image_keys=KEYS)
    kernel = np.asarray(loaded.params['Dense_1']['kernel'])
    data = ckpt.read_bytes()
    at = data.index(kernel.tobytes())
    ckpt.write_bytes(data[:at + 8] + b'\xff\xff\xff\xff' + data[at + 12:])
    return copy


def test_non_finite_weights_are_refused_naming_the_array(bench, checkpoint_for, tmp_path):
    bad = corrupt(checkpoint_for(KEYS), tmp_path)
    with pytest.raises(CheckpointError, match='Dense_1/kernel .* holds 1 non-finite value'):
        load_checkpoint(bad, image_keys=KEYS)
    with pytest.raises(StartupError, match='non-finite'):
        bench.start_node(checkpoint_path=str(bad), image_keys=list(KEYS))


class NanOnCameraSets:
    """The real classifier whose outputs turn NaN on camera sets after loading: corrupt
    weights that the probe images did not reveal."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def predict(self, images):
        prediction = self.inner.predict(images)
        return type(prediction)(prediction.logits * np.nan, prediction.probabilities * np.nan)


def test_non_finite_outputs_publish_nothing_and_diagnostics_say_error(bench, checkpoint_for):
    """It published nothing while diagnostics said OK."""
    bench.start_node(loader=lambda path: NanOnCameraSets(RewardClassifier.from_checkpoint(
        path, image_keys=KEYS, device='cpu')), checkpoint_path=str(checkpoint_for(KEYS)),
        image_keys=list(KEYS), camera_timeout=60.0)
    bench.connect(list(KEYS))
    send_set(bench, frames(0), 100_000_000)
    bench.wait(lambda: (d := bench.latest_diagnostics())['non-finite outputs'] == '1'
               and d['level'] == DiagnosticStatus.ERROR, 15, 'ERROR for the non-finite set')
    diag = bench.latest_diagnostics()
    assert 'not publishing: classifier output is not finite' in diag['message']
    assert bench.outputs['probability'] == [] and diag['sets published'] == '0'


def test_a_reload_of_corrupt_weights_keeps_the_old_model(bench, node, checkpoint_for,
                                                         tmp_path):
    bad = corrupt(checkpoint_for(KEYS), tmp_path)
    assert bench.set_parameter('checkpoint_path', str(bad)).successful   # loads in background
    diag = reload_failures(bench, 1)
    assert diag['level'] == DiagnosticStatus.WARN and 'non-finite' in diag['message']
    serves_next_set(bench, 100_000_000)


def reload_failures(bench, count):
    """Diagnostics once `count` reloads have failed and none is loading."""
    bench.wait(lambda: (d := bench.latest_diagnostics())['reload failures'] == str(count)
               and d['reload'] == 'idle', 30, f'{count} reload failures')
    return bench.latest_diagnostics()


def rewrite_params(checkpoint_folder, tmp_path, name, change):
    """A copy of the checkpoint whose params went through `change` (written as hil-serl's
    legacy msgpack, the sidecar kept)."""
    copy = tmp_path / name
    shutil.copytree(checkpoint_folder, copy)
    [ckpt] = copy.glob('checkpoint_*')
    params = load_checkpoint(ckpt, image_keys=KEYS).params
    change(params)
    ckpt.write_bytes(serialization.msgpack_serialize({'step': 150, 'params': params}))
    return copy


def exponent_flip(params):
    """One finite weight made huge by one flipped exponent bit, as a bad disk sector does."""
    kernel = np.array(params['Dense_0']['kernel'])
    kernel.view(np.uint32)[0, 0] ^= 1 << 30
    assert np.isfinite(kernel).all() and abs(kernel[0, 0]) > 1e30
    params['Dense_0']['kernel'] = kernel


def deep_sidecar(checkpoint_folder, tmp_path):
    copy = tmp_path / 'deep_sidecar'
    shutil.copytree(checkpoint_folder, copy)
    [sidecar] = copy.glob('hil_serl_reward_*.json')
    sidecar.write_text('[' * 200_000 + ']' * 200_000)
    return copy


def huge_orbax(checkpoint_folder, tmp_path):
    """An Orbax checkpoint (zarr, no OCDBT, as older orbax wrote) whose array metadata claims
    2^40 elements: restoring it allocated them (std::bad_alloc, the process aborted)."""
    import orbax.checkpoint as ocp
    folder = tmp_path / 'huge_orbax' / 'checkpoint_1'
    ocp.Checkpointer(ocp.PyTreeCheckpointHandler(use_ocdbt=False)).save(
        folder, {'step': np.int32(1), 'params': {'Dense_1': {'bias': np.zeros(1, np.float32)}}})
    zarray = folder / 'params.Dense_1.bias' / '.zarray'
    zarray.write_text(zarray.read_text().replace('"shape":[1]', '"shape":[1099511627776]'))
    return folder.parent


def fifo(checkpoint_folder, tmp_path):
    path = tmp_path / 'checkpoint_7'
    os.mkfifo(path)
    return path


HOSTILE_CHECKPOINTS = {     # name: (make(checkpoint folder, tmp_path), what the error says)
    'fifo': (fifo, 'is a FIFO, not a checkpoint'),
    'dev_zero': (lambda folder, tmp: Path('/dev/zero'), 'is a character device'),
    'deep_sidecar': (deep_sidecar, 'is not valid JSON: nested too deeply'),
    'huge_orbax': (huge_orbax, 'declares arrays of 4096.0 GiB'),
    'bool_head': (lambda folder, tmp: rewrite_params(folder, tmp, 'bool_head', lambda p: p[
        'Dense_1'].update(kernel=p['Dense_1']['kernel'] > 0)), 'Dense_1/kernel (256, 1) is bool'),
    'int_head': (lambda folder, tmp: rewrite_params(folder, tmp, 'int_head', lambda p: p[
        'Dense_1'].update(kernel=p['Dense_1']['kernel'].astype(np.int32))), 'is int32'),
    'exponent_flip': (lambda folder, tmp: rewrite_params(folder, tmp, 'flip', exponent_flip),
                      'probe image is not finite'),
}


@pytest.mark.parametrize('kind', HOSTILE_CHECKPOINTS)
def test_a_hostile_checkpoint_is_one_line_at_start_up(bench, checkpoint_for, tmp_path, kind):
    make, message = HOSTILE_CHECKPOINTS[kind]
    path = make(checkpoint_for(KEYS), tmp_path)
    with pytest.raises(CheckpointError, match=re.escape(message)):
        RewardClassifier.from_checkpoint(path, image_keys=KEYS, device='cpu')
    with pytest.raises(StartupError, match=re.escape(message)):
        bench.start_node(checkpoint_path=str(path), image_keys=list(KEYS))


def test_the_node_process_says_a_deep_sidecar_in_one_line(checkpoint_for, tmp_path):
    path = deep_sidecar(checkpoint_for(KEYS), tmp_path)
    result = run_node('--ros-args', '-p', f'checkpoint_path:={path}',
                      '-p', 'image_keys:=[wrist_1, front]', timeout=60)
    assert result.returncode == 1 and 'Traceback' not in result.stderr, result.stderr
    assert 'nested too deeply' in result.stderr


def test_no_hostile_checkpoint_ends_a_serving_node(bench, node, checkpoint_for, tmp_path):
    """`ros2 param set ... checkpoint_path` to each: refused at once where a look at the path
    tells (FIFO, device), else loaded beside the serving model and refused; it serves on."""
    failures = 0
    for stamp, (kind, (make, message)) in enumerate(HOSTILE_CHECKPOINTS.items(), start=1):
        result = bench.set_parameter('checkpoint_path', str(make(checkpoint_for(KEYS),
                                                                 tmp_path)))
        failures += 1
        if result.successful:
            diag = reload_failures(bench, failures)
            assert message in diag['message'] and diag['level'] == DiagnosticStatus.WARN, kind
        else:
            assert message in result.reason, kind
        serves_next_set(bench, stamp * 100_000_000)
    assert bench.node.checkpoint_path == str(checkpoint_for(KEYS))


# ---- 8. crafted pickles ------------------------------------------------------------------

class RunsCode:
    """What a crafted pickle does: names a callable that the unpickler calls."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def crafted_data(tmp_path, marker):
    folder = tmp_path / 'classifier_data'
    folder.mkdir()
    item = transition({k: np.zeros((128, 128, 3), np.uint8) for k in KEYS}, {})
    item['rewards'] = RunsCode(marker)
    write_pickle(folder / 'x_1_success_images_t.pkl', [item])
    write_pickle(folder / 'x_failure_images_t.pkl', [item])
    return folder


def test_crafted_classifier_data_does_not_run_code(tmp_path, capsys, checkpoint_for):
    marker = tmp_path / 'ran'
    data = crafted_data(tmp_path, marker)
    code = train_classifier.main(['--data', str(data), '--image-keys', *KEYS, '--random-init',
                                  '--steps', '1', '--output', str(tmp_path / 'ckpt')])
    assert code == 2 and not marker.exists()
    assert 'refusing posix.system' in capsys.readouterr().err
    code = evaluate.main([str(checkpoint_for(KEYS)), '--classifier-data', str(data),
                          '--image-keys', *KEYS, '--output', str(tmp_path / 'eval')])
    assert code == 2 and not marker.exists()
    assert '--trust-pickles' in capsys.readouterr().err


def test_trust_pickles_opts_out(tmp_path):
    marker = tmp_path / 'ran'
    from hil_serl_reward.data.classifier_data import load_classifier_data
    load_classifier_data(crafted_data(tmp_path, marker), KEYS, trusted=True)
    assert marker.exists()


def test_crafted_resnet10_weights_do_not_run_code(tmp_path):
    marker = tmp_path / 'ran'
    path = tmp_path / 'resnet10_params.pkl'
    path.write_bytes(pickle.dumps({'conv_init': RunsCode(marker)}))
    with pytest.raises(PretrainedWeightsError, match='refusing posix.system'):
        load_resnet10_weights(path)
    assert not marker.exists()


class Reduce:
    """Pickles as `func(*args)`, then BUILD with `state` where given: how a crafted file
    drives the allowed numpy functions."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args,
                                                                  self.state)


_reconstruct = pickle.loads(pickle.dumps(np.zeros(1), protocol=2)).__reduce__()[0]
_frombuffer = np.zeros(1).__reduce_ex__(5)[0]
OBJECT_FIELDS = (3, '|', None, ('a', 'b'), {'a': (np.dtype('O'), 0), 'b': (np.dtype('O'), 8)},
                 16, 8, 63)
CRAFTED_PICKLES = {   # name: (the pickle, what the refusal says)
    'object_field_array': (pickle.dumps(Reduce(_reconstruct, (np.ndarray, (0,), b'b'), (
        1, (1,), Reduce(np.dtype, ('V16', False, True), OBJECT_FIELDS), False, b'A' * 16)),
        protocol=2), "refusing dtype '|V16'"),
    'object_flags_on_float': (pickle.dumps(Reduce(np.dtype, ('f8', False, True), (
        3, '<', None, None, None, -1, -1, 63)), protocol=2), 'refusing dtype state'),
    'punycode': (pickle.dumps(Reduce(codecs.encode, ('\u00e9' * 1000, 'punycode'))),
                 "refusing _codecs.encode(..., 'punycode')"),
    'reconstruct_allocates': (pickle.dumps(Reduce(_reconstruct, (np.ndarray, (10**9,), b'b'))),
                              'refusing _reconstruct'),
    'ndarray_called': (pickle.dumps(Reduce(np.ndarray, ((10**9,),))), 'refusing calling'),
    'frombuffer_short': (pickle.dumps(Reduce(_frombuffer, (b'x', np.dtype('u1'), (10**9,), 'C'))),
                         'over 1 bytes'),
    'bytearray8_declared_huge': (b'\x80\x05\x96' + (2**40).to_bytes(8, 'little') + b'.',
                                 'declares 1099511627776 bytes'),
    'newobj': (b'\x80\x02cnumpy\nndarray\n)\x81.', 'the NEWOBJ opcode'),
}


@pytest.mark.parametrize('name', CRAFTED_PICKLES)
def test_a_crafted_pickle_is_refused_without_crash_hang_or_allocation(tmp_path, name):
    """In a child with 4 GB of address space and 30 s: a segfault, a 1.5 GB allocation or a
    159 s codec there fails this test instead of the suite."""
    data, message = CRAFTED_PICKLES[name]
    path = tmp_path / 'crafted.pkl'
    path.write_bytes(data)
    child = ('import resource, sys\n'
             'resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n'
             'from hil_serl_reward.model import safe_pickle\n'
             'try:\n    safe_pickle.load_path(sys.argv[1])\n'
             'except safe_pickle.UnsafePickleError as exc:\n    print(exc)\n    sys.exit(3)\n')
    result = subprocess.run([sys.executable, '-c', child, str(path)], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 3, (result.returncode, result.stderr[-2000:])
    assert message in result.stdout and str(path) in result.stdout


def classifier_data_of(tmp_path, transitions):
    folder = tmp_path / 'classifier_data'
    folder.mkdir()
    write_pickle(folder / 'x_1_success_images_t.pkl', transitions)
    return folder


def frame_transition(image):
    return transition({k: image for k in KEYS}, {})


@pytest.mark.parametrize('transitions, message', [
    ([frame_transition(np.zeros((128, 128, 3), np.uint8))] * 80_000,
     'hold 7500 MiB of images, more than the file'),
    ([frame_transition(np.full((128, 128, 3), np.nan, np.float32))],
     "transition 0, camera 'wrist_1': expected uint8 images (128, 128, 3) or (T, 128, 128, 3), "
     "found float32 (1, 128, 128, 3)"),
    ([frame_transition(np.zeros((64, 64, 3), np.uint8))], 'found uint8 (1, 64, 64, 3)'),
    ([1, 2], 'transition 0 is not a dict'),
    ([{'observations': None}], "transition 0 is not a dict with an 'observations' dict"),
])
def test_malformed_classifier_data_is_one_line(tmp_path, capsys, transitions, message):
    data = classifier_data_of(tmp_path, transitions)
    code = train_classifier.main(['--data', str(data), '--image-keys', *KEYS, '--random-init',
                                  '--steps', '1', '--output', str(tmp_path / 'ckpt')])
    err = capsys.readouterr().err
    assert code == 2 and message in err and 'Traceback' not in err, err


def test_a_truncated_classifier_data_file_is_one_line(tmp_path, capsys, checkpoint_for):
    data = classifier_data_of(tmp_path, [frame_transition(np.zeros((128, 128, 3), np.uint8))])
    [path] = data.glob('*.pkl')
    path.write_bytes(path.read_bytes()[:5000])
    code = evaluate.main([str(checkpoint_for(KEYS)), '--classifier-data', str(data),
                          '--image-keys', *KEYS, '--output', str(tmp_path / 'eval')])
    err = capsys.readouterr().err
    assert code == 2 and 'truncated or crafted' in err and 'Traceback' not in err, err


# ---- held before, kept holding -----------------------------------------------------------

def test_a_killed_camera_publisher_warns_and_serving_resumes(bench, node):
    serves_next_set(bench, 100_000_000)
    node.camera_timeout = 0.5
    bench.probe.destroy_publisher(bench.publishers.pop('front'))
    gone = f'no publisher on {bench.namespace}/front/image_raw'
    bench.wait(lambda: 'front (silent' in bench.latest_diagnostics()['message'] and
               gone in bench.latest_diagnostics()['message'], 10, 'a silent-camera warning')
    bench.connect(list(KEYS))                      # the camera comes back
    node.camera_timeout = 60.0
    serves_next_set(bench, 200_000_000)
    assert bench.latest_diagnostics()['level'] == DiagnosticStatus.OK


def test_a_checkpoint_of_other_cameras_fails_at_start_with_both_lists(bench, checkpoint_for):
    with pytest.raises(StartupError, match=r"holds cameras \['side'\].*\['wrist_1', 'front'\]"):
        bench.start_node(checkpoint_path=str(checkpoint_for(('side',))), image_keys=list(KEYS))


def test_classifier_data_loads_restricted_as_the_recorder_writes_it(tmp_path):
    from hil_serl_reward.data.classifier_data import load_classifier_data
    item = transition({k: np.full((128, 128, 3), 7, np.uint8) for k in KEYS}, {})
    write_pickle(tmp_path / 'e_1_success_images_t.pkl', [item])
    images, labels = load_classifier_data(tmp_path, KEYS)
    assert labels.tolist() == [1] and int(images['front'][0, 0, 0, 0]) == 7
