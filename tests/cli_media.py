"""Small media files made with PyAV for the CLI's tests, and what to measure in them."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

RED = (200, 30, 30)
BLUE = (30, 30, 200)


def make_clip(
    path: Path,
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    seconds: float = 3.0,
    tone_hz: float = 440.0,
    video: bool = True,
    audio: bool = True,
) -> Path:
    """A clip with a red-left/blue-right picture and a sine tone, in ``path``'s container.

    .mp4: H.264 + AAC; .webm/.mkv: VP8 + Opus; .wav: PCM; .ogg: Opus.
    """
    ext = path.suffix.lower()
    codecs = {
        ".mp4": ("libx264", "aac"),
        ".webm": ("libvpx", "libopus"),
        ".mkv": ("libvpx", "libopus"),
        ".wav": (None, "pcm_s16le"),
        ".ogg": (None, "libopus"),
    }[ext]
    container = av.open(str(path), "w")
    vs = as_ = None
    if video and codecs[0] is not None:
        vs = container.add_stream(codecs[0], rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
    if audio:
        as_ = container.add_stream(codecs[1], rate=48000, layout="mono")
    if vs is not None:
        img = np.zeros((height, width, 3), np.uint8)
        img[:, : width // 2] = RED
        img[:, width // 2 :] = BLUE
        for i in range(round(fps * seconds)):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in vs.encode(frame):
                container.mux(packet)
        for packet in vs.encode(None):
            container.mux(packet)
    if as_ is not None:
        fmt = "fltp" if codecs[1] == "aac" else "s16"
        size = 1024 if codecs[1] == "aac" else 960
        resampler = av.AudioResampler(format=fmt, layout="mono", rate=48000, frame_size=size)
        n = np.arange(int(48000 * seconds))
        pcm = (np.sin(2 * np.pi * tone_hz * n / 48000) * 10000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, 0, Fraction(1, 48000)
        for out in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in as_.encode(out):
                container.mux(packet)
        for packet in as_.encode(None):
            container.mux(packet)
    container.close()
    return path


def read_back(path: Path) -> dict[str, object]:
    """What PyAV finds in a file: its streams, duration, decoded audio and pictures."""
    out: dict[str, object] = {}
    with av.open(str(path)) as container:
        out["duration"] = container.duration / 1_000_000 if container.duration else None
        out["streams"] = sorted(
            (s.type, s.codec_context.name)
            for s in container.streams
            if s.type in ("audio", "video")
        )
        pcm: list[np.ndarray] = []
        rate = 0
        pictures: list[np.ndarray] = []
        if container.streams.audio:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    pcm.append(converted.to_ndarray().reshape(-1))
            rate = 48000
        container.seek(0)
        if container.streams.video:
            for frame in container.decode(container.streams.video[0]):
                pictures.append(frame.to_ndarray(format="rgb24"))
        out["audio"] = np.concatenate(pcm) if pcm else np.zeros(0, np.int16)
        out["audio_rate"] = rate
        out["pictures"] = pictures
    return out


def dominant_frequency(pcm: np.ndarray, rate: int) -> float:
    """The strongest frequency of a signal (Hz)."""
    samples = pcm.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum[1:])) + 1])
