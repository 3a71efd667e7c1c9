"""Our Opus encoder for aiortc: aiortc's, with the bitrate the publisher asked for."""

from __future__ import annotations

from aiortc.codecs.opus import OpusEncoder as _AiortcOpusEncoder

DEFAULT_AUDIO_BITRATE = 48_000
MIN_AUDIO_BITRATE = 6_000
MAX_AUDIO_BITRATE = 510_000


class OpusEncoder(_AiortcOpusEncoder):
    """aiortc's Opus encoder (48 kHz, 20 ms, voip) at a chosen target bitrate."""

    def __init__(self, bitrate: int = DEFAULT_AUDIO_BITRATE) -> None:
        super().__init__()
        self.codec.bit_rate = max(MIN_AUDIO_BITRATE, min(MAX_AUDIO_BITRATE, int(bitrate)))

    @property
    def bitrate(self) -> int:
        return int(self.codec.bit_rate or 0)
