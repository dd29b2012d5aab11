"""CameraSetSubscriber, the one interface over both synchronisers, over real DDS: ours, and
message_filters (what every ROS 2 install runs; a stand-in here, message_filters_standin.py)."""
import numpy as np
import pytest
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from sensor_msgs.msg import Image

from hil_serl_reward.pipeline.stamps import stamp_to_ns
from hil_serl_reward.ros.camera_input import camera_qos
from hil_serl_reward.ros.camera_sync import CameraSetSubscriber
from ros_harness import image_msg

KEYS = ('wrist_1', 'front')
MS = 1_000_000


def labelled(key, label, stamp_ns):
    msg = image_msg(np.zeros((4, 4, 3), np.uint8), stamp_ns)
    msg.header.frame_id = f'{key}-{label}'
    return msg


@pytest.mark.parametrize('prefer_message_filters, backend', [
    (True, 'message_filters'), (False, 'hil_serl_reward')])
def test_sets_come_in_topic_order_refused_images_never_join_one_and_close_unsubscribes(
        bench, message_filters, prefer_message_filters, backend):
    sets = []
    group = MutuallyExclusiveCallbackGroup()
    qos = camera_qos('reliable')
    subscriber = CameraSetSubscriber(
        bench.probe, [f'{key}/image_raw' for key in KEYS], [Image, Image], qos,
        queue_size=10, slop_s=0.02,
        accept=lambda index, msg: not msg.header.frame_id.endswith('bad'),
        on_set=lambda msgs, stamps: sets.append(
            (tuple(m.header.frame_id for m in msgs), stamps)),
        stamp_of=lambda msg: stamp_to_ns(msg.header.stamp),
        callback_group=group, prefer_message_filters=prefer_message_filters)
    assert subscriber.backend == backend
    cameras = [s for s in bench.probe.subscriptions if s.topic_name.endswith('/image_raw')]
    assert len(cameras) == 2
    assert all(s.callback_group is group for s in cameras)
    assert all(s.qos_profile.reliability == qos.reliability
               and s.qos_profile.depth == qos.depth for s in cameras)
    publishers = [bench.camera(key) for key in KEYS]
    bench.wait(lambda: all(p.get_subscription_count() > 0 for p in publishers), 10, 'discovery')

    bench.publish('front', labelled('front', 1, 105 * MS))      # arrival order is not set order
    bench.publish('wrist_1', labelled('wrist_1', 1, 100 * MS))
    bench.wait(lambda: len(sets) == 1, 10, 'the first set')
    bench.publish('wrist_1', labelled('wrist_1', 2, 200 * MS))
    bench.publish('front', labelled('front', 'bad', 200 * MS))
    bench.publish('front', labelled('front', 2, 210 * MS))
    bench.wait(lambda: len(sets) == 2, 10, 'the second set')
    assert sets == [(('wrist_1-1', 'front-1'), (100 * MS, 105 * MS)),
                    (('wrist_1-2', 'front-2'), (200 * MS, 210 * MS))]
    subscriber.close()
    assert not [s for s in bench.probe.subscriptions if s.topic_name.endswith('/image_raw')]
