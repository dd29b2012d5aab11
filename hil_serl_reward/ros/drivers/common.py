"""What every driver module takes and gives: one camera's settings, one driver node."""
import dataclasses
from typing import Any, Dict, FrozenSet, Optional, Tuple

# USB 2.0's fastest isochronous endpoint (what a UVC camera streams through): 3 transactions
# of 1024 bytes per 125 us microframe, 24.6 MB/s.
USB2_BYTES_PER_S = 3 * 1024 * 8000


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
    notes: Tuple[str, ...] = ()     # what the launch says of these settings before starting it


def device_identity(settings: DriverSettings) -> str:
    """What a V4L2 driver opens: one device, whichever driver (usb_cam, v4l2_camera) asks."""
    return f'v4l2:{settings.device}' if settings.device else ''


def usb2_rate_note(key: str, driver: str, pixel_format: str,
                   bytes_per_pixel: Optional[float], width: int, height: int, fps: Any,
                   fix: str) -> Tuple[str, ...]:
    """A raw (uncompressed) V4L2 stream that USB 2.0 cannot carry: a USB 2.0 camera (most
    webcams) lists no such mode, and V4L2 gives the nearest rate it has (1280x720 YUYV at
    15 fps is 27.6 MB/s: 13 fps at most), which neither driver reports. Compressed formats
    (`bytes_per_pixel` None) fit; an `fps` that is no number (given under `parameters:`) is
    the driver's to refuse."""
    try:
        fps = float(fps)
    except (TypeError, ValueError):
        return ()
    rate = (bytes_per_pixel or 0) * width * height * fps
    if rate <= USB2_BYTES_PER_S:
        return ()
    return (f"cameras.{key}: {driver}'s {pixel_format} at {width}x{height} and {fps:g} fps "
            f'is {rate / 1e6:.1f} MB/s of raw frames from the camera, more than USB 2.0 '
            f'carries ({USB2_BYTES_PER_S / 1e6:.1f} MB/s): on a USB 2.0 camera (most webcams) '
            f'V4L2 gives that size at a lower rate, unsaid (the node\'s diagnostics show it: '
            f"'{key} rate (Hz)'); {fix}",)
