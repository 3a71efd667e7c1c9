"""Fan-out of decoded media frames from one producer to any number of consumers.

A producer (an :class:`~.audio_source.AudioSource` clock, a remote aiortc track read by
:class:`TrackReader`, a local track's sent frames) calls :meth:`FrameFanout.publish` with
each PyAV frame; every subscribed :class:`FrameSink` gets it synchronously, in subscription
order. When the producer is done, :meth:`FrameFanout.end` tells every sink once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..log import get_logger
from ..types import TrackKind

__all__ = ["AVFrame", "FrameFanout", "FrameSink", "HasFrames", "Subscription", "TrackReader"]

logger = get_logger("media.frame_source")

AVFrame = av.AudioFrame | av.VideoFrame


class FrameSink(Protocol):
    """A consumer of frames; both methods run on the event loop and must not block."""

    def on_frame(self, frame: AVFrame) -> None:
        """Take one frame. The frame is shared with the other sinks: do not modify it."""

    def on_end(self) -> None:
        """The producer is done: no frame follows."""


@runtime_checkable
class HasFrames(Protocol):
    """What a stream reads a track through: its kind and where its frames appear.

    Every public ``Track`` satisfies it; the streams take tracks through this seam
    instead of importing the track classes (which sit in a higher layer).
    """

    @property
    def kind(self) -> int:
        """A :class:`TrackKind` value."""
        ...

    def _frame_source(self) -> FrameFanout:
        """The fan-out where the track's frames appear (ValueError if it has none)."""
        ...


class Subscription:
    """The link between one sink and a :class:`FrameFanout`; :meth:`close` undoes it."""

    __slots__ = ("_closed", "_fanout", "_sink")

    def __init__(self, fanout: FrameFanout, sink: FrameSink) -> None:
        self._fanout = fanout
        self._sink = sink
        self._closed = False

    @property
    def sink(self) -> FrameSink:
        """The subscribed sink."""
        return self._sink

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Stop delivering frames to the sink. Calling it again does nothing.

        The sink's ``on_end`` is not called for a subscription closed before the end.
        """
        if self._closed:
            return
        self._closed = True
        self._fanout._remove(self)


class FrameFanout:
    """Delivers every published frame to all current subscribers.

    Delivery is synchronous: :meth:`publish` returns once each sink's ``on_frame`` has
    returned. A sink that raises is logged and skipped; the others still get the frame.
    """

    def __init__(self, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Create a fan-out.

        Args:
            loop: The loop used to notify sinks that subscribe after the end; the running
                loop at that time when omitted.
        """
        self._loop = loop
        self._subscriptions: dict[Subscription, None] = {}
        self._ended = False

    @property
    def ended(self) -> bool:
        """Whether :meth:`end` was called."""
        return self._ended

    @property
    def subscriber_count(self) -> int:
        """Number of sinks currently subscribed."""
        return len(self._subscriptions)

    def subscribe(self, sink: FrameSink) -> Subscription:
        """Start delivering frames to ``sink``.

        After the end, the sink gets ``on_end`` soon (from the event loop, not from within
        this call) and no frame.

        Returns:
            The subscription; close it to stop the delivery.
        """
        subscription = Subscription(self, sink)
        if self._ended:
            self._notify_late(subscription)
            return subscription
        self._subscriptions[subscription] = None
        self._subscribers_changed()
        return subscription

    def publish(self, frame: AVFrame) -> None:
        """Hand ``frame`` to every current sink. Does nothing after the end."""
        self.publish_item(frame)

    def publish_item(self, item: object) -> None:
        """Hand ``item`` to every current sink, as :meth:`publish` does a frame.

        For fan-outs whose sinks take other objects than PyAV frames (a source's
        captured pictures or access units with what came with them): the delivery
        (order, error isolation) is the same.
        """
        if self._ended or not self._subscriptions:
            return
        for subscription in tuple(self._subscriptions):
            if subscription.closed:
                continue  # closed by an earlier sink during this delivery
            try:
                subscription.sink.on_frame(item)  # type: ignore[arg-type]
            except Exception:
                logger.exception("frame sink %r failed on a frame", subscription.sink)

    def end(self) -> None:
        """Tell every sink that no frame follows. Only the first call has an effect."""
        if self._ended:
            return
        self._ended = True
        subscriptions = tuple(self._subscriptions)
        self._subscriptions.clear()
        for subscription in subscriptions:
            subscription._closed = True
            _call_end(subscription.sink)
        self._subscribers_changed()

    def _remove(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            del self._subscriptions[subscription]
            self._subscribers_changed()

    def _subscribers_changed(self) -> None:
        """Hook for subclasses, run after a sink joined or left (and after the end)."""

    def _notify_late(self, subscription: Subscription) -> None:
        def notify() -> None:
            if not subscription.closed:
                subscription._closed = True
                _call_end(subscription.sink)

        loop = self._loop
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        if loop is None or loop.is_closed():
            notify()
        else:
            loop.call_soon(notify)


def _call_end(sink: FrameSink) -> None:
    try:
        sink.on_end()
    except Exception:
        logger.exception("frame sink %r failed on the end", sink)


class TrackReader(FrameFanout):
    """Reads an aiortc track in a task and publishes every frame it returns.

    The track is read continuously once :meth:`start` was called, subscribers or not:
    aiortc queues received frames without bound, so they must always be taken. The
    reader ends (see :meth:`FrameFanout.end`) when the track raises
    :class:`~aiortc.mediastreams.MediaStreamError`, when it is stopped, or on
    :meth:`aclose`. The track itself is not stopped by the reader.

    :attr:`annotate`, when set, sees each frame before it is published (the owner may
    attach what it knows about the frame, e.g. in ``frame.opaque``).
    """

    def __init__(
        self, track: MediaStreamTrack, *, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        """Wrap ``track``; nothing is read before :meth:`start`."""
        super().__init__(loop=loop)
        self._track = track
        self._task: asyncio.Task[None] | None = None
        self._listening = False
        self._closed = False
        self.annotate: Callable[[AVFrame], None] | None = None
        """Called with each frame read, before it is published (on the event loop)."""
        self.frames_read = 0
        """Frames the track returned so far (for a received track: frames decoded)."""
        self.last_video_size: tuple[int, int] | None = None
        """(width, height) of the latest video frame read, None before the first."""

    @property
    def track(self) -> MediaStreamTrack:
        """The track being read."""
        return self._track

    def start(self) -> None:
        """Start reading (from within the event loop). Later calls do nothing.

        A track that has already ended ends the reader at once.
        """
        if self._task is not None or self._closed or self.ended:
            return
        if self._track.readyState == "ended":
            self.end()
            return
        loop = self._loop or asyncio.get_running_loop()
        self._track.on("ended", self._on_track_ended)
        self._listening = True
        self._task = loop.create_task(self._run(), name=f"TrackReader({self._track.id})")

    async def aclose(self) -> None:
        """Stop reading, wait for the reading task to finish and end the reader."""
        self._closed = True
        self._stop_listening()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            if task is not asyncio.current_task():
                # asyncio.wait does not raise the task's cancellation into the caller,
                # while a cancellation of the caller still propagates
                await asyncio.wait({task})
        if task is not None and task.done() and not task.cancelled():
            task.exception()  # retrieved: _run logs its own failures
        self.end()

    async def _run(self) -> None:
        track = self._track
        try:
            while track.readyState != "ended":
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    break
                if isinstance(frame, (av.AudioFrame, av.VideoFrame)):
                    annotate = self.annotate
                    if annotate is not None:
                        try:
                            annotate(frame)
                        except Exception:
                            logger.exception("annotating a frame of track %s failed", track.id)
                    self.frames_read += 1
                    if isinstance(frame, av.VideoFrame):
                        self.last_video_size = (frame.width, frame.height)
                    self.publish(frame)
                else:
                    logger.debug("ignoring a %s from track %s", type(frame).__name__, track.id)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("reading track %s failed", track.id)
        finally:
            self._stop_listening()
            self.end()

    def _on_track_ended(self) -> None:
        self._listening = False  # the track drops all its listeners once ended
        task = self._task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
        # a task blocked in recv() of a stopped track ends now; from within recv()
        # (a remote track stops itself there) the MediaStreamError that follows ends it
        if task is None or task is not asyncio.current_task():
            self.end()

    def _stop_listening(self) -> None:
        if self._listening:
            self._listening = False
            with contextlib.suppress(KeyError):
                self._track.remove_listener("ended", self._on_track_ended)


# what each kind is called in messages, with its article
_KIND_NAMES: dict[int, tuple[str, str]] = {
    TrackKind.KIND_AUDIO: ("an", "audio"),
    TrackKind.KIND_VIDEO: ("a", "video"),
}


def fanout_of(track: object, kind: int) -> FrameFanout:
    """Where to read ``track``'s frames: its ``_frame_source()``, or ``track`` if a fan-out.

    Raises:
        ValueError: If ``track`` is of the other kind, is not a track, or has no frames.
    """
    if isinstance(track, FrameFanout):
        return track
    article, name = _KIND_NAMES[kind]
    other_kind = TrackKind.KIND_VIDEO if kind == TrackKind.KIND_AUDIO else TrackKind.KIND_AUDIO
    if getattr(track, "kind", None) == other_kind:
        other_article, other_name = _KIND_NAMES[other_kind]
        raise ValueError(
            f"track must be {article} {name} track, got {other_article} {other_name} track "
            f"({track!r})"
        )
    if not isinstance(track, HasFrames):
        raise ValueError(f"track must be {article} {name} Track, got {type(track).__name__}")
    fanout = track._frame_source()
    if not isinstance(fanout, FrameFanout):
        raise ValueError(f"track {track!r} has no readable {name}")
    return fanout
