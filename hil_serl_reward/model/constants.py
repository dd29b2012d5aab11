"""What code outside the model needs to know of it, without importing JAX or Flax: the input
size every crop is resized to, and the run-time choices the node offers as parameters.

The launch files read the node's parameter table (ros/config.py, which validates crops), and
`ros2 launch` runs them under the Python of the `ros2` command: on an apt install that is the
system Python, which does not see the venv's JAX. So these live here, and the model's modules
take them from here.
"""
# hil-serl's encoders resize every camera image to 128 x 128 (resnet_v1.py).
IMAGE_SIZE = (128, 128)

DEVICES = ('auto', 'cpu', 'gpu')
# How the model computes (the node's `convolutions` parameter; `auto` picks `fast` on a CPU
# with a shared backbone, where it was measured faster, else `direct`). Every form gives the
# same logits up to float32 rounding; only `hil-serl`, hil-serl's model code op for op on
# hil-serl's observation shape, gives its bits (model/reward_classifier.build_classifier).
MODEL_FORMS = ('fast', 'direct', 'hil-serl')
CONVOLUTIONS = ('auto',) + MODEL_FORMS
# glibc's largest mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX; mallopt refuses more):
# a malloc'd block above it gets fresh pages from the kernel, which fault in on first touch.
# The node keeps image buffers under it (ros/malloc_tuning.py), and a CPU call's batch is
# sized so that XLA's scratch stays under it (model/inference.largest_heap_batch).
GLIBC_MMAP_THRESHOLD_MAX = 32 * 2**20
