"""params_file.node_parameters reads what rcl gives a node: checked against rclpy itself for
wildcards, namespaces, exact names, several sections and several files."""
import math

import pytest
import rclpy
import yaml
from rclpy.node import Node

from hil_serl_reward.ros.params_file import node_parameters, read_node_parameters, without_text

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


SCALARS = """
/**:
  ros__parameters:
    sync_slop: 1e-9
    exposure: 1.5e3
    threshold: .7
    rate: 5.
    tiny: 1e-400
    huge: 1e999
    big_int: 99999999999999999999
    hex: 0x1F
    negative_hex: -0x10
    octal_serial: 036522070660
    decimal_serial: 0389123456
    quoted_serial: '036522070660'
    quoted_number: "1e-9"
    python_octal: 0o17
    underscored: 1_000
    clock: 12:30
    date: 2024-01-01
    tilde: ~
    null_word: null
    y: y
    off_word: off
    plus: +5
    nan: .nan
    upper_nan: NaN
    minus_inf: -.Inf
    inf_word: inf
    hex_float: 0x1.8p1
    doubles: [1e-9, 2.5]
    bools: [y, off]
"""


def same_as_rcl(ours, theirs):
    """The same value of the same ROS type (bool, int, float, str, or arrays of one)."""
    if isinstance(theirs, float) and math.isnan(theirs):
        return isinstance(ours, float) and math.isnan(ours)
    if isinstance(theirs, (list, tuple)) or hasattr(theirs, 'tolist'):
        theirs = list(theirs)
        return isinstance(ours, list) and len(ours) == len(theirs) and all(
            same_as_rcl(a, b) for a, b in zip(ours, theirs))
    kinds = (bool, int, float, str)
    return ours == theirs and next(k for k in kinds if isinstance(ours, k)) is \
        next(k for k in kinds if isinstance(theirs, k))


def test_every_scalar_is_typed_as_rcl_types_it(tmp_path):
    """PyYAML reads YAML 1.1, rcl its own rules: `sync_slop: 1e-9` is a string to PyYAML (the
    tools then saw text where the node gets a double), 1_000 and 12:30 numbers, 2024-01-01
    a date, y a string. Every value the same as rclpy's, of the same type."""
    path = tmp_path / 'scalars.yaml'
    path.write_text(SCALARS)
    theirs = rclpy_overrides([path], '/')
    ours = read_node_parameters(path)
    assert set(ours) == set(theirs)
    differ = {name: (ours[name], value) for name, value in theirs.items()
              if not same_as_rcl(ours[name], value)}
    assert not differ, differ
    assert isinstance(ours['sync_slop'], float) and ours['quoted_number'] == '1e-9'


def test_a_number_written_with_a_leading_zero_keeps_its_text(tmp_path):
    """An unquoted serial number with a leading zero: the number rcl gives (octal, or decimal
    where an 8 or 9 follows the 0) and the text it was written as; `without_text` gives the
    plain number, which YAML dumpers (launch_ros's) can write."""
    path = tmp_path / 'serials.yaml'
    path.write_text('/**:\n  ros__parameters:\n    a: 036522070660\n    b: 0389123456\n'
                    '    c: [017, 5]\n')
    values = read_node_parameters(path)
    assert (values['a'], values['a'].written) == (0o36522070660, '036522070660')
    assert (values['b'], values['b'].written) == (389123456.0, '0389123456')
    plain = without_text(values['a']), without_text(values['b']), without_text(values['c'])
    assert [type(v) for v in plain] == [int, float, list] and plain[2] == [15, 5]
    assert '!!python' not in yaml.dump(list(plain))
