"""Rough cost check of the audio encoders of a published track (not a test).

Encodes the 20 ms frames an ``AudioSourceTrack`` hands aiortc (s16 stereo at the source
rate) with our libopus encoder (``webrtc.opus.OpusEncoder``: without and with FEC and
DTX) and with the PyAV one it replaces (``PyAVOpusEncoder``, aiortc's), and prints the
CPU time per 20 ms frame (best and median of several runs) and, for 5 s of silence, how
many packets and bytes per second (payload, and on the wire with RTP/SRTP/UDP/IPv4
headers) each would send. Run with
``PYTHONPATH=src python benchmarks/opus_encode_probe.py``; ``--rate`` sets the source
rate, ``--seconds`` the length of the tone encoded per run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import av
import numpy as np

from livekit_py.webrtc.opus import OpusEncoder, PyAVOpusEncoder

Factory = Callable[[], "OpusEncoder | PyAVOpusEncoder"]

# bytes around each payload on the wire: IPv4 20 + UDP 8 + RTP 12 + header extensions
# (abs-send-time, mid, audio level) ~16 + SRTP auth tag 10
_PACKET_OVERHEAD = 66


def _frames(signal: np.ndarray, rate: int) -> list[av.AudioFrame]:
    step = rate // 50
    out = []
    for i, start in enumerate(range(0, len(signal) - step + 1, step)):
        block = np.repeat(signal[start : start + step], 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(block, format="s16", layout="stereo")
        frame.sample_rate = rate
        frame.pts = i * step
        out.append(frame)
    return out


def _cpu_per_frame(make: Factory, frames: list[av.AudioFrame], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        encoder = make()
        start = time.process_time()
        for frame in frames:
            encoder.encode(frame)
        samples.append((time.process_time() - start) * 1e3 / len(frames))
    return min(samples), statistics.median(samples)


def _silence_rates(make: Factory, rate: int, sound: np.ndarray) -> tuple[float, float]:
    """Packets and payload bytes per second during 5 s of silence after ``sound``."""
    encoder = make()
    packets = size = 0
    silence = np.zeros(5 * rate, np.int16)
    for i, frame in enumerate(_frames(np.concatenate([sound, silence]), rate)):
        payloads, _ = encoder.encode(frame)
        if i >= len(sound) // (rate // 50):
            packets += len(payloads)
            size += sum(len(p) for p in payloads)
    return packets / 5.0, size / 5.0


def _ours(fec: bool, dtx: bool, loss: int) -> Factory:
    def make() -> OpusEncoder:
        return OpusEncoder(fec=fec, dtx=dtx, packet_loss_percent=loss)

    return make


def _voiced(seconds: float, rate: int) -> np.ndarray:
    """A speech-like signal: 14 harmonics of a gliding pitch, in syllable-like bursts."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(140 + 60 * np.sin(2 * np.pi * 2.5 * t)) / rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 15))
    wave = wave * np.abs(np.sin(2 * np.pi * 3 * t))
    return (0.3 * 32767 * wave / np.max(np.abs(wave))).astype(np.int16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=48000)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--signal", choices=("tone", "voiced"), default="tone")
    args = parser.parse_args()
    rate = args.rate
    t = np.arange(int(args.seconds * rate)) / rate
    if args.signal == "tone":
        signal = (0.5 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    else:
        signal = _voiced(args.seconds, rate)
    frames = _frames(signal, rate)
    cases: list[tuple[str, Factory]] = [
        ("PyAV (aiortc's, today's)", PyAVOpusEncoder),
        ("libopus", _ours(False, False, 0)),
        ("libopus + DTX", _ours(False, True, 0)),
        ("libopus + FEC, 0% loss", _ours(True, True, 0)),
        ("libopus + FEC, 5% loss", _ours(True, True, 5)),
        ("libopus + FEC, 20% loss", _ours(True, True, 20)),
    ]
    print(f"{args.signal} at {rate} Hz, {len(frames)} frames of 20 ms per run, {args.runs} runs")
    print(
        f"{'encoder':28} {'CPU ms/frame best':>18} {'median':>8} {'silence pkt/s':>14}"
        f" {'B/s':>7} {'wire B/s':>8}"
    )
    for name, make in cases:
        best, median = _cpu_per_frame(make, frames, args.runs)
        packets, size = _silence_rates(make, rate, signal)
        wire = size + packets * _PACKET_OVERHEAD
        print(f"{name:28} {best:18.3f} {median:8.3f} {packets:14.1f} {size:7.0f} {wire:8.0f}")


if __name__ == "__main__":
    main()
