#!/usr/bin/env bash
# Run a command with DDS confined to this machine: loopback discovery, a random domain id and,
# where we are root, a private network namespace whose only interface is `lo`, and a /dev/shm
# of its own: Fast DDS's shared-memory segments and port files (fastrtps_*, fastdds_*) of
# processes that were killed stay in /dev/shm, and a later run on the same domain id would
# open those ports again; in a private tmpfs a run sees none from before and leaves none behind.
# Kilted ignores ROS_LOCALHOST_ONLY, so ROS_AUTOMATIC_DISCOVERY_RANGE is what keeps traffic local.
set -euo pipefail
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 1 ))}
export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}
# The namespace needs root and `ip` to bring `lo` up (a GPU machine of ours had no iproute2).
if [ "${HIL_SERL_NO_NETNS:-0}" != 1 ] && [ "$(id -u)" = 0 ] && command -v ip >/dev/null \
    && unshare --net true 2>/dev/null; then
  if unshare --mount true 2>/dev/null; then
    echo "ros_isolated: private network namespace and /dev/shm, ROS_DOMAIN_ID=$ROS_DOMAIN_ID" >&2
    exec unshare --net --mount bash -c \
      'ip link set lo up && mount -t tmpfs -o mode=1777 tmpfs /dev/shm && exec "$@"' \
      ros_isolated "$@"
  fi
  echo "ros_isolated: private network namespace, ROS_DOMAIN_ID=$ROS_DOMAIN_ID" >&2
  exec unshare --net bash -c 'ip link set lo up && exec "$@"' ros_isolated "$@"
fi
echo "ros_isolated: no network namespace (not root, no ip, or unshare refused); loopback discovery only, ROS_DOMAIN_ID=$ROS_DOMAIN_ID" >&2
exec "$@"
