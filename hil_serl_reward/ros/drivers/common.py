"""What every driver module takes and gives: one camera's settings, one driver node."""
import dataclasses
from typing import Any, Dict, FrozenSet, Tuple


class DriverError(ValueError):
    """A driver block or launch argument that cannot start the cameras; says which and why."""


@dataclasses.dataclass(frozen=True)
class DriverSettings:
    """One camera key's `driver` block; empty / 0 fields take the driver module's default."""

    key: str
    kind: str = ''              # realsense, usb_cam, v4l2_camera or none
    serial: str = ''            # realsense: serial_no
    device: str = ''            # usb_cam / v4l2_camera: /dev/videoN or /dev/v4l/by-id/...
    model: str = ''             # realsense: d435 (and every model with an RGB sensor) or d405
    width: int = 0
    height: int = 0
    fps: float = 0.0
    pixel_format: str = ''      # the driver's own format name (usb_cam yuyv2rgb, v4l2 YUYV, RGB8)
    exposure_us: int = 0        # realsense: the colour's manual exposure (hil-serl's `exposure`)
    frame_id: str = ''          # usb_cam / v4l2_camera; realsense derives it from the name
    name: str = ''              # driver node / namespace name (default: the key, sanitised)
    same_as: str = ''           # another key whose driver this camera shares
    parameters: Dict[str, Any] = dataclasses.field(default_factory=dict)  # passed unchanged
    # the installed driver's release (package.xml), found by the launch file, not written:
    # '' = not known, taken as the newest read
    release: str = ''


@dataclasses.dataclass(frozen=True)
class DriverNode:
    """A driver process for the launch file; `image_topic` is relative to its namespace
    (no leading '/'), where the colour image appears."""

    package: str
    executable: str
    name: str
    namespace: str
    parameters: Dict[str, Any]
    image_topic: str
    frame_id: str
    encoding: str               # what its image topic carries with these parameters
    frame_size: Tuple[int, int]     # (width, height) its parameters ask the camera for
    keys: Tuple[str, ...]
    # parameters that follow the key, not the camera: may differ when two keys share one
    identity_free: FrozenSet[str] = frozenset()


def device_identity(settings: DriverSettings) -> str:
    """What a V4L2 driver opens: one device, whichever driver (usb_cam, v4l2_camera) asks."""
    return f'v4l2:{settings.device}' if settings.device else ''
