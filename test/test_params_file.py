"""params_file.node_parameters reads what rcl gives a node: checked against rclpy itself for
wildcards, namespaces, exact names, several sections and several files."""
import pytest
import rclpy
from rclpy.node import Node

from hil_serl_reward.ros.params_file import node_parameters, read_node_parameters

FIRST = """
/ns/hil_serl_reward:
  ros__parameters: {a: exact, e: exact, cameras: {front: {crop: "1:2, 3:4"}}}
/**:
  ros__parameters: {a: wild, b: wild, c: wild, f: wild}
/**/hil_serl_reward:
  ros__parameters: {b: wildname, c: wildname}
/*/hil_serl_reward:
  ros__parameters: {c: onestar, d: onestar}
hil_serl_reward:
  ros__parameters: {g: root_only}
/ns/*:
  ros__parameters: {h: any_node_in_ns}
/ns/other_node:
  ros__parameters: {i: not_ours}
"""
SECOND = """
/**:
  ros__parameters: {e: second_file_wild}
/ns/hil_serl_reward:
  ros__parameters: {j: second_file_exact}
"""


def rclpy_overrides(files, namespace):
    context = rclpy.Context()
    args = ['--ros-args'] + [arg for f in files for arg in ('--params-file', str(f))]
    rclpy.init(args=args, context=context)
    try:
        node = Node('hil_serl_reward', namespace=namespace, context=context)
        values = {name: p.value for name, p in node._parameter_overrides.items()}
        node.destroy_node()
        return values
    finally:
        rclpy.shutdown(context=context)


@pytest.mark.parametrize('namespace', ['/', '/ns', '/a/b'])
def test_the_same_parameters_as_rclpy(tmp_path, namespace):
    first, second = tmp_path / 'first.yaml', tmp_path / 'second.yaml'
    first.write_text(FIRST)
    second.write_text(SECOND)
    expected = rclpy_overrides([first, second], namespace)
    assert node_parameters([first, second], namespace=namespace) == expected
    assert 'i' not in expected                     # another node's section stays out


def test_a_wildcard_only_file_applies(tmp_path):
    path = tmp_path / 'rig.yaml'
    path.write_text('/**:\n  ros__parameters:\n    threshold: 0.7\n'
                    '    cameras: {wrist_1: {crop: "10:20, 30:40"}}\n')
    assert read_node_parameters(path) == {'threshold': 0.7, 'cameras.wrist_1.crop': '10:20, 30:40'}
    assert read_node_parameters(path, namespace='/robot_1') == read_node_parameters(path)


def test_no_matching_section_names_what_was_there(tmp_path):
    path = tmp_path / 'other.yaml'
    path.write_text('/camera_sim:\n  ros__parameters: {rate: 15.0}\n')
    with pytest.raises(ValueError, match=r"no section applies to node '/hil_serl_reward'"):
        read_node_parameters(path)
    assert read_node_parameters(path, 'camera_sim') == {'rate': 15.0}
