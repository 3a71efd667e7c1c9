"""Publish a video file (its picture and, when it has one, its sound) into a room.

    python examples/publish_video.py clip.mp4 --room my-room
    python examples/publish_video.py clip.webm --loop --codec h264

PyAV decodes any container and codec FFmpeg reads; decoding runs in a worker thread so
the event loop stays free. With sound, ``AVSynchronizer`` keeps the picture in step with
the audio; without, the frames are paced by the clock at the file's frame rate.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from _common import connect, parser, run, say

from livekit_py import rtc

AUDIO_RATE = 48000
CODECS = {"vp8": rtc.VideoCodec.VP8, "h264": rtc.VideoCodec.H264}

Media = rtc.VideoFrame | rtc.AudioFrame


def to_video_frame(frame: av.VideoFrame) -> rtc.VideoFrame:
    """A decoded picture as an ``rtc.VideoFrame`` (I420 when it is 4:2:0 already)."""
    width, height = frame.width, frame.height
    if frame.format.name == "yuv420p" and width % 2 == 0 and height % 2 == 0:
        # PyAV drops the row padding: Y, then U, then V, exactly the I420 layout
        planes = frame.to_ndarray()
        return rtc.VideoFrame(width, height, rtc.VideoBufferType.I420, planes.tobytes())
    rgba = frame.to_ndarray(format="rgba")
    return rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, rgba.tobytes())


def to_audio_frame(frame: av.AudioFrame, channels: int) -> rtc.AudioFrame:
    samples = np.ascontiguousarray(frame.to_ndarray(), dtype=np.int16)  # packed s16
    return rtc.AudioFrame(samples.tobytes(), AUDIO_RATE, channels, frame.samples)


def decode(path: Path, *, loop: bool, with_audio: bool, channels: int) -> Iterator[Media]:
    """The file's pictures and sound in the order they are stored (again and again)."""
    layout = "mono" if channels == 1 else "stereo"
    while True:
        with av.open(str(path)) as container:
            streams: list[av.stream.Stream] = [container.streams.video[0]]
            if with_audio and container.streams.audio:
                streams.append(container.streams.audio[0])
            resampler = av.AudioResampler(format="s16", layout=layout, rate=AUDIO_RATE)
            for packet in container.demux(*streams):
                for frame in packet.decode():
                    if isinstance(frame, av.VideoFrame):
                        yield to_video_frame(frame)
                    elif isinstance(frame, av.AudioFrame):
                        for out in resampler.resample(frame):
                            yield to_audio_frame(out, channels)
        if not loop:
            return


def probe(path: Path) -> tuple[int, int, Fraction, bool, str]:
    """(width, height, frame rate, has sound, description) of a video file."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise SystemExit(f"{path} has no video stream")
        video = container.streams.video[0]
        rate = video.average_rate or video.guessed_rate or Fraction(30)
        has_audio = bool(container.streams.audio)
        what = f"{video.codec_context.name} {video.width}x{video.height} at {float(rate):.3g} fps"
        if has_audio:
            what += f", sound: {container.streams.audio[0].codec_context.name}"
        return video.width, video.height, Fraction(rate), has_audio, what


async def main(args: argparse.Namespace, stop: asyncio.Event) -> None:
    width, height, fps, has_audio, what = probe(args.file)
    with_audio = has_audio and not args.no_audio
    room = rtc.Room()
    await connect(room, args, name="Video player")

    video_source = rtc.VideoSource(width, height)
    video_track = rtc.LocalVideoTrack.create_video_track("video", video_source)
    options = rtc.TrackPublishOptions(
        source=rtc.TrackSource.SOURCE_CAMERA, video_codec=CODECS[args.codec]
    )
    await room.local_participant.publish_track(video_track, options)
    audio_source = None
    sync = None
    if with_audio:
        audio_source = rtc.AudioSource(AUDIO_RATE, args.channels)
        audio_track = rtc.LocalAudioTrack.create_audio_track("audio", audio_source)
        await room.local_participant.publish_track(
            audio_track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        sync = rtc.AVSynchronizer(
            audio_source=audio_source, video_source=video_source, video_fps=float(fps)
        )
    say(f"publishing {args.file.name}: {what}{' (looping)' if args.loop else ''}")

    frames = decode(args.file, loop=args.loop, with_audio=with_audio, channels=args.channels)

    async def send() -> None:
        loop = asyncio.get_running_loop()
        start, shown = loop.time(), 0
        while True:
            # decode the next frame in a worker thread, one at a time
            frame = await asyncio.to_thread(next, frames, None)
            if frame is None:
                break
            if sync is not None:
                await sync.push(frame)
            elif isinstance(frame, rtc.VideoFrame):
                # no sound to keep time: show frame n at start + n / fps
                await asyncio.sleep(max(0.0, start + shown / float(fps) - loop.time()))
                video_source.capture_frame(frame)
                shown += 1
        if sync is not None:
            await sync.wait_for_playout()

    sender = asyncio.create_task(send())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({sender, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if sender.done():
        sender.result()
        say("played the whole file")
    sender.cancel()
    stopped.cancel()
    if sync is not None:
        await sync.aclose()
    await room.disconnect()
    await video_source.aclose()
    if audio_source is not None:
        await audio_source.aclose()
    say("left the room")


if __name__ == "__main__":
    cli = parser((__doc__ or "").splitlines()[0], identity="video-player")
    cli.add_argument("file", type=Path, help="a video file (any container PyAV reads)")
    cli.add_argument("--loop", action="store_true", help="play the file again and again")
    cli.add_argument("--codec", choices=sorted(CODECS), default="vp8", help="video codec")
    cli.add_argument("--no-audio", action="store_true", help="publish the picture only")
    cli.add_argument(
        "--channels", type=int, choices=(1, 2), default=2, help="channels of the sound"
    )
    run(cli.parse_args(), main)
