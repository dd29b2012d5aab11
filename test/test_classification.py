"""The stamped `classification` topic: the message type built from the wheels, what the node
publishes on it over DDS, and what happens where vision_msgs is missing."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from hil_serl_reward.pipeline.stamps import stamp_to_ns
from hil_serl_reward.ros import classification
from ros_harness import image_msg
from test_classifier_node import CROPS, KEYS, camera_params, frames, send_set

pytestmark = pytest.mark.skipif(classification.UNAVAILABLE is not None,
                                reason=classification.UNAVAILABLE or '')

# REP 2011 hashes a type's field names and types, and those of the types it nests (comments
# and default values are not hashed): upstream vision_msgs' Classification and ObjectHypothesis
# (std_msgs/Header header, ObjectHypothesis[] results; string class_id, float64 score), nesting
# the std_msgs/Header of the ROS 2 wheels, hash to these. A field renamed, retyped, added or
# reordered in msgs/vision_msgs changes them, and an apt-installed subscriber would then no
# longer match our publisher.
UPSTREAM_HASHES = {
    'Classification': 'RIHS01_f74db28d0eaef3afb78f48bf2161cd709a1383a0309d3454383b25be11345143',
    'ObjectHypothesis': 'RIHS01_51da43cec11c01957a64d1e05a24acd18aae7745ec30b74348ad5f6d634f7f90',
}


def type_hash(name: str) -> str:
    import vision_msgs          # <prefix>/lib/python3.X/site-packages/vision_msgs
    share = Path(vision_msgs.__file__).parents[4] / 'share' / 'vision_msgs'
    described = json.loads((share / 'msg' / f'{name}.json').read_text())
    own = [h for h in described['type_hashes'] if h['type_name'] == f'vision_msgs/msg/{name}']
    return own[0]['hash_string']


def test_messages_have_upstreams_fields_and_type_hashes():
    assert classification.Classification.get_fields_and_field_types() == {
        'header': 'std_msgs/Header', 'results': 'sequence<vision_msgs/ObjectHypothesis>'}
    assert classification.ObjectHypothesis.get_fields_and_field_types() == {
        'class_id': 'string', 'score': 'double'}
    assert {name: type_hash(name) for name in UPSTREAM_HASHES} == UPSTREAM_HASHES


@pytest.fixture
def node(bench, checkpoint_for):
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            camera_timeout=60.0, **camera_params(CROPS))
    bench.connect(list(KEYS))
    bench.wait(lambda: node.classification_pub.get_subscription_count() > 0, 10, 'discovery')
    return node


def test_results_carry_the_set_stamp_and_newest_frame_id(bench, node):
    for i in range(3):
        send_set(bench, frames(i), (i + 1) * 100_000_000, jitter_ns=(0, 7_000_000))
        bench.wait(lambda: len(bench.classifications) == i + 1, 15, f'classification {i}')
    bench.wait_outputs(3)
    diag = bench.latest_diagnostics()
    assert diag['classification'] == f'on ({bench.namespace}/classification)'
    stamps = [stamp_to_ns(m.header.stamp) for m in bench.classifications]
    assert stamps == [(i + 1) * 100_000_000 + 7_000_000 for i in range(3)]
    assert str(stamps[-1]) == diag['last set stamp (ns)']
    for msg, probability in zip(bench.classifications, bench.outputs['probability']):
        scores = {h.class_id: h.score for h in msg.results}
        assert set(scores) == {'success', 'failure'}
        assert scores['success'] == pytest.approx(probability, abs=1e-7)   # Float32 vs float64
        assert scores['failure'] == pytest.approx(1.0 - scores['success'], abs=1e-12)


def test_frame_id_comes_from_the_newest_image_unless_set(bench, checkpoint_for):
    bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                     camera_timeout=60.0)
    bench.connect(list(KEYS))
    rgb = frames(1)
    stamps = {'wrist_1': 200_000_000, 'front': 190_000_000}       # wrist_1 is the newer one
    for key in KEYS:
        msg = image_msg(rgb[key], stamps[key])
        msg.header.frame_id = f'{key}_optical_frame'
        bench.publish(key, msg)
    bench.wait(lambda: bench.classifications, 15, 'a classification')
    assert bench.classifications[0].header.frame_id == 'wrist_1_optical_frame'


def test_frame_id_parameter_names_the_frame(bench, checkpoint_for):
    bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                     camera_timeout=60.0, frame_id='workcell')
    bench.connect(list(KEYS))
    send_set(bench, frames(2), 300_000_000)
    bench.wait(lambda: bench.classifications, 15, 'a classification')
    assert bench.classifications[0].header.frame_id == 'workcell'


def test_an_approximate_time_subscriber_pairs_results_with_images(bench, node, message_filters):
    """A recorder pairing `classification` with a camera topic by stamp, as ROS 2 users do."""
    pairs = []
    qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
    subscribers = [
        message_filters.Subscriber(bench.probe, classification.Classification,
                                   classification.TOPIC, qos_profile=qos),
        message_filters.Subscriber(bench.probe, Image, 'front/image_raw', qos_profile=qos)]
    sync = message_filters.ApproximateTimeSynchronizer(subscribers, 20, 0.005)
    sync.registerCallback(lambda result, image: pairs.append(
        (stamp_to_ns(result.header.stamp), stamp_to_ns(image.header.stamp))))
    bench.wait(lambda: bench.camera('front').get_subscription_count() >= 2, 10, 'discovery')
    sent = []
    for i in range(4):
        stamp = (i + 1) * 100_000_000
        send_set(bench, frames(i), stamp)
        sent.append(stamp)
        bench.wait(lambda: len(bench.classifications) == i + 1, 15, f'classification {i}')
    bench.wait(lambda: len(pairs) >= 3, 10, 'pairs')
    assert all(result == image for result, image in pairs)
    assert {result for result, _ in pairs} <= set(sent)


def test_without_vision_msgs_the_node_serves_and_says_classification_is_off(
        bench, checkpoint_for, monkeypatch):
    monkeypatch.setattr(classification, 'UNAVAILABLE', 'vision_msgs is not importable (test)')
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            camera_timeout=60.0)
    bench.connect(list(KEYS))
    send_set(bench, frames(3), 400_000_000)
    bench.wait_outputs(1)
    assert node.classification_pub is None
    assert bench.classifications == []
    diag = bench.latest_diagnostics()
    assert diag['classification'] == 'off: vision_msgs is not importable (test)'
    assert diag['sets published'] == '1'


def test_the_module_says_why_when_vision_msgs_cannot_be_imported():
    code = ('import sys; sys.modules["vision_msgs"] = None\n'
            'from hil_serl_reward.ros import classification as c\n'
            'assert c.Classification is None\n'
            'print(c.UNAVAILABLE)')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith('vision_msgs is not importable') and 'rosdep' in out
