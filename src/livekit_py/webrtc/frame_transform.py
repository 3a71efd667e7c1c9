"""What an encoder or a receiver may do to each encoded frame: the seam of end-to-end encryption.

Sending, our encoders (:mod:`.video_codecs`, :mod:`.opus`) hand every encoded frame to
their ``frame_transform``, when one is set, before it is packetized: a VP8 frame before
aiortc adds the payload descriptor to each packet, an H.264 access unit (Annex-B, 4-byte
start codes, as libwebrtc's encoders produce it) before it is split into NAL units and
packets, an Opus packet as the RTP payload. A transform returns the bytes to send
instead, or None to send nothing for that frame.

A sender's encoder has one :class:`SendTransforms` (a simulcast sender: one per layer
encoder), which applies, in order, end-to-end encryption and then the packet trailer of
the frame's metadata (:mod:`.frame_metadata`), as the official SDKs chain their frame
cryptor and trailer transformer: the trailer stays outside the ciphertext.

Receiving, a frame filter (:data:`~.aiortc_adapter.FrameFilter`) sees the complete
frames a receiver assembled before they are decoded
(:func:`~.aiortc_adapter.set_frame_filter`), and may replace or drop them;
:func:`chain_filters` runs several in order (the trailer is stripped before decryption).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

__all__ = [
    "FilterChain",
    "FrameTransform",
    "SendTransforms",
    "TrailerSource",
    "chain_filters",
    "transform_payloads",
]

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


class TrailerSource(Protocol):
    """Where a sender's transforms find the packet trailer of each frame."""

    def trailer(self, timestamp: int) -> bytes:
        """The trailer to append to the frame of ``timestamp`` (b"" for none)."""
        ...


class SendTransforms:
    """The transforms of one encoder: encryption, then the frame's packet trailer.

    Installed as the encoder's ``frame_transform``
    (:func:`~.encoders.send_transforms`); either step may be set or cleared at any
    time (a frame encoded meanwhile sees the old or the new one).

    Attributes:
        encrypt: Encrypts each frame (None: frames in clear); returning None drops it.
        trailers: Gives the trailer appended to each frame, after encryption (None: no
            trailers).
    """

    __slots__ = ("encrypt", "trailers")

    def __init__(self) -> None:
        self.encrypt: FrameTransform | None = None
        self.trailers: TrailerSource | None = None

    def __call__(self, frame: bytes, timestamp: int) -> bytes | None:
        encrypt = self.encrypt
        if encrypt is not None:
            encrypted = encrypt(frame, timestamp)
            if encrypted is None:
                return None
            frame = encrypted
        trailers = self.trailers
        if trailers is not None and frame:
            trailer = trailers.trailer(timestamp)
            if trailer:
                return frame + trailer
        return frame


_Frame = TypeVar("_Frame")


class FilterChain(Generic[_Frame]):
    """One frame filter running :attr:`filters` in order; a PLI any of them asks for is sent.

    A filter that leaves no frame ends the chain for that batch.
    """

    __slots__ = ("filters",)

    def __init__(
        self, *filters: Callable[[Sequence[_Frame]], tuple[bool, Sequence[_Frame]]]
    ) -> None:
        self.filters = filters

    def __call__(self, frames: Sequence[_Frame]) -> tuple[bool, Sequence[_Frame]]:
        pli = False
        for each in self.filters:
            if not frames:
                break
            wants, frames = each(frames)
            pli = pli or wants
        return pli, frames


def chain_filters(
    *filters: Callable[[Sequence[_Frame]], tuple[bool, Sequence[_Frame]]],
) -> FilterChain[_Frame]:
    """A :class:`FilterChain` of ``filters``, in order."""
    return FilterChain(*filters)
