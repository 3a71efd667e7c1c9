"""What an encoder or a receiver may do to each encoded frame: the seam of end-to-end encryption.

Sending, our encoders (:mod:`.video_codecs`, :mod:`.opus`) hand every encoded frame to
their ``frame_transform``, when one is set, before it is packetized: a VP8 frame before
aiortc adds the payload descriptor to each packet, an H.264 access unit (Annex-B, 4-byte
start codes, as libwebrtc's encoders produce it) before it is split into NAL units and
packets, an Opus packet as the RTP payload. A transform returns the bytes to send
instead, or None to send nothing for that frame.

Receiving, a :data:`FrameFilter` sees the complete frames a receiver assembled before
they are decoded (:func:`~.aiortc_adapter.set_frame_filter`), and may replace or drop
them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["FrameTransform", "transform_payloads"]

FrameTransform = Callable[[bytes, int], "bytes | None"]
"""Takes one encoded frame and its RTP timestamp (on the codec's clock, without the
sender's random offset); returns what to packetize instead, or None to drop the frame.

Called in the thread that encodes (aiortc's executor) or, for pre-encoded packets, on the
event loop; one frame at a time per encoder."""


def transform_payloads(
    transform: FrameTransform | None, payloads: Sequence[bytes], timestamp: int
) -> list[bytes]:
    """Each payload (one whole frame each, as Opus packets are) through ``transform``.

    Empty payloads pass unchanged; a payload the transform drops is left out.
    """
    if transform is None:
        return list(payloads)
    out: list[bytes] = []
    for payload in payloads:
        if not payload:
            out.append(payload)
            continue
        transformed = transform(payload, timestamp)
        if transformed is not None:
            out.append(transformed)
    return out
