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
# `auto`: the fast CPU inference form where it was measured faster (a CPU, a shared
# backbone), else direct; `direct`: the backbone's convolutions as hil-serl's model code
# writes them (nn.Conv), for rewards bit-identical to its in-process classifier.
CONVOLUTIONS = {'auto': None, 'fast': True, 'direct': False}
