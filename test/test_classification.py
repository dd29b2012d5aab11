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
    bench.wait(lambda: node.rigs[0].classification_pub.get_subscription_count() > 0, 10,
               'discovery')
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
    assert node.rigs[0].classification_pub is None
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


def test_results_read_back_with_hil_serls_logits():
    """Binary: the log-odds of the published (float32) success probability: its sigmoid is
    that probability again within one float32 step, and near the thresholds rules use it is
    the model's logit; n-way: the log-probabilities give the same softmax and argmax; a score
    of 1 gives an infinite logit whose sigmoid is 1 again; other messages are refused."""
    import numpy as np
    for logit in np.array([-7.25, -0.3, 0.0, 0.85, 2.5, 11.0], np.float32):
        p = np.float32(1.0 / (1.0 + np.exp(-logit)))        # the node's float32 probability
        msg = classification.classification_message(5, 'f', float(p))
        result = classification.result_from_message(msg, 0.0)
        assert not result.n_way and result.scores[0][0] == classification.SUCCESS
        recovered = result.logits()
        assert recovered.dtype == np.float32 and recovered.shape == (1,)
        again = np.float32(1.0 / (1.0 + np.exp(-np.float64(recovered[0]))))
        assert abs(again - p) <= np.spacing(p)
        if abs(logit) <= 3:             # p in [0.05, 0.95]: where thresholds sit
            assert recovered[0] == pytest.approx(logit, rel=1e-5, abs=1e-6)
    saturated = classification.result_from_message(
        classification.classification_message(5, 'f', 1.0), 0.0)
    assert saturated.logits()[0] == np.inf
    scores = np.exp([1.0, 3.0, -2.0]) / np.exp([1.0, 3.0, -2.0]).sum()
    msg = classification.classification_message(
        6, 'f', 0.0, tuple(zip(['a', 'b', 'c'], scores.tolist())))
    result = classification.result_from_message(msg, 0.0)
    assert result.n_way and result.probability is None
    recovered = result.logits()
    assert recovered.dtype == np.float32 and recovered.shape == (3,)
    np.testing.assert_allclose(np.exp(recovered) / np.exp(recovered).sum(), scores, rtol=1e-6)
    for names, values in ((['cat'], [0.9]), (['a', 'b'], [0.5, 0.5]),
                          (['a', 'b', 'c'], [0.5, 0.5, 0.5]), (['a', 'a', 'b'], [0.2, 0.3, 0.5])):
        stranger = classification.Classification(results=[
            classification.ObjectHypothesis(class_id=n, score=v) for n, v in zip(names, values)])
        with pytest.raises(classification.NotAClassification, match='not a reward node'):
            classification.result_from_message(stranger, 0.0)
