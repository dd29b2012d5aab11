"""~/debug_image: the model's exact inputs, the probability and the decision for a person,
published only while someone subscribes and at most debug_image_rate per second."""
import time

import numpy as np
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from hil_serl_reward.pipeline.debug_view import CAPTION_HEIGHT, model_view, tile_origin
from hil_serl_reward.pipeline.image_conversion import numpy_to_rgb
from hil_serl_reward.pipeline.preprocessing import parse_crop, preprocess
from hil_serl_reward.pipeline.stamps import stamp_to_ns
from test_classifier_node import CROPS, KEYS, camera_params, frames, send_set

SCALE = 3


def tiles(view, keys=KEYS, scale=SCALE):
    """Each camera's tile of a debug image, shrunk back by taking one pixel per block."""
    return {key: view[:128 * scale:scale, tile_origin(i, scale):tile_origin(i, scale)
                      + 128 * scale:scale] for i, key in enumerate(keys)}


def test_the_view_holds_the_model_inputs_pixel_for_pixel():
    rng = np.random.default_rng(0)
    images = {k: rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for k in KEYS}
    view = model_view(images, KEYS, 0.73, 0.5, True, 1_500_000_000)
    assert view.shape == (128 * SCALE + CAPTION_HEIGHT, 2 * 128 * SCALE + 4, 3)
    for key, tile in tiles(view).items():
        assert np.array_equal(tile, images[key])
    blocks = view[:128 * SCALE, :128 * SCALE].reshape(128, SCALE, 128, SCALE, 3)
    assert (blocks == blocks[:, :1, :, :1]).all()          # enlarged without smoothing


def debug_listener(bench, node):
    received = []
    bench.probe.create_subscription(
        Image, f'{node.get_fully_qualified_name()}/debug_image', received.append,
        QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE))
    bench.wait(lambda: node.rigs[0].debug_image_pub.get_subscription_count() > 0, 10, 'discovery')
    return received


def test_debug_image_shows_what_the_classifier_got(bench, checkpoint_for):
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            camera_timeout=60.0, **camera_params(CROPS))
    bench.connect(list(KEYS))
    received = debug_listener(bench, node)
    rgb = frames(3)
    send_set(bench, rgb, 100_000_000, jitter_ns=(0, 7_000_000))
    bench.wait(lambda: received, 15, 'a debug image')
    msg = received[0]
    assert stamp_to_ns(msg.header.stamp) == 107_000_000 == node.rigs[0].last_result.stamp_ns
    view = numpy_to_rgb(msg)
    for key, tile in tiles(view).items():
        expected = preprocess(rgb[key], parse_crop(CROPS[key]))
        assert np.array_equal(tile, expected), key
    assert bench.latest_diagnostics()['debug images published'] == '1'


def test_nothing_is_drawn_without_a_subscriber(bench, checkpoint_for):
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            camera_timeout=60.0)
    bench.connect(list(KEYS))
    for i in range(3):
        send_set(bench, frames(i), (i + 1) * 100_000_000)
        bench.wait_outputs(i + 1)
    assert node.rigs[0].debug_image_pub.get_subscription_count() == 0
    assert node.rigs[0].counts['debug_images'] == 0


def test_the_rate_is_capped(bench, checkpoint_for):
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            camera_timeout=60.0, debug_image_rate=2.0)
    bench.connect(list(KEYS))
    received = debug_listener(bench, node)
    start = time.monotonic()
    for i in range(12):
        send_set(bench, frames(i), (i + 1) * 100_000_000)
        bench.wait_outputs(i + 1)
    elapsed = time.monotonic() - start
    time.sleep(0.3)
    assert 1 <= len(received) <= int(elapsed * 2.0) + 1
    assert node.rigs[0].counts['sets_published'] == 12
