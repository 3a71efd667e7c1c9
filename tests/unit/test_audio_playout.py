"""The audio playout: diverted RTP in, continuous decoded frames out, on a fake clock."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from livekit_py.media import libopus
from livekit_py.webrtc.audio_playout import AudioPlayout

from .fake_clock import FakeClock

pytestmark = pytest.mark.skipif(not libopus.available, reason=libopus.reason)

RATE = 48_000
FRAME = 960  # 20 ms


def _tone_packets(count: int, *, fec: bool = False) -> list[bytes]:
    encoder = libopus.OpusEncoder(RATE, 2, libopus.APPLICATION_VOIP)
    if fec:
        encoder.inband_fec = 1
        encoder.packet_loss_percent = 10
    t = np.arange(count * FRAME) / RATE
    tone = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    stereo = np.repeat(tone[:, None], 2, axis=1)
    return [encoder.encode(stereo[i * FRAME : (i + 1) * FRAME], FRAME) for i in range(count)]


def _packet(seq: int, payload: bytes, ssrc: int = 1234) -> RtpPacket:
    return RtpPacket(
        payload_type=111,
        sequence_number=seq & 0xFFFF,
        timestamp=(seq * FRAME) & 0xFFFFFFFF,
        ssrc=ssrc,
        payload=payload,
    )


async def _collect(playout: AudioPlayout, out: list[object]) -> None:
    try:
        while True:
            out.append(await playout.track.recv())
    except MediaStreamError:
        pass


def _samples(frames: list[object]) -> np.ndarray:
    return np.concatenate([f.to_ndarray().reshape(-1, 2) for f in frames])  # type: ignore[attr-defined]


def _level_db(pcm: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))
    return 20 * np.log10(max(rms, 1e-9) / 32768)


async def _run(
    packets: list[bytes],
    lost: set[int] = frozenset(),
    late_by: float = 0.0,  # type: ignore[assignment]
) -> tuple[AudioPlayout, list[object]]:
    clock = FakeClock()
    playout = AudioPlayout(clock=clock)
    frames: list[object] = []
    reader = asyncio.ensure_future(_collect(playout, frames))
    for seq, payload in enumerate(packets):
        if seq not in lost:
            playout.on_packet(_packet(seq, payload))
        await clock.advance(0.02)
    await clock.advance(0.2)
    playout.close()
    await asyncio.wait_for(reader, 5)
    return playout, frames


async def test_frames_come_out_continuous_and_in_order() -> None:
    playout, frames = await _run(_tone_packets(50))
    pts = [f.pts for f in frames]  # type: ignore[attr-defined]
    sizes = [f.samples for f in frames]  # type: ignore[attr-defined]
    assert pts == [sum(sizes[:i]) for i in range(len(sizes))]  # no gap, no overlap
    assert all(f.sample_rate == RATE for f in frames)  # type: ignore[attr-defined]
    stats = playout.stats()
    assert stats.packets_played == 50 and stats.packets_lost == 0
    tone = _samples(frames)
    expected = _level_db(np.full(1, 0.3 * 32767 / 2**0.5))
    assert abs(_level_db(tone[tone.shape[0] // 4 :]) - expected) < 3


async def test_a_lost_packet_is_rebuilt_from_the_next_ones_fec() -> None:
    playout, frames = await _run(_tone_packets(50, fec=True), lost={20})
    stats = playout.stats()
    assert stats.packets_lost == 1 and stats.fec_recovered == 1
    assert stats.packets_played == 49
    # no hole: every 20 ms after the start carries the tone
    pcm = _samples(frames)
    start = next(i for i in range(0, pcm.shape[0], FRAME) if abs(pcm[i : i + FRAME]).max() > 1000)
    blocks = [pcm[i : i + FRAME] for i in range(start + FRAME, pcm.shape[0] - 12 * FRAME, FRAME)]
    assert min(_level_db(b) for b in blocks) > -20


async def test_a_burst_of_loss_is_concealed_then_faded_to_silence() -> None:
    playout, frames = await _run(_tone_packets(60), lost=set(range(20, 40)))
    stats = playout.stats()
    assert stats.packets_lost == 20 and stats.concealed_samples > 0
    pts = [f.pts for f in frames]  # type: ignore[attr-defined]
    sizes = [f.samples for f in frames]  # type: ignore[attr-defined]
    assert pts == [sum(sizes[:i]) for i in range(len(sizes))]


async def test_a_late_reader_gets_every_due_frame_at_once() -> None:
    clock = FakeClock()
    playout = AudioPlayout(clock=clock)
    packets = _tone_packets(30)
    frames: list[object] = []
    reader = asyncio.ensure_future(_collect(playout, frames))
    for seq in range(10):
        playout.on_packet(_packet(seq, packets[seq]))
        await clock.advance(0.02)
    before = len(frames)
    # the loop is blocked 200 ms: packets pile up in the socket, then arrive together
    for seq in range(10, 20):
        playout.on_packet(_packet(seq, packets[seq]))
    await clock.jump(0.2)
    await clock.settle()
    assert len(frames) > before
    for seq in range(20, 30):
        playout.on_packet(_packet(seq, packets[seq]))
        await clock.advance(0.02)
    await clock.advance(0.3)
    playout.close()
    await asyncio.wait_for(reader, 5)
    assert playout.stats().packets_played == 30  # nothing cut out


async def test_a_new_ssrc_starts_a_new_stream() -> None:
    clock = FakeClock()
    playout = AudioPlayout(clock=clock)
    packets = _tone_packets(20)
    frames: list[object] = []
    reader = asyncio.ensure_future(_collect(playout, frames))
    for seq in range(10):
        playout.on_packet(_packet(seq, packets[seq]))
        await clock.advance(0.02)
    for seq in range(10, 20):
        playout.on_packet(_packet(seq + 5000, packets[seq], ssrc=99))
        await clock.advance(0.02)
    await clock.advance(0.3)
    playout.close()
    await asyncio.wait_for(reader, 5)
    stats = playout.stats()
    assert stats.stream_resets == 1
    # the new stream plays whole; of the old one, what was still buffered at the switch goes
    assert stats.packets_played + stats.packets_discarded == 20 and stats.packets_discarded <= 2


async def test_close_ends_a_waiting_reader() -> None:
    playout = AudioPlayout(clock=FakeClock())
    frames: list[object] = []
    reader = asyncio.ensure_future(_collect(playout, frames))
    await asyncio.sleep(0)
    playout.close()
    await asyncio.wait_for(reader, 5)
    assert frames == [] and playout.track.readyState == "ended"
    with pytest.raises(MediaStreamError):
        await playout.track.recv()


# ---------------------------------------------------------------------- end-to-end encryption


async def _run_encrypted(
    packets: list[bytes], decrypt: object
) -> tuple[AudioPlayout, list[object]]:
    clock = FakeClock()
    playout = AudioPlayout(clock=clock, decrypt=decrypt)  # type: ignore[arg-type]
    frames: list[object] = []
    reader = asyncio.ensure_future(_collect(playout, frames))
    for seq, payload in enumerate(packets):
        playout.on_packet(_packet(seq, payload))
        await clock.advance(0.02)
    await clock.advance(0.2)
    playout.close()
    await asyncio.wait_for(reader, 5)
    return playout, frames


def _sealed(packets: list[bytes]) -> list[bytes]:
    """Each packet 'encrypted': its TOC byte in clear, the rest reversed behind a marker."""
    return [p[:1] + b"ENC" + p[1:][::-1] for p in packets]


def _open(payload: bytes) -> bytes | None:
    if payload[1:4] != b"ENC":
        return None
    return payload[:1] + payload[4:][::-1]


async def test_decrypted_packets_are_played() -> None:
    playout, frames = await _run_encrypted(_sealed(_tone_packets(50)), _open)
    assert playout.stats().packets_played == 50 and playout.packets_undecrypted == 0
    tone = _samples(frames)
    assert _level_db(tone[tone.shape[0] // 4 :]) > -20


async def test_packets_that_do_not_decrypt_play_as_lost_and_fade_to_silence() -> None:
    """A wrong key: continuous output (as the official SDK's), silence after the fade."""
    playout, frames = await _run_encrypted(_tone_packets(50), _open)  # never 'encrypted'
    assert playout.packets_undecrypted == 50
    pcm = _samples(frames)
    assert pcm.shape[0] >= 45 * FRAME  # the clock ran: 20 ms per packet
    assert not pcm.any()  # nothing was decoded from them
    pts = [f.pts for f in frames]  # type: ignore[attr-defined]
    sizes = [f.samples for f in frames]  # type: ignore[attr-defined]
    assert pts == [sum(sizes[:i]) for i in range(len(sizes))]


async def test_a_few_undecryptable_packets_mid_stream_are_concealed() -> None:
    packets = _sealed(_tone_packets(60))
    for seq in range(20, 23):  # a key change the receiver catches up with
        packets[seq] = _tone_packets(60)[seq]
    playout, frames = await _run_encrypted(packets, _open)
    assert playout.packets_undecrypted == 3
    pcm = _samples(frames)
    start = next(i for i in range(0, pcm.shape[0], FRAME) if abs(pcm[i : i + FRAME]).max() > 1000)
    blocks = [pcm[i : i + FRAME] for i in range(start + FRAME, pcm.shape[0] - 12 * FRAME, FRAME)]
    assert min(_level_db(b) for b in blocks) > -40  # concealed, not a hole of silence
