"""Classifier data on disk and in memory: hil-serl's `classifier_data` pickles, the node's
review folder and the generated scenes of demos and tests; no rclpy."""
