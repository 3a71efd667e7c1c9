"""Publishing one participant's audio and video in step: :class:`MediaPublisher`.

With both kinds, frames go through :class:`rtc.AVSynchronizer` (audio plays out in real
time from the :class:`rtc.AudioSource` queue, video is released ``1 / fps`` apart and
waits for the audio of the same span).  With audio alone the audio source's queue paces
the producer; with video alone a small pacer on the event loop's clock does.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from livekit_py import rtc

__all__ = ["AudioSpec", "MediaPublisher", "VideoSpec"]


@dataclass(frozen=True)
class VideoSpec:
    """The video to publish."""

    width: int
    height: int
    fps: float
    codec: str = "vp8"
    max_bitrate: int | None = None
    simulcast: bool = False
    name: str = "video"


@dataclass(frozen=True)
class AudioSpec:
    """The audio to publish."""

    sample_rate: int = 48000
    num_channels: int = 1
    name: str = "audio"


_CODECS = {"vp8": rtc.VideoCodec.VP8, "h264": rtc.VideoCodec.H264}


class MediaPublisher:
    """Publishes an audio and/or a video track of ``room``'s local participant."""

    def __init__(self, room: rtc.Room, *, audio: AudioSpec | None, video: VideoSpec | None) -> None:
        """Describe what will be published (see :meth:`start`).

        Raises:
            ValueError: If neither audio nor video is given, or the codec is unknown.
        """
        if audio is None and video is None:
            raise ValueError("nothing to publish: neither audio nor video")
        if video is not None and video.codec not in _CODECS:
            raise ValueError(
                f"video codec must be one of {', '.join(_CODECS)}, got {video.codec!r}"
            )
        self._room = room
        self.audio_spec = audio
        self.video_spec = video
        self.audio_source: rtc.AudioSource | None = None
        self.video_source: rtc.VideoSource | None = None
        self.sync: rtc.AVSynchronizer | None = None
        self.publications: list[rtc.LocalTrackPublication] = []
        self.video_frames = 0
        self.audio_seconds = 0.0
        self._pace_origin: float | None = None

    async def start(self) -> None:
        """Create the sources and publish the tracks."""
        lp = self._room.local_participant
        if self.audio_spec is not None:
            spec = self.audio_spec
            self.audio_source = rtc.AudioSource(
                spec.sample_rate, spec.num_channels, queue_size_ms=200
            )
            track = rtc.LocalAudioTrack.create_audio_track(spec.name, self.audio_source)
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            self.publications.append(await lp.publish_track(track, options))
        if self.video_spec is not None:
            v = self.video_spec
            self.video_source = rtc.VideoSource(v.width, v.height)
            track_v = rtc.LocalVideoTrack.create_video_track(v.name, self.video_source)
            options = rtc.TrackPublishOptions(
                source=rtc.TrackSource.SOURCE_CAMERA,
                video_codec=_CODECS[v.codec],
                simulcast=v.simulcast,
            )
            if v.max_bitrate:
                options.video_encoding.max_bitrate = v.max_bitrate
                options.video_encoding.max_framerate = v.fps
            self.publications.append(await lp.publish_track(track_v, options))
        if self.audio_source is not None and self.video_source is not None:
            assert self.video_spec is not None
            self.sync = rtc.AVSynchronizer(
                audio_source=self.audio_source,
                video_source=self.video_source,
                video_fps=self.video_spec.fps,
            )

    async def push_video(self, frame: rtc.VideoFrame, time: float) -> None:
        """Send a picture whose media time is ``time`` seconds."""
        if self.video_source is None:
            return
        if self.sync is not None:
            await self.sync.push(frame, time)
        else:
            loop = asyncio.get_running_loop()
            if self._pace_origin is None:
                self._pace_origin = loop.time() - time
            delay = self._pace_origin + time - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.5:  # far behind (a slow machine): start the schedule over
                self._pace_origin = loop.time() - time
            self.video_source.capture_frame(frame)
        self.video_frames += 1

    async def push_audio(self, frame: rtc.AudioFrame, end_time: float) -> None:
        """Send audio that ends at media time ``end_time`` seconds."""
        if self.audio_source is None:
            return
        if self.sync is not None:
            await self.sync.push(frame, end_time)
        else:
            await self.audio_source.capture_frame(frame)
        self.audio_seconds += frame.samples_per_channel / frame.sample_rate

    @property
    def av_offset(self) -> float | None:
        """How far the video sent is ahead of the audio played, in seconds (None: no sync)."""
        if self.sync is None or self.video_frames == 0:
            return None
        return self.sync.last_video_time - self.sync.last_audio_time

    @property
    def actual_fps(self) -> float | None:
        return self.sync.actual_fps if self.sync is not None else None

    async def wait_for_playout(self) -> None:
        """Wait until what was pushed is sent."""
        if self.sync is not None:
            await self.sync.wait_for_playout()
        elif self.audio_source is not None:
            await self.audio_source.wait_for_playout()

    async def aclose(self) -> None:
        """Stop sending (queued media is dropped) and close the sources."""
        if self.sync is not None:
            await self.sync.aclose()
        for source in (self.audio_source, self.video_source):
            if source is not None:
                with contextlib.suppress(Exception):
                    await source.aclose()
