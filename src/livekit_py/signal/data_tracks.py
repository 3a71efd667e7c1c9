"""The signal messages of data tracks, made and read (pure: no I/O).

Publishing: ``PublishDataTrackRequest{pub_handle, name, encryption}`` is answered by a
``PublishDataTrackResponse{info}`` or, refused, by a ``RequestResponse`` whose
``publish_data_track`` repeats the request; ``UnpublishDataTrackRequest{pub_handle}`` by an
``UnpublishDataTrackResponse{info}`` (the server sends one by itself when it unpublishes a
track). Subscribing: ``UpdateDataSubscription{updates[{track_sid, subscribe}]}``; the server
then sends ``DataTrackSubscriberHandles``, the whole map of the handles it stamps on the
packets it forwards to us (handle -> track sid), after every change. Other participants'
tracks are listed in their ``ParticipantInfo.data_tracks``.
"""

from __future__ import annotations

from collections.abc import Iterable

from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc

__all__ = [
    "MAX_NAME_BYTES",
    "publish_refusal",
    "publish_request",
    "subscriber_handles",
    "subscription_request",
    "unpublish_request",
]

MAX_NAME_BYTES = 256
"""Longest track name the server accepts, in UTF-8 bytes (it must not be empty)."""

_Reason = proto_rtc.RequestResponse.Reason

# The official SDKs' words for the server's refusals (livekit-datatrack PublishError).
_REFUSALS: dict[int, str] = {
    _Reason.NOT_ALLOWED: "Data track publishing unauthorized",
    _Reason.DUPLICATE_NAME: "Track name already taken",
    _Reason.INVALID_NAME: "Track name invalid",
}


def publish_request(handle: int, name: str, *, encrypted: bool) -> proto_rtc.SignalRequest:
    """Ask to publish a track under our ``handle`` (AES-GCM encrypted frames or clear)."""
    encryption = (
        proto_models.Encryption.Type.GCM if encrypted else proto_models.Encryption.Type.NONE
    )
    return proto_rtc.SignalRequest(
        publish_data_track_request=proto_rtc.PublishDataTrackRequest(
            pub_handle=handle, name=name, encryption=encryption
        )
    )


def unpublish_request(handle: int) -> proto_rtc.SignalRequest:
    return proto_rtc.SignalRequest(
        unpublish_data_track_request=proto_rtc.UnpublishDataTrackRequest(pub_handle=handle)
    )


def subscription_request(updates: Iterable[tuple[str, bool]]) -> proto_rtc.SignalRequest:
    """Subscribe to (True) or unsubscribe from (False) each track sid."""
    return proto_rtc.SignalRequest(
        update_data_subscription=proto_rtc.UpdateDataSubscription(
            updates=[
                proto_rtc.UpdateDataSubscription.Update(track_sid=sid, subscribe=subscribe)
                for sid, subscribe in updates
            ]
        )
    )


def publish_refusal(msg: proto_rtc.RequestResponse) -> tuple[int, str] | None:
    """(our handle, why) if ``msg`` refuses a publish request, else None."""
    if msg.WhichOneof("request") != "publish_data_track":
        return None
    if msg.reason in (_Reason.OK, _Reason.QUEUED):
        return None
    why = _REFUSALS.get(msg.reason) or f"SFU rejected: {msg.message or _Reason.Name(msg.reason)}"
    return msg.publish_data_track.pub_handle, why


def subscriber_handles(msg: proto_rtc.DataTrackSubscriberHandles) -> dict[int, str]:
    """Handle -> track sid of every subscription the server forwards to us now.

    Handles outside 1..65535 (no packet can carry them) are left out.
    """
    return {
        handle: published.track_sid
        for handle, published in msg.sub_handles.items()
        if 0 < handle <= 0xFFFF and published.track_sid
    }
