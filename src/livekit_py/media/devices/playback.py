"""Playback: the per-track jitter buffer and the mixing done by the output callback."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .backend import Samples

__all__ = ["JitterBuffer", "mix"]


class JitterBuffer:
    """Audio of one track waiting to be played: filled on the loop, drained by the device.

    Playout starts (and restarts after running dry) once ``prime`` samples are buffered, so
    that the device's large blocks do not find it half empty; beyond ``limit`` samples the
    oldest audio is dropped down to ``prime``.
    """

    def __init__(self, num_channels: int, prime: int, limit: int) -> None:
        self._lock = threading.Lock()
        self._channels = num_channels
        self._prime = prime
        self._limit = limit
        self._chunks: deque[Samples] = deque()
        self._size = 0
        self._playing = False
        self._ended = False
        self.dropped = 0  # samples dropped on overflow
        self.underruns = 0

    def push(self, samples: Samples) -> None:
        with self._lock:
            self._chunks.append(samples)
            self._size += samples.shape[0]
            if self._size > self._limit:
                self._drop_locked(self._size - self._prime)

    def end(self) -> None:
        with self._lock:
            self._ended = True

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()
            self._size = 0
            self._playing = False

    def _drop_locked(self, count: int) -> None:
        self.dropped += count
        while count > 0 and self._chunks:
            head = self._chunks[0]
            if head.shape[0] <= count:
                self._chunks.popleft()
                count -= head.shape[0]
                self._size -= head.shape[0]
            else:
                self._chunks[0] = head[count:]
                self._size -= count
                count = 0

    def take(self, count: int) -> Samples | None:
        """Up to ``count`` samples to play now (None while priming or empty)."""
        with self._lock:
            if not self._playing:
                if self._size >= self._prime or (self._ended and self._size > 0):
                    self._playing = True
                else:
                    return None
            pieces: list[Samples] = []
            needed = count
            while needed > 0 and self._chunks:
                head = self._chunks[0]
                if head.shape[0] <= needed:
                    pieces.append(self._chunks.popleft())
                    needed -= head.shape[0]
                else:
                    pieces.append(head[:needed])
                    self._chunks[0] = head[needed:]
                    needed = 0
            self._size -= count - needed
            if needed and not self._ended:
                self._playing = False  # ran dry: gather a prime's worth again
                self.underruns += 1
        if not pieces:
            return None
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def mix(buffers: Sequence[JitterBuffer], frames: int, channels: int, outdata: Samples) -> Samples:
    """Mix the next ``frames`` samples of every buffer into ``outdata`` (int16, clipped).

    Buffers that are priming or empty add nothing; with nothing to play ``outdata`` is
    silence.

    Args:
        buffers: The tracks' jitter buffers.
        frames: Samples per channel to play.
        channels: Channels of ``outdata``.
        outdata: The device block, ``(frames, channels)`` int16, filled here.

    Returns:
        What is played, as ``(frames,)`` int16 mono (the mean of the channels).
    """
    mixed: npt.NDArray[np.int32] | None = None
    for buffer in buffers:
        samples = buffer.take(frames)
        if samples is None:
            continue
        if mixed is None:
            mixed = np.zeros((frames, channels), dtype=np.int32)
        mixed[: samples.shape[0]] += samples
    if mixed is None:
        outdata.fill(0)
        return np.zeros(frames, dtype=np.int16)
    np.clip(mixed, -32768, 32767, out=mixed)
    outdata[:frames] = mixed
    played: Samples
    if channels == 1:
        played = mixed[:, 0].astype(np.int16)
    else:
        played = mixed.mean(axis=1).astype(np.int16)
    return played
