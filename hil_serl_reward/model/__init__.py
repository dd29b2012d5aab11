"""HIL-SERL's reward classifier in Flax, its checkpoints and pretrained weights, inference and
the training recipe: JAX only, no ROS (module names follow hil-serl's where checkpoints depend
on them)."""
