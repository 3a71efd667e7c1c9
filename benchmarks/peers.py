"""Peers: the other participant of a scenario, in a process of its own.

A scenario that measures one process's CPU or memory keeps the other end of the
call out of that process. It starts a peer with ``ctx.start_peer(role, ...)``;
the peer joins the same room, prints ``@@BENCH {"ready": true}`` and then answers
one JSON line per JSON command read from stdin. It leaves when stdin closes (its
parent is done or gone) or when its budget runs out.

Roles:

``audio_pair``
    Publishes a 48 kHz sine as a microphone and listens to every audio track it is
    subscribed to. ``{"cmd": "stats"}`` answers how much audio it has heard.
``audio_feeder``
    Publishes sine tracks on demand: ``{"cmd": "tracks", "n": N}`` publishes until
    there are N and answers when they are all published.
``video_sink``
    Subscribes to the first video track and reads the time stamp painted into every
    frame (see ``benchmarks.scenarios.video``). ``{"cmd": "wait_frames", "count": N}``
    answers once N frames have arrived; ``{"cmd": "window_start"}`` and
    ``{"cmd": "window_stop"}`` bracket a measurement, and the latter answers with the
    frames, latencies and CPU time of the window; with ``"score": true`` in
    ``window_start`` also the PSNR and SSIM of the luma of some received 1280x720
    pictures against the pictures sent (scored after the CPU time was read).
    ``{"cmd": "quality", "quality": Q, "width": W}`` asks the server for the simulcast
    layer Q (``set_video_quality``) and answers once a frame W pixels wide has arrived
    (or the timeout passed);
    ``{"cmd": "publication"}`` answers whether the track is simulcast. With ``e2ee_key``
    (hex) it joins with end-to-end encryption and that shared key.
``media_sink``
    Subscribes to a publisher's audio and video and reports what arrived over a window
    (see ``benchmarks.scenarios.loaded``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from benchmarks.common import (
    PROTOCOL_PREFIX,
    Context,
    Result,
    cpu_seconds,
    drain_audio,
    load_rtc,
    publish_audio,
    spawn,
    wait_remote_track,
)

Commands = asyncio.Queue[dict[str, Any] | None]

# video_sink with window_start {"score": true}: every 4th received picture, up to 24
_SCORE_EVERY = 4
_SCORE_MAX = 24


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(PROTOCOL_PREFIX + json.dumps(message) + "\n")
    sys.stdout.flush()


def _read_stdin(loop: asyncio.AbstractEventLoop, queue: Commands) -> None:
    for line in sys.stdin:
        line = line.strip()
        if line:
            loop.call_soon_threadsafe(queue.put_nowait, json.loads(line))
    loop.call_soon_threadsafe(queue.put_nowait, None)


async def audio_pair(ctx: Context, params: dict[str, Any], commands: Commands) -> None:
    rtc = ctx.rtc
    room = await ctx.connect(params.get("identity", "peer"))
    await publish_audio(ctx, room, "peer-voice", float(params.get("freq", 330.0)))
    heard = {"samples": 0}

    def count(frame: Any) -> None:
        heard["samples"] += frame.samples_per_channel

    streams: set[int] = set()

    def on_track(track: Any, *_: Any) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO and id(track) not in streams:
            streams.add(id(track))
            stream = rtc.AudioStream(track, sample_rate=48000, num_channels=1)
            ctx.closing(stream.aclose)
            spawn(ctx, drain_audio(stream, count))

    room.on("track_subscribed", on_track)
    for participant in list(room.remote_participants.values()):
        for pub in list(participant.track_publications.values()):
            if pub.track is not None:
                on_track(pub.track)
    emit({"ready": True})
    while (command := await commands.get()) is not None:
        if command.get("cmd") == "stats":
            emit({"heard_s": heard["samples"] / 48000, "cpu_s": cpu_seconds()})
        else:
            emit({"error": f"unknown command {command!r}"})


async def audio_feeder(ctx: Context, params: dict[str, Any], commands: Commands) -> None:
    room = await ctx.connect(params.get("identity", "feeder"))
    published = 0
    emit({"ready": True})
    while (command := await commands.get()) is not None:
        if command.get("cmd") != "tracks":
            emit({"error": f"unknown command {command!r}"})
            continue
        want = int(command["n"])
        while published < want:
            # distinct pitches, all well inside Opus's band
            await publish_audio(ctx, room, f"tone-{published}", 200.0 + 37.0 * published)
            published += 1
        emit({"tracks": published})


async def video_sink(ctx: Context, params: dict[str, Any], commands: Commands) -> None:
    from benchmarks.scenarios.video import (
        FPS,
        HEIGHT,
        WIDTH,
        _base_frames,
        read_stamp,
        sent_picture,
    )
    from benchmarks.video_quality import psnr, ssim

    rtc = ctx.rtc
    options = None
    if params.get("e2ee_key"):  # end-to-end encryption with this shared key (hex)
        from benchmarks.scenarios.e2ee import encryption_options

        options = encryption_options(rtc, bytes.fromhex(params["e2ee_key"]))
    room = await ctx.connect(params.get("identity", "viewer"), options)
    emit({"ready": True})
    track = await wait_remote_track(room, rtc.TrackKind.KIND_VIDEO, timeout=30)
    publication = next(
        pub
        for p in room.remote_participants.values()
        for pub in p.track_publications.values()
        if pub.track is track
    )
    stream = rtc.VideoStream(track, format=rtc.VideoBufferType.I420)
    ctx.closing(stream.aclose)
    state: dict[str, Any] = {
        "frames": 0,
        "window": False,
        "win_frames": 0,
        "latencies": [],
        "invalid": 0,
        "sizes": {},
        "score": False,
        "kept": [],  # (stamp, Y plane) of some received pictures, scored after the window
    }
    frame_arrived = asyncio.Event()

    async def read() -> None:
        async for event in stream:
            now_us = time.monotonic_ns() // 1000
            state["frames"] += 1
            state["width"] = event.frame.width
            frame_arrived.set()
            if not state["window"]:
                continue
            frame = event.frame
            state["win_frames"] += 1
            size = f"{frame.width}x{frame.height}"
            state["sizes"][size] = state["sizes"].get(size, 0) + 1
            stamp = read_stamp(frame)
            if stamp is None:
                state["invalid"] += 1
            else:
                state["latencies"].append(((now_us - stamp) & 0xFFFFFFFF) / 1000.0)
                kept = state["kept"]
                if (
                    (frame.width, frame.height) == (WIDTH, HEIGHT)
                    and state["score"]
                    and state["win_frames"] % _SCORE_EVERY == 0
                    and len(kept) < _SCORE_MAX
                ):
                    y = np.frombuffer(frame.data, np.uint8, count=WIDTH * HEIGHT)
                    kept.append((stamp, y.reshape(HEIGHT, WIDTH).copy()))

    def score() -> dict[str, Any]:
        kept = state["kept"]
        if not kept:
            return {"scored": 0}
        bases = _base_frames(FPS)
        psnrs = [psnr(sent_picture(bases, stamp), y) for stamp, y in kept]
        ssims = [ssim(sent_picture(bases, stamp), y) for stamp, y in kept]
        return {
            "scored": len(kept),
            "psnr_db": float(np.mean(psnrs)),
            "psnr_min_db": float(np.min(psnrs)),
            "ssim": float(np.mean(ssims)),
            "ssim_min": float(np.min(ssims)),
        }

    spawn(ctx, read())
    started = cpu0 = 0.0
    while (command := await commands.get()) is not None:
        cmd = command.get("cmd")
        if cmd == "wait_frames":
            deadline = time.monotonic() + float(command.get("timeout", 30))
            while state["frames"] < int(command["count"]) and time.monotonic() < deadline:
                frame_arrived.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(frame_arrived.wait(), 1.0)
            emit({"frames": state["frames"]})
        elif cmd == "quality":
            publication.set_video_quality(int(command["quality"]))
            asked = time.monotonic()
            deadline = asked + float(command.get("timeout", 20))
            while state.get("width") != int(command["width"]) and time.monotonic() < deadline:
                frame_arrived.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(frame_arrived.wait(), 1.0)
            emit({"width": state.get("width"), "after_s": time.monotonic() - asked})
        elif cmd == "publication":
            emit({"simulcasted": bool(publication.simulcasted)})
        elif cmd == "window_start":
            state.update(
                window=True,
                win_frames=0,
                latencies=[],
                invalid=0,
                sizes={},
                kept=[],
                score=bool(command.get("score")),
            )
            started, cpu0 = time.monotonic(), cpu_seconds()
            emit({"started": True})
        elif cmd == "window_stop":
            state["window"] = False
            elapsed, cpu = time.monotonic() - started, cpu_seconds() - cpu0
            quality = await asyncio.to_thread(score)  # after the CPU was read
            emit(
                {
                    **quality,
                    "elapsed_s": elapsed,
                    "cpu_s": cpu,
                    "frames": state["win_frames"],
                    "latencies_ms": state["latencies"],
                    "invalid": state["invalid"],
                    "sizes": state["sizes"],
                }
            )
        else:
            emit({"error": f"unknown command {command!r}"})


async def media_sink(ctx: Context, params: dict[str, Any], commands: Commands) -> None:
    from benchmarks.scenarios.loaded import media_sink as run

    await run(ctx, params, commands)


ROLES: dict[str, Callable[[Context, dict[str, Any], Commands], Awaitable[None]]] = {
    "audio_pair": audio_pair,
    "audio_feeder": audio_feeder,
    "video_sink": video_sink,
    "media_sink": media_sink,
}


async def _peer_main(args: argparse.Namespace) -> None:
    role = ROLES[args.peer]
    params = json.loads(args.params)
    commands: Commands = asyncio.Queue()
    threading.Thread(
        target=_read_stdin, args=(asyncio.get_running_loop(), commands), daemon=True
    ).start()
    stack = contextlib.AsyncExitStack()
    ctx = Context(
        sdk=args.sdk,
        rtc=load_rtc(args.sdk),
        url=args.url,
        quick=False,
        deadline=time.monotonic() + args.budget,
        stack=stack,
        result=Result(),
        room_name=args.room,
    )
    try:
        await asyncio.wait_for(role(ctx, params, commands), args.budget)
    except Exception as exc:  # told to the parent, which records it
        traceback.print_exc()
        emit({"error": f"{exc.__class__.__name__}: {exc}"})
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(stack.aclose(), 15)


def run_peer(args: argparse.Namespace) -> int:
    try:
        asyncio.run(_peer_main(args))
    except BaseException:
        traceback.print_exc()
        return 1
    return 0
