"""The package layout is the architecture: each layer imports only the layers below it, and
the pure ones (model, pipeline, data) import no ROS at all, so they stay testable without
rclpy and usable in a training script."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'hil_serl_reward'
# Layers bottom-up; a module may import its own layer and those listed before it.
LAYERS = ('model', 'pipeline', 'data', 'ros', 'tools')
PURE = ('model', 'pipeline', 'data')
ROS_MODULES = {'rclpy', 'launch', 'launch_ros', 'launch_testing', 'message_filters', 'rosbags',
               'ament_index_python', 'builtin_interfaces', 'diagnostic_msgs', 'lifecycle_msgs',
               'rcl_interfaces', 'sensor_msgs', 'std_msgs', 'vision_msgs'}
# The RL side's API at the top of the package: it reads results over DDS, never runs the model.
TOP_LEVEL = {'client': {'ros', 'pipeline'}, 'remote_classifier': {'ros', 'pipeline', 'client'},
             'gym_wrapper': {'ros', 'pipeline', 'client', 'remote_classifier'}}


def imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def own_layer(module: str):
    parts = module.split('.')
    return parts[1] if parts[0] == 'hil_serl_reward' and len(parts) > 1 else None


def modules_of(layer: str):
    return sorted((PACKAGE / layer).rglob('*.py'))


def test_every_module_sits_in_a_layer():
    loose = {p.stem for p in PACKAGE.glob('*.py')} - {'__init__'} - set(TOP_LEVEL)
    assert not loose, f'modules outside the layers {LAYERS}: {sorted(loose)}'
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != '__pycache__'} \
        == set(LAYERS)


@pytest.mark.parametrize('layer', LAYERS)
def test_a_layer_imports_only_the_layers_below_it(layer):
    allowed = set(LAYERS[:LAYERS.index(layer) + 1])
    wrong = [(path.name, module) for path in modules_of(layer)
             for module in imported_modules(path)
             if own_layer(module) not in (None, *allowed)]
    assert not wrong, f'{layer} may import {sorted(allowed)} only: {wrong}'


@pytest.mark.parametrize('layer', PURE)
def test_the_pure_layers_import_no_ros(layer):
    wrong = [(path.name, module) for path in modules_of(layer)
             for module in imported_modules(path) if module.split('.')[0] in ROS_MODULES]
    assert not wrong, f'{layer} is pure Python/JAX, without ROS: {wrong}'


@pytest.mark.parametrize('module', sorted(TOP_LEVEL))
def test_the_rl_side_imports_no_model(module):
    imports = set(imported_modules(PACKAGE / f'{module}.py'))
    assert {own_layer(m) for m in imports} - {None} <= TOP_LEVEL[module], imports
    assert not {'jax', 'flax'} & {m.split('.')[0] for m in imports}, imports
