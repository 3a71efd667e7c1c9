"""Encoder CPU and picture quality of our video encoders on the video scenario's pictures.

Encodes the pictures of ``benchmarks.scenarios.video`` (1280x720, 30 fps, stamped as the
scenario stamps them) with our :class:`H264VideoEncoder` / :class:`Vp8VideoEncoder` at
the scenario's 2.5 Mbit/s cap, turns the RTP payloads back into frames, decodes them
with FFmpeg and prints, per codec: the CPU seconds per minute of video spent encoding
(all encoder threads), the bitrate produced, and the PSNR / SSIM of the decoded Y plane
against the sent one (mean and worst frame). Not a test; a tool to compare encoder
settings. Run with ``PYTHONPATH=src python -m benchmarks.video_quality_probe``;
``--x264-preset`` and ``--vpx-cpu-used`` try other settings than ours.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
import numpy as np
from aiortc.codecs.h264 import h264_depayload
from aiortc.codecs.vpx import vp8_depayload

from benchmarks.scenarios.video import FPS, HEIGHT, WIDTH, _base_frames, paint_stamp
from benchmarks.video_quality import psnr, ssim
from livekit_py.webrtc.video_codecs import H264VideoEncoder, Vp8VideoEncoder

BITRATE = 2_500_000


def _encoder(codec: str, x264_preset: str | None, vpx_cpu_used: int | None) -> Any:
    if codec == "h264":
        cls: type[Any] = H264VideoEncoder
        if x264_preset is not None:
            cls = type("ProbeH264", (H264VideoEncoder,), {"x264_preset": x264_preset})
        return cls(max_bitrate=BITRATE, max_framerate=float(FPS))
    cls = Vp8VideoEncoder
    if vpx_cpu_used is not None:
        cls = type("ProbeVp8", (Vp8VideoEncoder,), {"vpx_cpu_used": vpx_cpu_used})
    return cls(max_bitrate=BITRATE, max_framerate=float(FPS))


def run(codec: str, frames: int, x264_preset: str | None, vpx_cpu_used: int | None) -> None:
    """Encode, decode and score ``frames`` pictures; prints one line."""
    encoder = _encoder(codec, x264_preset, vpx_cpu_used)
    depayload: Callable[[bytes], bytes] = h264_depayload if codec == "h264" else vp8_depayload
    decoder = av.CodecContext.create("h264" if codec == "h264" else "vp8", "r")
    bases = _base_frames(FPS)
    encode_cpu = 0.0
    sent_bytes = 0
    psnrs: list[float] = []
    ssims: list[float] = []
    for k in range(frames):
        buf = bases[k % len(bases)].copy()
        paint_stamp(buf, (k * 7919) & 0xFFFFFFFF)
        frame = av.VideoFrame.from_ndarray(buf.reshape(HEIGHT * 3 // 2, WIDTH), format="yuv420p")
        frame.pts = k * 3000
        frame.time_base = Fraction(1, 90000)
        start = time.process_time()
        payloads, _ = encoder.encode(frame, k == 0)
        encode_cpu += time.process_time() - start
        data = b"".join(depayload(p) for p in payloads)
        sent_bytes += sum(len(p) for p in payloads)
        if not data:
            continue
        for decoded in decoder.decode(av.Packet(data)):
            plane = decoded.planes[0]
            rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
            got = rows[:HEIGHT, :WIDTH]
            sent = buf[: WIDTH * HEIGHT].reshape(HEIGHT, WIDTH)
            psnrs.append(psnr(sent, got))
            ssims.append(ssim(sent, got))
    seconds = frames / FPS
    setting = (
        f"preset={getattr(encoder, 'x264_preset', '?')}"
        if codec == "h264"
        else f"cpu-used={getattr(encoder, 'vpx_cpu_used', '?')}"
    )
    print(
        f"{codec:5} {setting:18} encode {encode_cpu / seconds * 60:6.1f} CPU s/min  "
        f"{sent_bytes * 8 / seconds / 1e6:5.2f} Mbit/s  "
        f"PSNR mean {statistics.fmean(psnrs):5.2f} min {min(psnrs):5.2f} dB  "
        f"SSIM mean {statistics.fmean(ssims):.4f} min {min(ssims):.4f}  "
        f"({len(psnrs)} frames decoded)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--codec", choices=("h264", "vp8", "both"), default="both")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--x264-preset", default=None, help="default: ours")
    parser.add_argument("--vpx-cpu-used", type=int, default=None, help="default: ours")
    args = parser.parse_args()
    codecs = ("h264", "vp8") if args.codec == "both" else (args.codec,)
    print(f"{WIDTH}x{HEIGHT} at {FPS} fps, {args.frames} frames, cap {BITRATE / 1e6} Mbit/s")
    for codec in codecs:
        run(codec, args.frames, args.x264_preset, args.vpx_cpu_used)


if __name__ == "__main__":
    main()
