"""End-to-end encryption on our media path: where the frame cryptors sit.

:mod:`livekit_py.media.frame_crypto` encrypts and decrypts frames; this module puts its
cryptors where the frames are:

* sending, :func:`encrypt_sender` gives each of a publisher's encoders (one per
  simulcast layer) a :class:`SendEncryption` as the encryption step of its
  :class:`~.frame_transform.SendTransforms`: each encoded frame is encrypted before
  aiortc packetizes it (VP8: the payload descriptor is added outside the encrypted
  frame, as libwebrtc's packetizer does), in the encoding thread, and before its packet
  trailer (frame metadata) is appended; a frame the encryptor drops (no key yet) is not
  sent. The layers of a simulcast sender share one :class:`FrameEncryptor` (one key
  index and state for the track), each with its own :class:`SendEncryption` (SSRC of
  the IV);
* receiving, a :class:`ReceiveDecryption` sits on each receiving m-line of a room with
  end-to-end encryption from before its first packet: the engine puts its
  :meth:`~ReceiveDecryption.filter_frames` in the receiver's frame filter slot (video:
  the frames our assembler completed, before aiortc's decoder) and its
  :meth:`~ReceiveDecryption.decrypt` in front of the audio jitter buffer (each Opus
  packet). Until the room knows which track the m-line carries and how it is encrypted
  (:meth:`~ReceiveDecryption.bind`), its frames are dropped: they might be ciphertext.

A video frame that does not decrypt never reaches the decoder. Since the decoder then
misses a frame the following ones refer to, the frames after a failure are held back
until a key frame decrypts; a delta frame that decrypts meanwhile asks for one (a PLI,
at most every ``pli_interval``). While nothing decrypts (a wrong key) no PLI is sent.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

from aiortc import RTCRtpSender

from ..log import get_logger
from ..media.clock import MediaClock, resolve_clock
from ..media.frame_crypto import FrameDecryptor, FrameEncryptor, KeyRing, MediaKind, media_kind_for
from .aiortc_adapter import EncodedFrame
from .encoders import send_transforms, sent_codec
from .frame_assembler import PLI_INTERVAL, KeyframeTest

__all__ = ["ReceiveDecryption", "SendEncryption", "encrypt_sender"]

logger = get_logger("webrtc.e2ee")


class SendEncryption:
    """The frame transform of one published track: its :class:`FrameEncryptor`.

    The IV of each frame is built from an SSRC and the RTP timestamp (see
    :mod:`~livekit_py.media.frame_crypto`); the receiver reads it from the frame, so any
    value unique per key works. aiortc keeps its sender's SSRC private, so each
    encryption draws a random one of its own.
    """

    __slots__ = ("encryptor", "ssrc")

    def __init__(self, encryptor: FrameEncryptor) -> None:
        self.encryptor = encryptor
        self.ssrc = secrets.randbits(32)

    def __call__(self, frame: bytes, timestamp: int) -> bytes | None:
        return self.encryptor.encrypt(frame, timestamp, self.ssrc)


def encrypt_sender(sender: RTCRtpSender, ring: KeyRing, key_index: int = 0) -> FrameEncryptor:
    """Encrypt every frame ``sender`` encodes from now on with the keys of ``ring``.

    On a simulcast sender, every layer's frames (with one shared encryptor).

    Args:
        sender: A publisher sender our encoder is installed on
            (:func:`~.encoders.configure_sender`), before media flows.
        ring: The keys of the local participant.
        key_index: The index of the key frames are encrypted with.

    Returns:
        The sender's encryptor (its state, ``enabled`` and ``key_index``).

    Raises:
        ValueError: If the sender has no encoder of ours, or its codec cannot be
            encrypted.
    """
    mime = sent_codec(sender)
    kind = media_kind_for(mime) if mime is not None else None
    if kind is None:
        raise ValueError(f"frames of {mime or 'this sender'} cannot be encrypted")
    encryptor = FrameEncryptor(kind, ring, key_index)
    for chain in send_transforms(sender):
        chain.encrypt = SendEncryption(encryptor)
    return encryptor


class ReceiveDecryption:
    """Decrypts the frames of one receiving m-line before they are decoded.

    Args:
        kind: ``"audio"`` or ``"video"``, the m-line's kind.
        keyframe_test: Tells a video key frame from its payload type and data (the
            clear bytes of an encrypted frame keep what it reads); needed for video.
        clock: Where time comes from, for the PLI interval (the loop's by default).
        pli_interval: Minimum seconds between two PLIs this asks for.

    Raises:
        ValueError: For another ``kind``, or a video one without ``keyframe_test``.
    """

    def __init__(
        self,
        kind: str,
        *,
        keyframe_test: KeyframeTest | None = None,
        clock: MediaClock | None = None,
        pli_interval: float = PLI_INTERVAL,
    ) -> None:
        if kind not in ("audio", "video"):
            raise ValueError(f"kind must be 'audio' or 'video', not {kind!r}")
        if kind == "video" and keyframe_test is None:
            raise ValueError("a video ReceiveDecryption needs a keyframe_test")
        self.kind = kind
        self.keyframe_test = keyframe_test
        self._clock = resolve_clock(clock)
        self._pli_interval = pli_interval
        self._bound = False
        self._decryptor: FrameDecryptor | None = None
        self._need_keyframe = False
        self._last_pli: float | None = None
        self.on_failure: Callable[[FrameDecryptor], None] | None = None
        """Called (on the loop) after a frame failed that a ratchet might open
        (:attr:`FrameDecryptor.needs_ratchet`): the owner runs the ratchet off the loop."""
        self.frames_decrypted = 0
        """Frames passed on decrypted (or in clear, for a track not encrypted)."""
        self.frames_dropped = 0
        """Frames dropped: not decrypted, not bound yet, or waiting for a key frame."""

    # -- what the m-line carries --------------------------------------------------------

    @property
    def bound(self) -> bool:
        """Whether the room said how this m-line's frames are encrypted."""
        return self._bound

    @property
    def decryptor(self) -> FrameDecryptor | None:
        """The decryptor of the track the m-line carries (None: in clear, or not bound)."""
        return self._decryptor

    def bind(self, decryptor: FrameDecryptor | None) -> None:
        """The m-line carries a track decrypted by ``decryptor`` (None: not encrypted)."""
        self._decryptor = decryptor
        self._bound = True

    def unbind(self) -> None:
        """The m-line carries another track (or none): drop frames until :meth:`bind`."""
        self._decryptor = None
        self._bound = False
        self._need_keyframe = True

    @property
    def answered_mime_type(self) -> str:
        """The video codec our answer accepted on this m-line ("" if unknown, and for audio)."""
        codecs = getattr(self.keyframe_test, "codecs", None) or {}
        return next((m for m in codecs.values() if m.lower() != "video/rtx"), "")

    @staticmethod
    def media_kind(kind: str, mime_type: str) -> MediaKind:
        """The :class:`MediaKind` of a track's frames from its kind and MIME type.

        Raises:
            ValueError: For a codec whose frames cannot be decrypted here.
        """
        found = media_kind_for(mime_type) if mime_type else None
        if found is None and not mime_type:
            found = MediaKind.OPUS if kind == "audio" else MediaKind.VP8
        if found is None:
            raise ValueError(f"frames of {mime_type} cannot be decrypted")
        return found

    # -- frames ---------------------------------------------------------------------------

    def decrypt(self, frame: bytes) -> bytes | None:
        """One received frame (an Opus packet, a complete video frame) in clear, or None.

        None means drop it: not bound yet, or it did not decrypt.
        """
        if not self._bound:
            self.frames_dropped += 1
            return None
        decryptor = self._decryptor
        if decryptor is None:
            self.frames_decrypted += 1
            return frame
        plain = decryptor.decrypt(frame)
        if plain is None:
            self.frames_dropped += 1
            if decryptor.needs_ratchet and self.on_failure is not None:
                self.on_failure(decryptor)
            return None
        self.frames_decrypted += 1
        return plain

    def filter_frames(self, frames: Sequence[EncodedFrame]) -> tuple[bool, list[EncodedFrame]]:
        """The :data:`~.aiortc_adapter.FrameFilter` of a video receiver: decrypt, or drop.

        After a frame was dropped, the next ones are held back until a key frame
        decrypts; a delta frame decrypted meanwhile asks for a PLI.
        """
        out: list[EncodedFrame] = []
        pli = False
        for frame in frames:
            plain = self.decrypt(frame.data)
            if plain is None:
                self._need_keyframe = True
                continue
            if self._need_keyframe:
                test = self.keyframe_test
                if test is not None and not test(frame.payload_type, plain):
                    self.frames_decrypted -= 1
                    self.frames_dropped += 1
                    pli = self._ask_pli() or pli
                    continue
                self._need_keyframe = False
            frame.data = plain
            out.append(frame)
        return pli, out

    def _ask_pli(self) -> bool:
        now = self._clock.now()
        if self._last_pli is not None and now - self._last_pli < self._pli_interval:
            return False
        self._last_pli = now
        logger.debug("frames decrypt again after a failure: asking for a key frame")
        return True
