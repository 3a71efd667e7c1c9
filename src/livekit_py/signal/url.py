"""Building the signal WebSocket URL the LiveKit server expects.

Two forms: ``/rtc`` with the client's settings as URL parameters (two peer
connections), and ``/rtc/v1`` with one parameter, ``join_request``: a base64url
``WrappedJoinRequest`` around a (gzipped when that is smaller) ``JoinRequest``
protobuf, which asks for a single peer connection and can carry our first offer.
"""

from __future__ import annotations

import base64
import gzip
import platform
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from google.protobuf.descriptor import FieldDescriptor
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

from ..version import __version__
from . import client_protocol

# The signal protocol version we speak: 16 adds non-error request responses and
# room moves to what the dual peer connection clients use. (17 marks packet
# trailer support too, but the server decides that from the capabilities in
# client_protocol, sent as the comma-separated `capabilities` URL parameter.)
PROTOCOL_VERSION = 16

_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}


def _is_repeated(descriptor: Any) -> bool:
    """Whether a protobuf field is repeated (``is_repeated`` from protobuf 6; ``label`` before)."""
    flag = getattr(descriptor, "is_repeated", None)
    if flag is not None:
        return bool(flag)
    return bool(descriptor.label == descriptor.LABEL_REPEATED)


def base_ws_url(url: str) -> str:
    """Normalize a user-given server URL to its ``ws(s)://host[:port]/prefix`` form.

    ``ws://``, ``wss://``, ``http://`` and ``https://`` are accepted, with or
    without a trailing slash; anything else is a ValueError.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("url must be a non-empty string such as ws://127.0.0.1:7880")
    parts = urlsplit(url.strip())
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ValueError(f"url must start with ws://, wss://, http:// or https://, got {url!r}")
    if not parts.netloc:
        raise ValueError(f"url has no host: {url!r}")
    path = parts.path.rstrip("/")
    for suffix in ("/rtc/v1", "/rtc"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def rtc_url(
    url: str,
    token: str,
    *,
    auto_subscribe: bool,
    adaptive_stream: bool = False,
    reconnect: bool = False,
    participant_sid: str | None = None,
    reconnect_reason: int | None = None,
) -> str:
    """The full ``.../rtc?...`` URL with the access token and client parameters."""
    params: dict[str, str] = {
        "access_token": token,
        "auto_subscribe": "1" if auto_subscribe else "0",
        "adaptive_stream": "1" if adaptive_stream else "0",
        "sdk": "python",
        "version": __version__,
        "protocol": str(PROTOCOL_VERSION),
        # what the other participants may assume we understand (RPC v2, inline and
        # compressed data streams), as the official SDKs advertise it
        "client_protocol": str(client_protocol.CLIENT_PROTOCOL),
        "os": platform.system().lower(),
        "os_version": platform.release(),
    }
    if client_protocol.CLIENT_CAPABILITIES:
        params["capabilities"] = ",".join(
            proto_models.ClientInfo.Capability.Name(cap)
            for cap in client_protocol.CLIENT_CAPABILITIES
        )
    if reconnect:
        params["reconnect"] = "1"
        if participant_sid:
            params["sid"] = participant_sid
        if reconnect_reason is not None:
            params["reconnect_reason"] = str(reconnect_reason)
    return f"{base_ws_url(url)}/rtc?{urlencode(params)}"


def join_request_param(request: proto_rtc.JoinRequest) -> str:
    """The ``join_request`` URL parameter for ``request``: what ``/rtc/v1`` decodes.

    A ``WrappedJoinRequest`` holding the serialized request, gzipped when that is
    smaller (as the official SDKs do: an offer in it compresses to a third), in
    URL-safe base64 with its padding (the server decodes with Go's ``URLEncoding``).
    """
    raw = request.SerializeToString()
    packed = gzip.compress(raw, mtime=0)
    wrapped = proto_rtc.WrappedJoinRequest(
        compression=proto_rtc.WrappedJoinRequest.GZIP,
        join_request=packed,
    )
    if len(packed) >= len(raw):
        wrapped = proto_rtc.WrappedJoinRequest(
            compression=proto_rtc.WrappedJoinRequest.NONE, join_request=raw
        )
    return base64.urlsafe_b64encode(wrapped.SerializeToString()).decode("ascii")


def parse_join_request_param(param: str) -> proto_rtc.JoinRequest:
    """The JoinRequest in a ``join_request`` parameter (the inverse of :func:`join_request_param`).

    Raises:
        ValueError: If ``param`` is not a base64url WrappedJoinRequest around a JoinRequest.
    """
    try:
        wrapped = proto_rtc.WrappedJoinRequest()
        wrapped.ParseFromString(base64.urlsafe_b64decode(param))
        raw = wrapped.join_request
        if wrapped.compression == proto_rtc.WrappedJoinRequest.GZIP:
            raw = gzip.decompress(raw)
        request = proto_rtc.JoinRequest()
        request.ParseFromString(raw)
    except Exception as e:  # binascii, gzip and protobuf errors alike
        raise ValueError(f"join_request is not a wrapped JoinRequest: {e}") from e
    return request


_INTEGER_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
    }
)


def client_info(params: Mapping[str, str]) -> proto_models.ClientInfo:
    """The ``ClientInfo`` that the ``/rtc`` URL parameters ``params`` describe.

    The server reads a ClientInfo field from the parameter of the same name on
    ``/rtc`` (``sdk``, ``version``, ``protocol``, ``client_protocol``, ``os``, ...;
    ``capabilities`` as comma-separated names); ``/rtc/v1`` takes the ClientInfo
    itself. Parameters that are no ClientInfo field are left out.

    Raises:
        ValueError: If a number field is not a number, or ``sdk`` or a capability
            names none known.
    """
    info = proto_models.ClientInfo()
    fields = proto_models.ClientInfo.DESCRIPTOR.fields_by_name
    for name, value in params.items():
        descriptor = fields.get(name)
        if name == "capabilities":  # comma-separated Capability names, as the server splits
            for cap in filter(None, (n.strip() for n in value.split(","))):
                if cap not in proto_models.ClientInfo.Capability.keys():
                    raise ValueError(f"capability {cap!r} is not a ClientInfo.Capability")
                info.capabilities.append(proto_models.ClientInfo.Capability.Value(cap))  # type: ignore[arg-type]
            continue
        if descriptor is None or _is_repeated(descriptor):
            continue
        if name == "sdk":
            sdk = value.upper()
            if sdk not in proto_models.ClientInfo.SDK.keys():
                raise ValueError(f"sdk {value!r} is not a ClientInfo.SDK")
            info.sdk = proto_models.ClientInfo.SDK.Value(sdk)  # type: ignore[assignment]
        elif descriptor.type == descriptor.TYPE_STRING:
            setattr(info, name, value)
        elif descriptor.type in _INTEGER_TYPES:
            try:
                setattr(info, name, int(value))
            except (TypeError, ValueError) as e:
                raise ValueError(f"ClientInfo.{name} must be a number, not {value!r}") from e
    return info


def rtc_v1_url(
    url: str,
    token: str,
    *,
    auto_subscribe: bool,
    adaptive_stream: bool = False,
    reconnect: bool = False,
    participant_sid: str | None = None,
    reconnect_reason: int | None = None,
    publisher_offer: proto_rtc.SessionDescription | None = None,
) -> str:
    """The ``.../rtc/v1?...`` URL: a single peer connection, our settings in a JoinRequest.

    Besides the access token, the server reads nothing but ``join_request`` on this
    path: the client info and the connection settings (what :func:`rtc_url` puts in
    its parameters), the resume fields and, for a first join, the
    ``publisher_offer`` it answers right after the JoinResponse.
    """
    v0 = rtc_url(url, token, auto_subscribe=auto_subscribe, adaptive_stream=adaptive_stream)
    request = proto_rtc.JoinRequest(
        client_info=client_info(dict(parse_qsl(urlsplit(v0).query))),
        connection_settings=proto_rtc.ConnectionSettings(
            auto_subscribe=auto_subscribe, adaptive_stream=adaptive_stream
        ),
        reconnect=reconnect,
    )
    if reconnect:
        if participant_sid:
            request.participant_sid = participant_sid
        if reconnect_reason is not None:
            request.reconnect_reason = reconnect_reason  # type: ignore[assignment]
    if publisher_offer is not None:
        request.publisher_offer.CopyFrom(publisher_offer)
    params = {"access_token": token, "join_request": join_request_param(request)}
    return f"{base_ws_url(url)}/rtc/v1?{urlencode(params)}"


def redact(url: str) -> str:
    """``url`` with the access token replaced and the join request shortened.

    Safe for logs and error messages: the token is a credential, and the
    ``join_request`` of ``/rtc/v1`` (kilobytes of base64 with an offer in it) is
    replaced by its size.
    """
    parts = urlsplit(url)
    if not parts.query:
        return url
    shown: list[str] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "access_token":
            shown.append("access_token=<redacted>")
        elif key == "join_request":
            shown.append(f"join_request=<{len(value)} characters>")
        else:
            shown.append(urlencode({key: value}))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(shown), ""))
