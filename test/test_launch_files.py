"""Launch files and params YAMLs agree with the node and with setup.py.

`launch`/`launch_ros` are not installable here, so the files are checked statically; where
`launch` is importable the launch descriptions are also built and visited for real.
"""
import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hil_serl_reward.ros import config
from hil_serl_reward.ros.params_file import read_node_parameters

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / 'launch').glob('*.launch.py'))
NODE_YAMLS = ['classifier.yaml', 'demo.yaml', *(f'examples/{p.name}' for p in sorted(
    (ROOT / 'config' / 'examples').glob('*.yaml')))]


def launch_installed():
    """The real launch package (our own launch/ folder also resolves as `launch`)."""
    try:
        from launch import LaunchDescription  # noqa: F401
    except ImportError:
        return False
    return True


def console_scripts():
    """{executable: (module, function)} of setup.py's console scripts."""
    tree = ast.parse((ROOT / 'setup.py').read_text())
    scripts = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = re.match(r'^\s*(\w+)\s*=\s*(hil_serl_reward\.[\w.]+):(\w+)$', node.value)
            if match:
                scripts[match.group(1)] = match.group(2, 3)
    return scripts


def node_calls(path):
    """(package, executable) of every Node(...) call with literal arguments."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'Node':
            kwargs = {k.arg: k.value for k in node.keywords}
            package, executable = kwargs['package'], kwargs['executable']
            if not isinstance(executable, ast.Constant):
                continue                    # a driver's: from hil_serl_reward.ros.drivers
            package = package.value if isinstance(package, ast.Constant) else 'hil_serl_reward'
            calls.append((package, executable.value))
    return calls


def test_launch_files_parse_and_define_generate_launch_description():
    assert {p.name for p in LAUNCH_FILES} == {'classifier.launch.py', 'demo.launch.py'}
    for path in LAUNCH_FILES:
        tree = ast.parse(path.read_text())
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert 'generate_launch_description' in names, path.name


# What the venv adds on an apt install: `ros2 launch` runs the launch files under the Python of
# the `ros2` command (the system Python there), which does not see them.
VENV_ONLY = ('jax', 'jaxlib', 'flax', 'optax', 'orbax', 'tensorstore', 'gymnasium', 'rosbags')
BLOCK_VENV_ONLY = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {VENV_ONLY!r}:
            raise ImportError(f'{{name}} is in the venv, not in the system Python of ros2')
sys.meta_path.insert(0, Block())
"""


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_need_nothing_from_the_venv(path):
    """Every hil_serl_reward module a launch file imports loads without JAX, Flax, ...: on an
    apt install `ros2 launch` failed with "No module named 'jax'" before the node started."""
    modules = sorted({node.module for node in ast.walk(ast.parse(path.read_text()))
                      if isinstance(node, ast.ImportFrom) and node.module
                      and node.module.startswith('hil_serl_reward')})
    assert modules, f'{path.name} imports nothing from hil_serl_reward: is this test stale?'
    # Where `launch` itself is not installed (a plain venv), modules that import it are
    # checked where it is (make upstream-test, the apt route).
    code = BLOCK_VENV_ONLY + ''.join(
        f"try:\n    import {m}\nexcept ModuleNotFoundError as e:\n"
        f"    if e.name.split('.')[0] not in ('launch', 'launch_ros'):\n        raise\n"
        for m in modules)
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=120, env={**os.environ, 'PYTHONPATH': str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]


def test_every_own_executable_is_a_console_script():
    scripts = console_scripts()
    assert {'classifier_node', 'camera_sim', 'inspect_checkpoint', 'evaluate'} <= set(scripts)
    own = [exe for path in LAUNCH_FILES for pkg, exe in node_calls(path)
           if pkg == 'hil_serl_reward']
    assert own and set(own) <= set(scripts)
    for module, function in scripts.values():
        assert callable(getattr(importlib.import_module(module), function)), (module, function)


def test_camera_drivers_named_are_the_real_ones():
    """The driver modules and the stand-ins (written apart, from the drivers' sources) agree
    on every package and executable name."""
    import driver_standins
    from hil_serl_reward.ros import drivers
    named = {(module.PACKAGE, module.EXECUTABLE) for module in drivers.DRIVERS.values()}
    assert named == {('realsense2_camera', 'realsense2_camera_node'),
                     ('usb_cam', 'usb_cam_node_exe'), ('v4l2_camera', 'v4l2_camera_node')}
    assert named == {(d.package, d.executable) for d in driver_standins.DRIVERS.values()}


@pytest.mark.parametrize('name', NODE_YAMLS)
def test_yaml_parameters_are_declared_and_valid(name):
    params = read_node_parameters(ROOT / 'config' / name)
    declared = set(config.all_parameter_names(params['image_keys']))
    node_params = {n for n in params if not config.is_driver_parameter(n, params['image_keys'])}
    assert node_params <= declared, node_params - declared
    assert config.check(params) == []


def test_default_yaml_lists_every_declared_parameter():
    params = read_node_parameters(ROOT / 'config' / 'classifier.yaml')
    node_params = {n for n in params if not config.is_driver_parameter(n, params['image_keys'])}
    assert node_params == set(config.all_parameter_names(params['image_keys']))
    assert {n for n in params if n not in node_params}      # and the drivers, as an example
    assert params['image_keys'] == ['wrist_1', 'front']
    assert params['cameras.wrist_1.crop'] and params['cameras.front.crop']


def test_usb_pickup_insertion_example_is_one_camera_128_crop():
    params = read_node_parameters(ROOT / 'config' / 'examples' / 'usb_pickup_insertion.yaml')
    assert params['image_keys'] == ['side_classifier']
    assert params['cameras.side_classifier.crop'] == '270:398, 500:628'


def test_referenced_files_are_installed():
    setup = (ROOT / 'setup.py').read_text()
    assert "glob('launch/*.py')" in setup and "glob('config/*.yaml')" in setup
    assert "glob('config/examples/*.yaml')" in setup
    assert "glob('config/*.xml')" in setup
    for path in LAUNCH_FILES:
        for ref in re.findall(r"'config', '([\w.]+)'", path.read_text()):
            assert (ROOT / 'config' / ref).exists(), ref
        for ref in re.findall(r"\b(PROFILE)\b", path.read_text()):
            from hil_serl_reward.ros.dds import PROFILE
            assert (ROOT / 'config' / PROFILE).exists()


def launch_module(path: Path):
    """A launch file imported as a module (as `ros2 launch` does), not installed."""
    spec = importlib.util.spec_from_file_location(path.stem.replace('.', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def source_tree_prefix(tmp_path, monkeypatch):
    """An ament prefix whose hil_serl_reward share is this source tree's config/ and launch/,
    beside the camera drivers' stand-ins: the launch files find their package, and
    start_cameras:=true its drivers, without a colcon install."""
    import driver_standins
    driver_standins.make_overlay(tmp_path)
    index = tmp_path / 'share' / 'ament_index' / 'resource_index' / 'packages'
    (index / 'hil_serl_reward').write_text('')
    share = tmp_path / 'share' / 'hil_serl_reward'
    share.mkdir()
    for folder in ('config', 'launch'):
        (share / folder).symlink_to(ROOT / folder)
    monkeypatch.setenv('AMENT_PREFIX_PATH', ':'.join(
        p for p in (str(tmp_path), os.environ.get('AMENT_PREFIX_PATH')) if p))
    return tmp_path


@pytest.mark.skipif(not launch_installed(),
                    reason='launch is not installed here (it is on every ROS 2 install)')
@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_description_builds_for_real(path, source_tree_prefix):
    from launch import LaunchContext, LaunchDescription
    description = launch_module(path).generate_launch_description()
    assert isinstance(description, LaunchDescription)
    context = LaunchContext()
    actions = []
    for entity in description.entities:
        actions += entity.visit(context) or []          # what OpaqueFunction returns
    nodes = [a for a in actions if type(a).__name__ == 'Node']
    assert any(n.node_executable == 'classifier_node' for n in nodes), actions
    # the launch fails with the reward node (launch_actions.shut_down_when_it_fails)
    assert any(type(a).__name__ == 'RegisterEventHandler' for a in actions), actions


def visit_classifier_launch(**arguments: str) -> list:
    """The actions classifier.launch.py gives for these launch arguments (the others at
    their defaults)."""
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    entities = launch_module(ROOT / 'launch' / 'classifier.launch.py'
                             ).generate_launch_description().entities
    context = LaunchContext()
    context.launch_configurations.update(
        {a.name: a.default_value[0].perform(context)
         for a in entities if isinstance(a, DeclareLaunchArgument)})
    context.launch_configurations.update(arguments)
    actions = []
    for entity in entities:
        if isinstance(entity, OpaqueFunction):
            actions += entity.visit(context) or []
    return actions


@pytest.mark.skipif(not launch_installed(),
                    reason='launch is not installed here (it is on every ROS 2 install)')
def test_stages_start_one_reward_node_each_on_cameras_started_once(source_tree_prefix,
                                                                   tmp_path):
    """stages:=stage_1,stage_2: two reward nodes in <namespace>/stage_1 and /stage_2, each
    remapped to the one set of drivers (absolute topics) and each shutting the launch down
    when it fails; checkpoint_path:= with stages is refused (it would be every stage's);
    with `rigs` one reward node and each rig's drivers in its namespace, from per-rig
    devices (one device for two rigs refused, naming the fix)."""
    import yaml
    from launch import LaunchContext
    visit = visit_classifier_launch
    rig = tmp_path / 'rig.yaml'
    rig.write_text(yaml.safe_dump({'/**': {'ros__parameters': {
        'image_keys': ['wrist_1', 'front'], 'cameras': {
            key: {'driver': {'kind': 'usb_cam', 'device': f'/dev/video{i}'}}
            for i, key in enumerate(('wrist_1', 'front'))}}}}))

    actions = visit(params_file=str(rig), start_cameras='true', stages='stage_1,stage_2')
    nodes = [a for a in actions if type(a).__name__ == 'Node']
    reward = [n for n in nodes if n.node_executable == 'classifier_node']
    drivers = [n for n in nodes if n.node_executable != 'classifier_node']
    assert [n._Node__node_namespace for n in reward] == ['stage_1', 'stage_2']
    assert len(drivers) == 2
    for node in reward:
        remaps = {''.join(s.perform(LaunchContext()) for s in src):
                  ''.join(s.perform(LaunchContext()) for s in dst)
                  for src, dst in node._Node__remappings}
        assert remaps == {'wrist_1/image_raw': '/camera/wrist_1/image_raw',
                          'front/image_raw': '/camera/front/image_raw'}
    assert sum(type(a).__name__ == 'RegisterEventHandler' for a in actions) == 2
    with pytest.raises(RuntimeError, match='every stage the same checkpoint'):
        visit(params_file=str(rig), stages='stage_1,stage_2', checkpoint_path='/x')
    rigs = tmp_path / 'rigs.yaml'
    rigs.write_text(rig.read_text().replace("image_keys:", "rigs: [left, right]\n    image_keys:"))
    reward = [a for a in visit(params_file=str(rigs)) if type(a).__name__ == 'Node']
    assert [n.node_executable for n in reward] == ['classifier_node']
    devices = ','.join(f'{rig}/{key}=/dev/video{i}' for i, (rig, key) in enumerate(
        (rig, key) for rig in ('left', 'right') for key in ('wrist_1', 'front')))
    nodes = [a for a in visit(params_file=str(rigs), start_cameras='true', devices=devices)
             if type(a).__name__ == 'Node']
    reward = [n for n in nodes if n.node_executable == 'classifier_node']
    drivers = [n for n in nodes if n.node_executable != 'classifier_node']
    assert len(reward) == 1
    assert sorted(n._Node__node_namespace for n in drivers) == [
        'left/camera/left_front', 'left/camera/left_wrist_1', 'right/camera/right_front',
        'right/camera/right_wrist_1']
    remaps = {''.join(s.perform(LaunchContext()) for s in src):
              ''.join(s.perform(LaunchContext()) for s in dst)
              for src, dst in reward[0]._Node__remappings}
    assert remaps == {f'{rig}/{key}/image_raw': f'{rig}/camera/{rig}_{key}/image_raw'
                      for rig in ('left', 'right') for key in ('wrist_1', 'front')}
    staged = [n for n in visit(params_file=str(rigs), start_cameras='true', devices=devices,
                               stages='stage_1,stage_2')
              if type(n).__name__ == 'Node' and n.node_executable == 'classifier_node']
    assert len(staged) == 2
    for node in staged:                 # a stage's node: the rigs' driver topics, absolute
        remaps = {''.join(s.perform(LaunchContext()) for s in src):
                  ''.join(s.perform(LaunchContext()) for s in dst)
                  for src, dst in node._Node__remappings}
        assert remaps['right/front/image_raw'] == '/right/camera/right_front/image_raw'
    with pytest.raises(RuntimeError, match=r"rigs 'left' and 'right' would both open "
                                           r"v4l2:/dev/video0"):
        visit(params_file=str(rigs), start_cameras='true')


@pytest.mark.skipif(not launch_installed(),
                    reason='launch is not installed here (it is on every ROS 2 install)')
def test_a_driver_that_is_not_installed_stops_the_launch_before_any_process(
        source_tree_prefix, tmp_path, monkeypatch):
    """A first launch without the drivers' packages (no rosdep install): refused before any
    process starts, naming the cameras and the apt package; launch_ros alone would start the
    drivers before it and then say only `package 'realsense2_camera' not found`."""
    import shutil
    import yaml
    for package in ('realsense2_camera', 'usb_cam'):
        (source_tree_prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' /
         package).unlink()
        shutil.rmtree(source_tree_prefix / 'share' / package)
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(source_tree_prefix))   # not /opt/ros's drivers
    rig = tmp_path / 'rig.yaml'
    rig.write_text(yaml.safe_dump({'/**': {'ros__parameters': {
        'image_keys': ['wrist_1', 'front'], 'cameras': {
            'wrist_1': {'driver': {'kind': 'v4l2_camera', 'device': '/dev/video0'}},
            'front': {'driver': {'kind': 'usb_cam', 'device': '/dev/video1'}}}}}}))
    visit = visit_classifier_launch
    with pytest.raises(RuntimeError) as refused:
        visit(params_file=str(rig), start_cameras='true')
    assert str(refused.value).startswith(
        'cameras front: usb_cam is not installed (not on AMENT_PREFIX_PATH): '
        '`sudo apt install ros-$ROS_DISTRO-usb-cam`; or `rosdep install'), refused.value
    with pytest.raises(RuntimeError, match=r'^cameras wrist_1, front: realsense2_camera is not '
                                           r'installed .*ros-\$ROS_DISTRO-realsense2-camera`;'):
        visit(params_file=str(rig), start_cameras='true', camera_driver='realsense',
              serials='wrist_1=1,front=2')
    nodes = [a for a in visit(params_file=str(rig), start_cameras='true',
                              camera_driver='v4l2_camera') if type(a).__name__ == 'Node']
    assert len(nodes) == 3                              # v4l2_camera is there: two drivers
    nodes = [a for a in visit(params_file=str(rig), start_cameras='true', camera_driver='none')
             if type(a).__name__ == 'Node']
    assert [n.node_executable for n in nodes] == ['classifier_node']


@pytest.mark.skipif(not launch_installed(),
                    reason='launch is not installed here (it is on every ROS 2 install)')
def test_the_launch_says_a_usb_camera_asked_for_more_than_usb2_carries(source_tree_prefix,
                                                                       tmp_path):
    """The shipped 1280x720 at 15 fps, with usb_cam's YUYV: said before the driver starts."""
    import yaml
    rig = tmp_path / 'rig.yaml'
    rig.write_text(yaml.safe_dump({'/**': {'ros__parameters': {
        'image_keys': ['wrist_1', 'front'], 'cameras': {
            'wrist_1': {'driver': {'kind': 'usb_cam', 'device': '/dev/video0', 'width': 1280,
                                   'height': 720, 'fps': 15}},
            'front': {'driver': {'kind': 'usb_cam', 'device': '/dev/video1', 'width': 1280,
                                 'height': 720, 'fps': 15, 'pixel_format': 'mjpeg2rgb'}}}}}}))
    actions = visit_classifier_launch(params_file=str(rig), start_cameras='true')
    said = [a.msg for a in actions if type(a).__name__ == 'LogInfo']
    assert len(said) == 1 and said[0][0].text.startswith(
        "cameras.wrist_1: usb_cam's yuyv2rgb at 1280x720 and 15 fps is 27.6 MB/s"), said
    first_driver = next(i for i, a in enumerate(actions) if type(a).__name__ == 'Node')
    assert [type(a).__name__ for a in actions].index('LogInfo') < first_driver
