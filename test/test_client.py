"""ClassificationClient over DDS: a publisher of real vision_msgs/Classification messages stands
in for the reward node, so each rule (first at or after, exact, timeout, history, timelines,
restarts) can be driven stamp by stamp. test_gym_wrapper.py runs it against the real node."""
import subprocess
import sys
from typing import List

import pytest
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy

from hil_serl_reward.ros import classification

pytestmark = pytest.mark.skipif(classification.UNAVAILABLE is not None,
                                reason=classification.UNAVAILABLE or '')

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


@pytest.mark.parametrize('module', ['client', 'remote_classifier'])
def test_importing_the_rl_side_does_not_import_jax(module):
    code = (f'import sys\nimport hil_serl_reward.{module}\n'
            'print(sorted(m for m in sys.modules if m.split(".")[0] in ("jax", "flax")))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == '[]'


class Results:
    """Publishes classification results stamped as asked, from a node of the bench."""

    def __init__(self, bench, node=None):
        self.bench = bench
        self.node = node or bench.probe
        self.publisher = self.node.create_publisher(
            classification.Classification, classification.TOPIC, 10)

    def send(self, stamp, probability=0.25):
        self.publisher.publish(classification.classification_message(stamp, 'cam', probability))


@pytest.fixture
def client(bench):
    from hil_serl_reward.client import ClassificationClient
    client = ClassificationClient(node=bench.probe, history=4)
    yield client
    client.close()


def connected(bench, client, results):
    bench.wait(lambda: results.publisher.get_subscription_count() > 0
               and client.publisher_count() > 0, 10, 'discovery')


def test_wait_for_gives_the_first_set_at_or_after_the_stamp(bench, client):
    from hil_serl_reward.client import ClassificationTimeout
    results = Results(bench)
    connected(bench, client, results)
    assert client.latest() is None
    for stamp, p in ((100, 0.1), (200, 0.2), (300, 0.3)):
        results.send(stamp, p)
    bench.wait(lambda: client.latest() is not None and client.latest().stamp_ns == 300)
    assert client.wait_for(150, timeout=1.0).stamp_ns == 200
    assert client.wait_for(200, timeout=1.0).probability == pytest.approx(0.2)
    assert client.wait_for(300, timeout=1.0, exact=True).frame_id == 'cam'
    with pytest.raises(ClassificationTimeout, match='newest seen 300 ns') as raised:
        client.wait_for(301, timeout=0.3)
    assert raised.value.newest.stamp_ns == 300
    with pytest.raises(ClassificationTimeout):
        client.wait_for(250, timeout=0.2, exact=True)     # no set has exactly that stamp


def test_a_wait_ends_when_the_result_arrives(bench, client):
    results = Results(bench)
    connected(bench, client, results)
    timer = bench.probe.create_timer(0.2, lambda: results.send(500))
    try:
        result = client.wait_for(450, timeout=5.0)
    finally:
        bench.probe.destroy_timer(timer)
    assert result.stamp_ns == 500


def test_history_is_bounded(bench, client):
    results = Results(bench)
    connected(bench, client, results)
    for stamp in range(100, 700, 100):
        results.send(stamp)
    bench.wait(lambda: client.latest() is not None and client.latest().stamp_ns == 600)
    assert len(client._history) == 4
    assert client.wait_for(0, timeout=0.1).stamp_ns == 300     # the oldest one kept


def test_a_new_timeline_forgets_the_old_one(bench, client):
    """A reward node restarted on a reset clock (or a looping bag) publishes older stamps
    than before: results of the old timeline must not answer waits on the new one."""
    from hil_serl_reward.client import ClassificationTimeout
    results = Results(bench)
    connected(bench, client, results)
    results.send(5_000_000_000)
    bench.wait(lambda: client.latest() is not None)
    results.send(1_000_000_000)
    bench.wait(lambda: client.latest().stamp_ns == 1_000_000_000)
    assert client.timelines == 1
    with pytest.raises(ClassificationTimeout):
        client.wait_for(2_000_000_000, timeout=0.2)


def test_the_client_survives_the_publisher_restarting(bench, client):
    first = rclpy.create_node('reward_classifier', namespace=bench.namespace)
    bench.add(first)
    results = Results(bench, first)
    connected(bench, client, results)
    results.send(100)
    assert client.wait_for(100, timeout=5.0).stamp_ns == 100
    bench.remove(first)
    bench.wait(lambda: client.publisher_count() == 0, 10, 'the publisher to go')
    second = rclpy.create_node('reward_classifier', namespace=bench.namespace)
    bench.add(second)
    try:
        results = Results(bench, second)
        connected(bench, client, results)
        results.send(200)
        assert client.wait_for(150, timeout=5.0).stamp_ns == 200
    finally:
        bench.remove(second)


def test_other_messages_on_the_topic_are_ignored(bench, client):
    results = Results(bench)
    connected(bench, client, results)
    stranger = classification.Classification(
        results=[classification.ObjectHypothesis(class_id='cat', score=0.9)])
    results.publisher.publish(stranger)
    results.send(100)
    bench.wait(lambda: client.latest() is not None)
    assert client.ignored == 1 and client.latest().stamp_ns == 100


def test_a_client_of_its_own_leaves_the_callers_rclpy_alone(bench):
    """Without a node the client makes its own context, node and spin thread (an RL loop with
    no ROS of its own), and closing it does not shut down the caller's context."""
    from hil_serl_reward.client import ClassificationClient, ClassificationTimeout
    with ClassificationClient(topic=f'{bench.namespace}/classification') as own:
        results = Results(bench)
        bench.wait(lambda: own.publisher_count() > 0
                   and results.publisher.get_subscription_count() > 0, 10, 'discovery')
        # discovery matched both ends, yet DDS may still lose the very first message: resend
        for _ in range(25):
            results.send(700)
            try:
                assert own.wait_for(700, timeout=0.4, exact=True).stamp_ns == 700
                break
            except ClassificationTimeout:
                continue
        else:
            pytest.fail('no result reached the client of its own in 10 s')
        assert own.node.context is not bench.probe.context
    assert rclpy.ok()


def test_a_second_results_publisher_is_named_in_a_warning(bench, client, capfd):
    """A stale or forged node publishing on `classification` too: its older stamps look like
    a new timeline, and the client names both publishers instead of following silently."""
    nodes = {name: rclpy.create_node(name, namespace=bench.namespace)
             for name in ('hil_serl_reward', 'forger')}
    for node in nodes.values():
        bench.add(node)
    try:
        real, forged = Results(bench, nodes['hil_serl_reward']), Results(bench, nodes['forger'])
        connected(bench, client, real)
        connected(bench, client, forged)
        bench.wait(lambda: len(client.publishers()) == 2, 10, 'both publishers in the graph')
        real.send(2_000_000_000)
        bench.wait(lambda: client.latest() is not None)
        forged.send(1_000_000_000, probability=0.99)
        bench.wait(lambda: client.timelines == 1)
        assert client.publishers() == [f'{bench.namespace}/forger',
                                       f'{bench.namespace}/hil_serl_reward']
        printed = []
        bench.wait(lambda: printed.append(capfd.readouterr().err)
                   or 'nodes publish on' in ''.join(printed), 5, 'the warning')
        err = ''.join(printed)
        assert (f"results went back in time: 2 nodes publish on {bench.namespace}/"
                f"classification: ['{bench.namespace}/forger', '{bench.namespace}/"
                f"hil_serl_reward']") in err, err
    finally:
        for node in nodes.values():
            bench.remove(node)


def test_no_reward_node_on_the_topic_names_where_results_are_published(bench, client):
    """A client on `classification` while the node serves a rig (`left/classification`):
    the wait's error names the topic that has results."""
    node = rclpy.create_node('hil_serl_reward', namespace=f'{bench.namespace}/left')
    bench.add(node)
    try:
        results = node.create_publisher(classification.Classification, 'classification', 10)
        assert results.topic_name == f'{bench.namespace}/left/classification'
        bench.wait(lambda: client.node.count_publishers(results.topic_name) == 1, 10, 'graph')
        with pytest.raises(TimeoutError) as error:
            client.wait_for_node(timeout=0.5)
        message = str(error.value)
        assert message.startswith(f'no reward node publishes on {bench.namespace}/'
                                  f'classification within 0.5 s; vision_msgs/msg/Classification'
                                  f' is published on {results.topic_name}'), message
        assert message.endswith("give the client that topic (a reward node's namespace, rig "
                                "or stage)")
    finally:
        bench.remove(node)


def readme_block(marker):
    """The README's ```python block containing `marker`, as written."""
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / 'README.md').read_text()
    [block] = [b for b in text.split('```python\n')[1:] if marker in b.split('```')[0]]
    return block.split('```')[0]


@pytest.mark.own_participant
def test_the_readmes_client_snippet_runs_as_written(bench, checkpoint_for):
    """In an actor process of its own (the snippet's own context, remapped into this bench's
    namespace), against the node serving a camera streaming at 15 fps. The snippet waits 1 s
    for a set: a run that timed out while this process's own stream stalled (seen in
    clean-clone runs of the whole suite: its stamps 165 ms jittery, the machine starved) is
    run again, twice at most; one that timed out while the stream kept its rate fails."""
    import threading
    import time
    from test_classifier_node import KEYS, frames, send_set
    bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                     camera_timeout=60.0)
    bench.connect(list(KEYS))
    stop = threading.Event()
    sent: List[float] = []

    def stream():
        rgb = frames(0)
        while not stop.wait(1 / 15):
            send_set(bench, rgb, bench.probe.get_clock().now().nanoseconds)
            sent.append(time.monotonic())
    streaming = threading.Thread(target=stream, daemon=True)
    streaming.start()
    attempts = []
    try:
        for _ in range(3):
            started = time.monotonic()
            result = subprocess.run(
                [sys.executable, '-c', readme_block('ClassificationClient()'), '--ros-args',
                 '-r', f'__ns:={bench.namespace}'], capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, result.stderr
            first, latest = result.stdout.splitlines()
            during = [started] + [t for t in sent if t >= started] + [time.monotonic()]
            longest_gap = max(later - earlier for earlier, later in zip(during, during[1:]))
            attempts.append(f'{first} (longest gap in the stream {longest_gap:.2f} s)')
            if not first.startswith('no classification') or longest_gap < 0.3:
                break
    finally:
        stop.set()
        streaming.join()
    assert not first.startswith('no classification'), attempts   # no ClassificationTimeout
    stamp, probability = first.split()[:2]
    assert int(stamp) > 0 and 0.0 <= float(probability) <= 1.0, first
    assert latest.startswith('ClassificationResult(stamp_ns=')
