"""Query parameters of the BaslerCameraAdapter's ``GET /basler/take-photo`` as pydantic models.

Names, defaults and bounds follow the adapter's OpenAPI document (v0.6.5,
``shared/camera-adapter/openapi.json``): a value the adapter would answer with 422 is
refused here already, with the parameter and its bound in the message.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PixelFormat = Literal[
    "BGR10V1packed", "BGR10V2packed", "BGR10packed", "BGR12packed", "BGR8packed", "BGRA8packed",
    "BayerBG10", "BayerBG10p", "BayerBG12", "BayerBG12Packed", "BayerBG12p", "BayerBG16", "BayerBG8",
    "BayerGB10", "BayerGB10p", "BayerGB12", "BayerGB12Packed", "BayerGB12p", "BayerGB16", "BayerGB8",
    "BayerGR10", "BayerGR10p", "BayerGR12", "BayerGR12Packed", "BayerGR12p", "BayerGR16", "BayerGR8",
    "BayerRG10", "BayerRG10p", "BayerRG12", "BayerRG12Packed", "BayerRG12p", "BayerRG16", "BayerRG8",
    "Confidence16", "Confidence8", "Coord3D_ABC32f", "Coord3D_C16", "Coord3D_C8",
    "Data16", "Data16s", "Data32", "Data32f", "Data32s", "Data64", "Data64f", "Data64s", "Data8", "Data8s",
    "Double", "Mono10", "Mono10p", "Mono10packed", "Mono12", "Mono12p", "Mono12packed", "Mono16",
    "Mono1packed", "Mono2packed", "Mono4packed", "Mono8", "Mono8signed",
    "RGB10packed", "RGB10planar", "RGB12V1packed", "RGB12packed", "RGB12planar", "RGB16packed",
    "RGB16planar", "RGB8packed", "RGB8planar", "RGBA8packed", "Undefined",
    "YCbCr420_8_YY_CbCr_Semiplanar", "YCbCr422_8_YY_CbCr_Semiplanar", "YUV411packed", "YUV420planar",
    "YUV422_YUYV_Packed", "YUV422packed", "YUV422planar", "YUV444packed", "YUV444planar",
]
OutputImageFormat = Literal["RGB", "BGR", "Mono", "null"]
AcquisitionMode = Literal["SingleFrame", "Continuous"]
TransmissionType = Literal["Unicast", "Multicast", "Broadcast"]
ImageFormat = Literal["jpeg", "jpg", "png", "bmp", "webp", "tiff"]

NonNegative = Annotated[float, Field(ge=0)]


class BaslerCameraSettings(BaseModel):
    """Which camera and how it is reached and converted (the adapter's camera parameters)."""

    model_config = ConfigDict(extra="forbid")

    serial_number: int | None = Field(None, description="Serial number of the camera.")
    ip_address: str | None = Field(None, description="IP address of a GigE camera.")
    subnet_mask: str | None = Field(None, description="Subnet mask of the camera's network.")
    transmission_type: TransmissionType | None = Field(None, description="GigE transmission type.")
    destination_ip_address: str | None = Field(None, description="Multicast destination address.")
    destination_port: Annotated[int, Field(ge=26, le=653535)] | None = Field(
        None, description="Multicast destination port (the adapter accepts 26..653535)."
    )
    convert_to_format: OutputImageFormat | None = Field(None, description="Convert frames to RGB, BGR or Mono.")
    pixel_format: PixelFormat | None = Field(None, description="Camera pixel format (adapter default Mono8).")
    acquisition_mode: AcquisitionMode | None = Field(
        None, description="SingleFrame (reopens the camera, ~275 ms) or Continuous (~106 ms)."
    )


class ImageParams(BaseModel):
    """How the adapter encodes and crops the image it answers."""

    model_config = ConfigDict(extra="forbid")

    format: ImageFormat | None = Field(None, description="Encoding of the answer (adapter default jpeg).")
    quality: Annotated[int, Field(ge=10, le=100)] | None = Field(None, description="JPEG quality 10..100.")
    rotation_angle: float | None = Field(None, description="Rotation in degrees.")
    rotation_expand: bool | None = Field(None, description="Expand the image to hold the rotated frame.")
    roi_left: NonNegative | None = Field(None, description="Left edge: <=1 a fraction, >1 pixels.")
    roi_top: NonNegative | None = Field(None, description="Top edge: <=1 a fraction, >1 pixels.")
    roi_right: NonNegative | None = Field(None, description="Right edge: <=1 a fraction, >1 pixels.")
    roi_bottom: NonNegative | None = Field(None, description="Bottom edge: <=1 a fraction, >1 pixels.")


class TakePhotoParams(BaslerCameraSettings, ImageParams):
    """Every query parameter of ``/basler/take-photo``; unset ones are left to the adapter."""

    model_config = ConfigDict(extra="forbid")

    exposure_time_microseconds: Annotated[int, Field(ge=500)] | None = Field(
        None, description="Exposure time in microseconds (>= 500)."
    )
    timeout_ms: Annotated[int, Field(ge=200)] | None = Field(
        None, description="Grab timeout of the adapter in milliseconds (>= 200)."
    )

    def query(self, client_timeout_s: float | None = None) -> dict[str, Any]:
        """The query string values: only the parameters that are set, booleans as true/false.

        With ``client_timeout_s`` the adapter's grab timeout is capped below the client's
        HTTP timeout, so that the adapter gives up (400) before the client does.
        """
        params: dict[str, Any] = {}
        for key, value in self.model_dump(exclude_none=True).items():
            params[key] = str(value).lower() if isinstance(value, bool) else value
        if client_timeout_s is not None:
            cap = max(200, int(client_timeout_s * 1000) - 100)
            params["timeout_ms"] = min(int(params.get("timeout_ms", 5000)), cap)
        return params
