"""One frame from the camera as a picture, outside a capture run (the preview before Start, reading the order
sheet's code): camera and decoding problems come back as a sentence for the operator."""

from __future__ import annotations

from typing import Any

from PIL import Image


def grab_image(camera: Any, max_side: int | None = None) -> tuple[Image.Image | None, str | None]:
    """(the camera's next frame as an RGB or grey image, None), or (None, why there is none)."""
    from communication import CameraError
    from utils.imaging import ImageDecodeError, decode_image

    try:
        frame = camera.grab()
        if frame.image is not None:
            return Image.fromarray(frame.image), None
        if frame.data is not None:
            return decode_image(frame.data, max_side=max_side), None
        return None, "The camera answered without an image."
    except CameraError as err:
        return None, str(err)
    except ImageDecodeError as err:
        return None, f"The camera's answer is not an image: {err}"
