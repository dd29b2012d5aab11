"""The ROS 2 glue: the nodes, their parameters and params files, camera subscriptions, the
stamped `classification` message, rosbag2 input, DDS and process settings, launch actions."""
