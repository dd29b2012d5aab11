"""HIL-SERL's reward classifier served on ROS 2 camera streams.

Layers, each importing only those before it: `model`, `pipeline`, `data`, `ros`, `tools`. The
RL side's stable imports are `hil_serl_reward.client`, `.remote_classifier` and
`.gym_wrapper`; this file imports nothing, so importing them pulls in no JAX.
"""
