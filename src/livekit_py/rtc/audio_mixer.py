"""Mixing several asynchronous audio streams into one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np

from ..log import get_logger
from ..media.clock import MediaClock, resolve_clock, wait_done
from .audio_frame import AudioFrame

__all__ = ["AudioMixer"]

logger = get_logger("media.audio_mixer")

# After end_input(), a stream that times out this many rounds in a row is given up on, so
# that a stream which never ends cannot keep the mixer from finishing.
_MAX_STALLED_ROUNDS = 10
# pause of the mixing loop while it has no streams at all, in seconds
_IDLE_SLEEP = 0.01
# pause after a round in which no stream delivered anything, in seconds
_EMPTY_ROUND_SLEEP = 0.001


@dataclass
class _Input:
    """What the mixer keeps for one of its streams."""

    chunks: list[np.ndarray] = field(default_factory=list)  # each (frames, channels) int16
    buffered: int = 0  # samples per channel held in ``chunks``
    pending: asyncio.Future[AudioFrame] | None = None  # a read not yet consumed
    stalled: int = 0  # consecutive rounds that ended on a timeout
    finished: bool = False  # the stream ended, failed or was given up on


class AudioMixer:
    """Mixes any number of audio streams into one stream of fixed-size frames.

    Each added stream is an async iterator of :class:`AudioFrame` with the mixer's sample
    rate and channel count. The mixer reads all of them concurrently, one block of
    ``blocksize`` samples per channel at a time, adds the blocks up (clipping to the int16
    range) and yields the result when iterated with ``async for``. A stream that has
    nothing within ``stream_timeout_ms`` contributes silence to that block; what it delivers
    later goes into a later block. Once :meth:`end_input` was called and every stream is
    exhausted, the iteration ends.

    The mixer must be created while an asyncio event loop is running: it starts its mixing
    task right away.
    """

    def __init__(
        self,
        sample_rate: int,
        num_channels: int,
        *,
        blocksize: int = 0,
        stream_timeout_ms: int = 100,
        capacity: int = 100,
        clock: MediaClock | None = None,
    ) -> None:
        """Create a mixer and start mixing.

        Args:
            sample_rate: Sample rate of every input and of the output, in Hz.
            num_channels: Channel count of every input and of the output.
            blocksize: Samples per channel in each output frame; 0 means
                ``sample_rate // 10`` (100 ms).
            stream_timeout_ms: How long one read from a stream may take before that stream
                counts as silent for the current block.
            capacity: How many mixed frames may wait for the consumer before mixing pauses
                (0: no limit).
            clock: Where the stream timeout and the mixer's pauses are timed; the running
                event loop's time when omitted.

        Raises:
            ValueError: If an argument is out of range.
            RuntimeError: If no asyncio event loop is running.
        """
        for name, value in (("sample_rate", sample_rate), ("num_channels", num_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name, value in (("blocksize", blocksize), ("capacity", capacity)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if (
            isinstance(stream_timeout_ms, bool)
            or not isinstance(stream_timeout_ms, (int, float))
            or not stream_timeout_ms >= 0
        ):
            raise ValueError(f"stream_timeout_ms must be a number >= 0, got {stream_timeout_ms!r}")

        self._sample_rate = sample_rate
        self._num_channels = num_channels
        self._chunk_size = blocksize if blocksize > 0 else sample_rate // 10
        if self._chunk_size <= 0:
            raise ValueError(f"blocksize must be given when sample_rate ({sample_rate}) < 10 Hz")
        self._stream_timeout = stream_timeout_ms / 1000.0
        self._clock = resolve_clock(clock)
        self._inputs: dict[AsyncIterator[AudioFrame], _Input] = {}
        self._queue: asyncio.Queue[AudioFrame | None] = asyncio.Queue(maxsize=capacity)
        self._ending = False  # end_input() or aclose() was called: no new streams
        self._output_done = False  # the consumer has seen the end of the output
        self._task = asyncio.get_running_loop().create_task(self._run())

    def add_stream(self, stream: AsyncIterator[AudioFrame]) -> None:
        """Start mixing ``stream`` in. Adding a stream that is already mixed does nothing.

        Raises:
            RuntimeError: If :meth:`end_input` or :meth:`aclose` was already called.
        """
        if self._ending:
            raise RuntimeError("cannot add a stream after end_input() or aclose()")
        if stream not in self._inputs:
            self._inputs[stream] = _Input()

    def remove_stream(self, stream: AsyncIterator[AudioFrame]) -> None:
        """Stop mixing ``stream`` and drop its buffered audio. Unknown streams are ignored.

        A read of the stream still in progress is cancelled.
        """
        state = self._inputs.pop(stream, None)
        if state is not None and state.pending is not None:
            _abandon(state.pending)
            state.pending = None

    def end_input(self) -> None:
        """Declare that no more streams will be added.

        Mixing goes on until every stream is exhausted (or, for a stream that stops
        delivering without ending, has timed out several rounds in a row); then the
        iteration ends.
        """
        self._ending = True

    async def aclose(self) -> None:
        """Stop mixing now.

        Frames not yet consumed are dropped and the iteration ends. Reads still in progress
        are cancelled and awaited, so a stream should let :class:`asyncio.CancelledError`
        through once it has cleaned up.
        """
        self._ending = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        reads: list[asyncio.Future[AudioFrame]] = []
        for state in self._inputs.values():
            if state.pending is not None:
                reads.append(state.pending)
                _abandon(state.pending)
                state.pending = None
        self._inputs.clear()
        if reads:
            await asyncio.gather(*reads, return_exceptions=True)
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    def __aiter__(self) -> AudioMixer:
        return self

    async def __anext__(self) -> AudioFrame:
        if self._output_done:
            raise StopAsyncIteration
        frame = await self._queue.get()
        if frame is None:
            self._output_done = True
            raise StopAsyncIteration
        return frame

    async def _run(self) -> None:
        try:
            await self._mix_rounds()
        except Exception:
            logger.exception("AudioMixer: mixing stopped on an error")
        await self._queue.put(None)

    async def _mix_rounds(self) -> None:
        while True:
            if not self._inputs:
                if self._ending:
                    return
                await self._clock.sleep(_IDLE_SLEEP)
                continue

            inputs = list(self._inputs.items())
            results = await asyncio.gather(*(self._take_block(s, st) for s, st in inputs))

            blocks: list[np.ndarray] = []
            any_data = False
            for (stream, state), (block, had_data) in zip(inputs, results, strict=True):
                blocks.append(block)
                any_data = any_data or had_data
                if state.finished and state.buffered == 0 and self._inputs.get(stream) is state:
                    self.remove_stream(stream)

            if not any_data:
                await self._clock.sleep(_EMPTY_ROUND_SLEEP)
                continue

            total = np.sum(np.stack(blocks), axis=0, dtype=np.int32)
            mixed = np.clip(total, -32768, 32767).astype(np.int16)
            await self._queue.put(
                AudioFrame(mixed.tobytes(), self._sample_rate, self._num_channels, self._chunk_size)
            )

    async def _take_block(
        self, stream: AsyncIterator[AudioFrame], state: _Input
    ) -> tuple[np.ndarray, bool]:
        """Read ``stream`` until a block is buffered, it times out or ends; cut the block.

        Returns the block (zero-padded when short) and whether any audio was available.
        """
        had_data = state.buffered > 0
        while (
            state.buffered < self._chunk_size
            and not state.finished
            and self._inputs.get(stream) is state
        ):
            read = state.pending
            if read is None:
                read = asyncio.ensure_future(stream.__anext__())
                state.pending = read
            if not await wait_done(read, self._stream_timeout, self._clock):
                # the read stays pending: cancelling it could end an async generator for good
                state.stalled += 1
                logger.warning("AudioMixer: stream %r timed out, mixing silence", stream)
                if self._ending and state.stalled >= _MAX_STALLED_ROUNDS:
                    logger.warning("AudioMixer: giving up on stalled stream %r", stream)
                    state.finished = True
                break
            state.stalled = 0
            if state.pending is read:
                state.pending = None
            if read.cancelled():  # remove_stream() during the wait
                break
            exc = read.exception()
            if isinstance(exc, StopAsyncIteration):
                state.finished = True
                break
            if isinstance(exc, asyncio.TimeoutError):
                logger.warning("AudioMixer: stream %r raised a timeout, mixing silence", stream)
                break
            if exc is not None:
                logger.error("AudioMixer: stream %r failed, removing it", stream, exc_info=exc)
                state.finished = True
                break
            samples = self._samples_of(stream, read.result())
            if samples is not None:
                state.chunks.append(samples)
                state.buffered += samples.shape[0]
                had_data = True

        return self._cut_block(state), had_data

    def _samples_of(
        self, stream: AsyncIterator[AudioFrame], frame: AudioFrame
    ) -> np.ndarray | None:
        if frame.num_channels != self._num_channels or frame.sample_rate != self._sample_rate:
            logger.warning(
                "AudioMixer: dropping a frame of %r with %d Hz / %d channel(s), "
                "the mixer runs at %d Hz / %d channel(s)",
                stream,
                frame.sample_rate,
                frame.num_channels,
                self._sample_rate,
                self._num_channels,
            )
            return None
        count = frame.samples_per_channel * self._num_channels
        # copied: the producer may reuse the frame's buffer
        samples: np.ndarray = np.frombuffer(frame.data, dtype=np.int16, count=count).copy()
        return samples.reshape(-1, self._num_channels)

    def _cut_block(self, state: _Input) -> np.ndarray:
        size = self._chunk_size
        if state.buffered == 0:
            return np.zeros((size, self._num_channels), dtype=np.int16)
        held = state.chunks[0] if len(state.chunks) == 1 else np.concatenate(state.chunks)
        if state.buffered >= size:
            block, rest = held[:size], held[size:]
            state.chunks = [rest] if rest.shape[0] else []
            state.buffered = rest.shape[0]
            return block
        block = np.zeros((size, self._num_channels), dtype=np.int16)
        block[: state.buffered] = held
        state.chunks = []
        state.buffered = 0
        return block


def _abandon(read: asyncio.Future[AudioFrame]) -> None:
    """Cancel a read nobody waits for any more, and mark its outcome as seen."""
    read.cancel()
    read.add_done_callback(_swallow_outcome)


def _swallow_outcome(read: asyncio.Future[AudioFrame]) -> None:
    if not read.cancelled():
        read.exception()
