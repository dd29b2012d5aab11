"""Why a camera sends the node nothing, from what the ROS graph knows about its topic.

On a first launch a silent camera is nearly always one of four things, each with its own fix:
nobody publishes the topic the node subscribes (a driver not started, or started under
another name: realsense2_camera publishes /camera/camera/color/image_raw by default), a
publisher of another message type, a publisher whose QoS the subscription cannot match (a
best-effort driver against `qos_reliability: reliable`), or a matched publisher whose frames
never arrive (a driver that opened no camera, frames lost on the way). 'no images yet' alone
leaves the user to find out which; the graph already says. `published_elsewhere` says the
same for the recorder's label topic and the client's results.
"""
import difflib
from typing import Any, List, Sequence, Tuple

from rclpy.node import Node
from rclpy.qos import QoSCompatibility, QoSProfile, qos_check_compatible
from rclpy.utilities import get_rmw_implementation_identifier

MAX_CANDIDATES = 3


def type_name(msg_type: type) -> str:
    """'sensor_msgs/msg/Image', as the ROS graph names types."""
    module = msg_type.__module__.split('.')
    return f'{module[0]}/{module[1]}/{msg_type.__name__}'


def why_silent(node: Node, key: str, subscription: Any, received: bool,
               other_cameras: Sequence[str] = (), own_topic: str = '') -> str:
    """What the graph says about the topic of camera `key`'s `subscription` (an rclpy
    Subscription of `node`, or a message_filters.Subscriber holding one as `sub`; its topic,
    type and QoS are what the graph is compared with); `received`: frames came before the
    silence; `other_cameras`: the topics of the node's other cameras, never offered as this
    one's; `own_topic`: the camera's topic before remapping, where it was remapped."""
    subscription = getattr(subscription, 'sub', subscription)
    topic, msg_type = subscription.topic_name, subscription.msg_type
    wanted = type_name(msg_type)
    publishers = node.get_publishers_info_by_topic(topic)
    if not publishers:
        return f'no publisher on {topic}' + published_elsewhere(
            node, topic, wanted, other_cameras, fix=_topic_fix(key, topic, own_topic))
    names = _node_names(publishers)
    same_type = [p for p in publishers if p.topic_type == wanted]
    if not same_type:
        return wrong_type(topic, publishers, msg_type)
    matched = matched_publishers(node, subscription)
    if matched == 0:
        reasons = sorted({_incompatibility(p.qos_profile, subscription.qos_profile)
                          for p in same_type} - {''})
        return (f'{_count(len(same_type))} on {topic} ({names}) but none matched' +
                (f": {'; '.join(reasons)}" if reasons else ' yet (discovery under way?)'))
    if received:
        return (f'{_count(matched)} matched ({names}): it stopped sending, or its frames '
                f'stopped arriving (`ros2 topic hz {topic}`)')
    fast_dds = ('Fast DDS without the large-image profile; after a process here was '
                "killed, Fast DDS's shared memory may not deliver to a new subscriber until "
                'the publisher restarts' if 'fastrtps' in get_rmw_implementation_identifier()
                else 'is the network between them open?')
    return (f'{_count(matched)} matched ({names}), no frame received: the driver may be '
            f'sending nothing (`ros2 topic hz {topic}`), or its frames are lost on the way '
            f'({fast_dds})')


def _topic_fix(key: str, topic: str, own_topic: str) -> str:
    """How to point camera `key` at another topic. Where a remapping moved it (the launch
    file's with start_cameras:=true, to where its driver block says the driver publishes),
    cameras.<key>.topic is remapped in turn: the remapping, or the driver block, is wrong."""
    if own_topic and own_topic != topic:
        return (f'{own_topic} is remapped to {topic}: fix that remapping (with '
                f'start_cameras:=true, the driver block cameras.{key}.driver: its model?)')
    return f'set cameras.{key}.topic, or remap'


def wrong_type(topic: str, publishers: Sequence[Any], msg_type: type) -> str:
    """'' when `publishers` (the graph's for `topic`) include `msg_type`'s, or none publish;
    else what they carry (DDS never matches another type: the node would wait for ever)."""
    wanted = type_name(msg_type)
    found = {p.topic_type for p in publishers}
    if not found or wanted in found:
        return ''
    return f"{topic} carries {', '.join(sorted(found))}, not {wanted}"


def published_elsewhere(node: Node, topic: str, wanted: str, exclude: Sequence[str] = (),
                        what: str = 'the driver', fix: str = 'remap') -> str:
    """Where other nodes publish type `wanted` (not topics only subscribed, nor `node`'s
    own, nor `exclude`), those most like `topic` first, said after a missing publisher of
    `topic`: '; <type> is published on <topics>: <fix>', or that nobody publishes it."""
    me = (node.get_name(), node.get_namespace())
    topics = [name for name, types in node.get_topic_names_and_types()
              if wanted in types and name != topic and name not in exclude and
              any((p.node_name, p.node_namespace) != me
                  for p in node.get_publishers_info_by_topic(name))]
    if not topics:
        return nothing_published(wanted, what)
    topics.sort(key=lambda name: -difflib.SequenceMatcher(None, topic, name).ratio())
    more = f' (+{len(topics) - MAX_CANDIDATES} more)' if len(topics) > MAX_CANDIDATES else ''
    return f"; {wanted} is published on {', '.join(topics[:MAX_CANDIDATES])}{more}: {fix}"


def nothing_published(wanted: str, what: str = 'the driver') -> str:
    """The hint after a missing publisher when no node publishes type `wanted` at all."""
    return (f'; no {wanted} topic in the ROS graph: is {what} running, on this ROS_DOMAIN_ID '
            f'and discovery range?')


def said_once(reasons: Sequence[str], msg_types: Sequence[type]) -> Tuple[List[str], str]:
    """why_silent's reasons for several cameras (of `msg_types`) without the hint that no
    node publishes images of their type, where more than one camera ends in it, and those
    hints, to be said once after them: on a first launch with no driver running, every
    camera ended in the same long question."""
    hints = [hint for hint in dict.fromkeys(nothing_published(type_name(t)) for t in msg_types)
             if sum(reason.endswith(hint) for reason in reasons) > 1]
    for hint in hints:
        reasons = [reason.removesuffix(hint) for reason in reasons]
    return list(reasons), ''.join(hints)


def _incompatibility(publisher_qos: QoSProfile, subscription_qos: QoSProfile) -> str:
    """Why the two cannot match (rmw's words), or ''."""
    compatibility, reason = qos_check_compatible(publisher_qos, subscription_qos)
    if compatibility != QoSCompatibility.ERROR:
        return ''
    return reason.removeprefix('ERROR: ').rstrip(';') + \
        (' (qos_reliability: best_effort takes both)' if 'reliab' in reason.lower() else '')


def _node_names(publishers: Sequence[Any]) -> str:
    names = sorted({f"{p.node_namespace.rstrip('/')}/{p.node_name}" for p in publishers})
    return ', '.join(names)


def _count(n: int) -> str:
    return f"{n} publisher{'s' if n != 1 else ''}"


def matched_publishers(node: Node, subscription: Any) -> int:
    """The publishers DDS matched with `subscription` (an rclpy Subscription, or a
    message_filters.Subscriber holding one as `sub`) of `node`. Humble's rclpy cannot ask
    (Subscription.get_publisher_count came with Iron's): there it counts the graph's
    publishers of the topic with the subscription's type and a QoS it accepts, the same
    rules DDS matches by, so a wait on it ends on Humble too rather than with an
    AttributeError."""
    subscription = getattr(subscription, 'sub', subscription)
    if hasattr(subscription, 'get_publisher_count'):
        return subscription.get_publisher_count()
    wanted = type_name(subscription.msg_type)
    return sum(1 for p in node.get_publishers_info_by_topic(subscription.topic_name)
               if p.topic_type == wanted and
               not _incompatibility(p.qos_profile, subscription.qos_profile))
