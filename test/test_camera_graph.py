"""A silent camera's diagnostics (and log) say what the ROS graph knows of its topic: nobody
publishes it (and where images are published instead), a publisher whose QoS cannot match,
or a matched publisher that sends nothing: the first-launch mistakes, each with its own fix."""
import os
import pathlib
import time

import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from hil_serl_reward.ros.camera_graph import matched_publishers
from test_classifier_node import KEYS, frames, send_set

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / 'hil_serl_reward'


def start(bench, checkpoint_for, **params):
    return bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            camera_timeout=0.5, **params)


def silent_message(bench, node, text, timeout=15.0):
    """The node's status once it contains `text` (the graph's view settles within seconds)."""
    bench.wait(lambda: text in node.status()[1], timeout, f'{text!r} in {node.status()[1]!r}')
    return node.status()[1]


def test_a_camera_nobody_publishes_names_the_image_topics_there_are(bench, checkpoint_for):
    """A driver started under another name (realsense2_camera's defaults put its colour
    stream under camera/camera/): the node names the topic it waits on and where images are."""
    node = start(bench, checkpoint_for)
    elsewhere = bench.probe.create_publisher(Image, 'wrist_1/color/image_raw', 10)
    wrist = f'{bench.namespace}/wrist_1/image_raw'
    message = silent_message(bench, node, f'no publisher on {wrist}')
    assert message.startswith('cameras silent: wrist_1 (no images yet: ')
    message = silent_message(bench, node, f'is published on {bench.namespace}/wrist_1/color/'
                                          f'image_raw')
    listed = message.split('is published on ', 1)[1].split(':', 1)[0]
    assert listed.split(', ')[0] == f'{bench.namespace}/wrist_1/color/image_raw', listed
    assert 'set cameras.wrist_1.topic, or remap' in message
    assert elsewhere.get_subscription_count() == 0


def test_a_remapped_camera_points_at_the_remapping_not_its_topic(bench, checkpoint_for):
    """With start_cameras:=true the launch file remaps each camera's topic to where its
    driver block says the driver publishes (a D405 declared as a D435, an older driver):
    setting cameras.<key>.topic would change nothing, the remapping (the block) is wrong."""
    node = start(bench, checkpoint_for, remappings=[('wrist_1/image_raw',
                                                     'camera/wrist_1/color/image_rect_raw')])
    bench.probe.create_publisher(Image, 'camera/wrist_1/color/image_raw', 10)
    message = silent_message(bench, node, 'is published on')
    ns = bench.namespace
    assert message.startswith(
        f'cameras silent: wrist_1 (no images yet: no publisher on {ns}/camera/wrist_1/color/'
        f'image_rect_raw; sensor_msgs/msg/Image is published on {ns}/camera/wrist_1/color/'
        f'image_raw: {ns}/wrist_1/image_raw is remapped to {ns}/camera/wrist_1/color/'
        f'image_rect_raw: fix that remapping (with start_cameras:=true, the driver block '
        f'cameras.wrist_1.driver: its model?))'), message
    assert 'cameras.front.topic' in message          # front: not remapped, its own fix


@pytest.fixture
def lonely_bench(ros):
    """A bench alone in a DDS domain: no other test's image publishers in its graph, as on a
    first launch before any driver (ros_isolated.sh picks the run's domain in 1-100)."""
    import rclpy
    from ros_harness import Bench
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(os.environ.get('ROS_DOMAIN_ID', '0')) + 101)
    try:
        bench = Bench(context)
        yield bench
        bench.close()
    finally:
        rclpy.shutdown(context=context)


def test_with_no_driver_running_the_question_comes_once(lonely_bench, checkpoint_for):
    """Each camera names the topic it waits on; whether the driver runs is asked once for
    all of them, not once per camera."""
    node = start(lonely_bench, checkpoint_for)
    message = silent_message(lonely_bench, node, 'front (no images yet')
    topic = f'{lonely_bench.namespace}/{{}}/image_raw'
    assert message == (
        f"cameras silent: wrist_1 (no images yet: no publisher on {topic.format('wrist_1')}), "
        f"front (no images yet: no publisher on {topic.format('front')}); no "
        f'sensor_msgs/msg/Image topic in the ROS graph: is the driver running, on this '
        f'ROS_DOMAIN_ID and discovery range?'), message


def test_a_publisher_whose_qos_cannot_match_is_named_with_the_reason(bench, checkpoint_for):
    node = start(bench, checkpoint_for, qos_reliability='reliable')
    bench.probe.create_publisher(Image, 'wrist_1/image_raw',
                                 QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))
    message = silent_message(bench, node, 'but none matched')
    part = message.split('wrist_1 (', 1)[1]
    assert part.startswith(f'no images yet: 1 publisher on {bench.namespace}/wrist_1/'
                           f'image_raw ({bench.namespace}/probe) but none matched: '), part
    assert 'Best effort publisher and reliable subscription' in part
    assert 'qos_reliability: best_effort takes both' in part


def test_a_matched_publisher_that_sends_nothing_then_one_that_stopped(bench, checkpoint_for):
    node = start(bench, checkpoint_for)
    bench.connect(list(KEYS))               # both cameras matched, nothing sent yet
    message = silent_message(bench, node, 'no frame received')
    assert f'wrist_1 (no images yet: 1 publisher matched ({bench.namespace}/probe), no frame ' \
           f'received' in message
    assert f'`ros2 topic hz {bench.namespace}/wrist_1/image_raw`' in message
    assert 'front (no images yet: 1 publisher matched' in message

    for index in range(3):                  # frames come, then stop
        send_set(bench, frames(index), (index + 1) * 100_000_000)
    bench.wait_outputs(1)
    time.sleep(0.2)
    message = silent_message(bench, node, 'it stopped sending')
    assert message.startswith('cameras silent: wrist_1 (silent '), message
    assert f'1 publisher matched ({bench.namespace}/probe): it stopped sending, or its ' \
           f'frames stopped arriving' in message


def test_one_camera_without_a_synchroniser_says_the_same(bench, checkpoint_for):
    node = bench.start_node(checkpoint_path=str(checkpoint_for(('front',))),
                            image_keys=['front'], camera_timeout=0.5)
    assert node.rigs[0].input.subscriber.backend == 'none (one camera)'
    bench.camera('front')
    message = silent_message(bench, node, 'no frame received')
    assert message.startswith(f'cameras silent: front (no images yet: 1 publisher matched '
                              f'({bench.namespace}/probe), no frame received'), message


class HumbleSubscription:
    """What an rclpy Subscription offers on Humble: no get_publisher_count (Iron's)."""

    def __init__(self, subscription):
        self.msg_type = subscription.msg_type
        self.topic_name = subscription.topic_name
        self.qos_profile = subscription.qos_profile


def test_on_humbles_rclpy_the_matched_publishers_are_counted_from_the_graph(bench):
    """The client's wait, the recorder's label check and the silent-camera message count
    matched publishers; Humble's rclpy cannot ask DDS, and the graph's count must agree with
    DDS's: a publisher whose QoS the subscription refuses is not counted."""
    node = bench.probe
    reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    subscription = node.create_subscription(Image, 'humble/image_raw', lambda msg: None,
                                            reliable)
    humble = HumbleSubscription(subscription)
    assert not hasattr(humble, 'get_publisher_count')

    node.create_publisher(Image, 'humble/image_raw',
                          QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))
    bench.wait(lambda: node.count_publishers(subscription.topic_name) == 1, 10, 'discovery')
    assert (matched_publishers(node, humble), subscription.get_publisher_count()) == (0, 0)

    node.create_publisher(Image, 'humble/image_raw', reliable)
    bench.wait(lambda: subscription.get_publisher_count() == 1, 10, 'DDS matching')
    bench.wait(lambda: matched_publishers(node, humble) == 1, 10, 'the graph')
    assert node.count_publishers(subscription.topic_name) == 2


def test_only_camera_graph_asks_rclpy_for_a_matched_count():
    """Subscription.get_publisher_count is missing on Humble: a call elsewhere in the
    package would raise AttributeError there (in a diagnostics timer, it ends the node)."""
    callers = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob('*.py')
               if '.get_publisher_count(' in path.read_text()]
    assert callers == ['ros/camera_graph.py'], callers
