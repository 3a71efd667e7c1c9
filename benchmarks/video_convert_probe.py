"""Rough speed check of VideoFrame.convert against the official SDK (not a test).

Times 1920x1080 RGBA -> I420 and I420 -> RGBA, ours and the official ``livekit.rtc``
(libyuv behind its FFI), on the same random picture, and prints the best and median
milliseconds of each. Run with ``PYTHONPATH=src python benchmarks/video_convert_probe.py``;
pass ``--width/--height/--repeat`` to change the workload.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from livekit_py.rtc.video_frame import VideoFrame
from livekit_py.types import VideoBufferType


def _timings(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    fn()  # warm up (allocations, caches)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return min(samples), statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    w, h = args.width, args.height

    rgba = np.random.default_rng(0).integers(0, 256, w * h * 4, dtype=np.uint8).tobytes()
    ours_rgba = VideoFrame(w, h, VideoBufferType.RGBA, rgba)
    ours_i420 = ours_rgba.convert(VideoBufferType.I420)
    cases: list[tuple[str, Callable[[], object]]] = [
        ("ours     RGBA -> I420", lambda: ours_rgba.convert(VideoBufferType.I420)),
        ("ours     I420 -> RGBA", lambda: ours_i420.convert(VideoBufferType.RGBA)),
    ]
    try:
        from livekit import rtc
    except ImportError:
        print("official SDK (livekit) not installed: timing ours only")
    else:
        off_rgba = rtc.VideoFrame(w, h, rtc.VideoBufferType.RGBA, bytearray(rgba))
        off_i420 = off_rgba.convert(rtc.VideoBufferType.I420)
        cases += [
            ("official RGBA -> I420", lambda: off_rgba.convert(rtc.VideoBufferType.I420)),
            ("official I420 -> RGBA", lambda: off_i420.convert(rtc.VideoBufferType.RGBA)),
        ]
    print(f"{w}x{h}, {args.repeat} runs each")
    for name, fn in cases:
        best, median = _timings(fn, args.repeat)
        print(f"{name}: best {best:6.2f} ms   median {median:6.2f} ms")


if __name__ == "__main__":
    main()
