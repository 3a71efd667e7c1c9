"""``livekit-py load-test``: N simulated participants in one process, with live statistics.

Each participant is a :class:`rtc.Room` of its own (one asyncio task each, joined
``--ramp`` seconds apart) that publishes a tone of its own pitch and/or the test
pattern (:class:`livekit_py.cli.publishing.MediaPublisher`) and subscribes to the
others.  Every ``--interval`` seconds each one reads :meth:`rtc.Room.get_rtc_stats`
(:mod:`livekit_py.cli.load_stats`) and sends a probe data packet stamped with this
process's clock; the others time its arrival, which is the one-way latency through
the server.  A live table on standard error (a status line every few seconds when it
is not a terminal) shows it all; the summary goes to standard output at the end (a
table, or JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import time

from rich.live import Live
from rich.table import Table

from livekit_py import rtc

from .load_stats import ParticipantStats, summarize, traffic
from .pattern import TestPattern, Tone, samples_in_frame
from .publishing import AudioSpec, MediaPublisher, VideoSpec
from .runtime import Consoles, run_command, setup_logging
from .settings import Connection, UsageError, connection_from_args

__all__ = ["PROBE_TOPIC", "render_table", "run"]

PROBE_TOPIC = "lk.load-test"


def _kbps(bps: float) -> str:
    return f"{bps / 1000:.0f}"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def render_table(participants: list[ParticipantStats], elapsed: float, title: str) -> Table:
    """The live table: one row per participant and a total."""
    table = Table(title=title, caption=f"{elapsed:.0f} s", expand=False)
    table.add_column("participant")
    table.add_column("state")
    for name in (
        "pub/sub",
        "pkts sent",
        "pkts recv",
        "lost",
        "tx kbps",
        "rx kbps",
        "rtt ms",
        "latency ms",
    ):
        table.add_column(name, justify="right")
    colours = {"joined": "green", "failed": "red", "joining": "yellow"}
    for p in participants:
        t = p.traffic
        state = f"[{colours.get(p.state, 'white')}]{p.state}[/]"
        table.add_row(
            p.identity,
            state,
            f"{p.published}/{p.subscribed}",
            str(t.packets_sent),
            str(t.packets_received),
            str(t.packets_lost),
            _kbps(p.tx_bps),
            _kbps(p.rx_bps),
            _ms(t.rtt),
            _ms(p.latency),
        )
    joined = sum(1 for p in participants if p.state == "joined")
    table.add_section()
    table.add_row(
        "[bold]total[/]",
        f"{joined}/{len(participants)} joined",
        f"{sum(p.published for p in participants)}/{sum(p.subscribed for p in participants)}",
        str(sum(p.traffic.packets_sent for p in participants)),
        str(sum(p.traffic.packets_received for p in participants)),
        str(sum(p.traffic.packets_lost for p in participants)),
        _kbps(sum(p.tx_bps for p in participants)),
        _kbps(sum(p.rx_bps for p in participants)),
        "",
        "",
    )
    return table


def summary_table(summary: dict[str, object]) -> Table:
    """The summary as a two-column table."""
    table = Table(title="load test summary", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        if isinstance(value, dict):
            shown = ", ".join(f"{k} {v}" for k, v in value.items() if v is not None) or "-"
        elif isinstance(value, list):
            shown = "; ".join(str(v) for v in value) or "none"
        else:
            shown = str(value)
        table.add_row(key.replace("_", " "), shown)
    return table


class _Simulated:
    """One participant: join, publish, probe, read statistics, leave."""

    def __init__(
        self,
        index: int,
        stats: ParticipantStats,
        args: argparse.Namespace,
        conn: Connection,
        room_name: str,
        run_id: str,
    ) -> None:
        self.index = index
        self.stats = stats
        self.args = args
        self.conn = conn
        self.room_name = room_name
        self.run_id = run_id
        self.room = rtc.Room()
        self.publisher: MediaPublisher | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self._wire()

    def _wire(self) -> None:
        @self.room.on("data_received")
        def _data(packet: rtc.DataPacket) -> None:
            if packet.topic != PROBE_TOPIC:
                return
            try:
                probe = json.loads(packet.data)
                if probe.get("run") == self.run_id:
                    self.stats.latencies.append(time.monotonic() - float(probe["t"]))
            except (ValueError, KeyError, TypeError):
                pass

        @self.room.on("track_subscribed")
        def _sub(*_: object) -> None:
            self.stats.subscribed += 1

        @self.room.on("track_unsubscribed")
        def _unsub(*_: object) -> None:
            self.stats.subscribed = max(0, self.stats.subscribed - 1)

        @self.room.on("disconnected")
        def _gone(reason: int) -> None:
            if self.stats.state == "joined":
                self.stats.state = "left"

    def _publishes(self) -> bool:
        limit = self.args.publishers
        return self.args.publish != "none" and (limit is None or self.index < limit)

    async def join(self) -> bool:
        loop = asyncio.get_running_loop()
        self.stats.state = "joining"
        started = loop.time()
        token = self.conn.token_for(self.stats.identity, self.room_name)
        try:
            await self.room.connect(
                self.conn.url, token, rtc.RoomOptions(auto_subscribe=not self.args.no_subscribe)
            )
        except Exception as exc:  # any failure is this participant's result, not the run's
            self.stats.state = "failed"
            self.stats.error = f"connect: {exc}"
            return False
        self.stats.join_time = loop.time() - started
        self.stats.state = "joined"
        if self._publishes():
            try:
                await self._publish()
            except Exception as exc:
                self.stats.error = f"publish: {exc}"
        self.tasks.append(loop.create_task(self._probe_and_measure()))
        return True

    async def _publish(self) -> None:
        kind = self.args.publish
        audio = (
            AudioSpec(48000, 1, name=f"tone-{self.index}") if kind in ("audio", "both") else None
        )
        video = None
        if kind in ("video", "both"):
            width, height = self.args.size
            video = VideoSpec(
                width,
                height,
                self.args.fps,
                self.args.codec,
                self.args.max_bitrate,
                self.args.simulcast,
                name=f"pattern-{self.index}",
            )
        self.publisher = MediaPublisher(self.room, audio=audio, video=video)
        await self.publisher.start()
        self.stats.published = len(self.publisher.publications)
        self.tasks.append(asyncio.get_running_loop().create_task(self._produce()))

    async def _produce(self) -> None:
        publisher = self.publisher
        assert publisher is not None
        spec = publisher.video_spec
        fps = spec.fps if spec is not None else 50.0
        pattern = TestPattern(spec.width, spec.height, fps) if spec is not None else None
        # a pitch of its own for each participant, 220 Hz to about 1 kHz
        tone = Tone(220.0 + 40.0 * (self.index % 20)) if publisher.audio_spec else None
        index = 0
        while True:
            t = index / fps
            if pattern is not None:
                await publisher.push_video(pattern.frame(index), t)
            if tone is not None:
                samples = samples_in_frame(index, 48000, fps)
                await publisher.push_audio(tone.frame(samples), t + samples / 48000)
            index += 1

    async def _probe_and_measure(self) -> None:
        loop = asyncio.get_running_loop()
        seq = 0
        while True:
            await asyncio.sleep(self.args.interval)
            if not self.room.isconnected():
                continue
            probe = {
                "run": self.run_id,
                "from": self.stats.identity,
                "seq": seq,
                "t": time.monotonic(),
            }
            seq += 1
            with contextlib.suppress(Exception):
                await self.room.local_participant.publish_data(json.dumps(probe), topic=PROBE_TOPIC)
                self.stats.probes_sent += 1
            try:
                rtc_stats = await self.room.get_rtc_stats()
            except Exception:
                continue
            reading = traffic(rtc_stats.publisher_stats, rtc_stats.subscriber_stats)
            self.stats.update(loop.time(), reading)

    async def leave(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.publisher is not None:
            with contextlib.suppress(Exception):
                await self.publisher.aclose()
        with contextlib.suppress(Exception):
            await self.room.disconnect()
        if self.stats.state == "joined":
            self.stats.state = "left"


async def _session(args: argparse.Namespace, env: dict[str, str], stop: asyncio.Event) -> int:
    consoles = Consoles(no_color=args.no_color)
    setup_logging(args.verbose, consoles.err)
    conn = connection_from_args(args, env, with_token=False)
    if not conn.api_key or not conn.api_secret:
        raise UsageError(
            "load-test makes a token per participant: pass --api-key and --api-secret (or set"
            " LIVEKIT_API_KEY and LIVEKIT_API_SECRET, or --dev)"
        )
    if args.publishers is not None and args.publishers < 0:
        raise UsageError(f"--publishers must be 0 or more, got {args.publishers}")
    room_name = args.room or f"load-test-{secrets.token_hex(3)}"
    prefix = args.identity or args.identity_prefix
    run_id = secrets.token_hex(4)
    stats = [ParticipantStats(f"{prefix}-{i}") for i in range(args.participants)]
    simulated = [_Simulated(i, s, args, conn, room_name, run_id) for i, s in enumerate(stats)]
    loop = asyncio.get_running_loop()
    title = f"load test: {args.participants} in room {room_name}"
    live = Live(
        render_table(stats, 0.0, title),
        console=consoles.err,
        refresh_per_second=2,
        transient=False,
        auto_refresh=consoles.err.is_terminal,
    )
    started = loop.time()
    measured_from: float | None = None
    last_line = 0.0

    def refresh() -> None:
        nonlocal last_line
        now = loop.time()
        if consoles.err.is_terminal:
            live.update(render_table(stats, now - started, title))
        elif now - last_line >= 5.0:
            last_line = now
            joined = sum(1 for s in stats if s.state == "joined")
            consoles.status(
                f"{now - started:5.0f} s  joined {joined}/{len(stats)}"
                f"  sent {sum(s.traffic.packets_sent for s in stats)}"
                f"  received {sum(s.traffic.packets_received for s in stats)} packets"
            )

    try:
        with live if consoles.err.is_terminal else contextlib.nullcontext():
            joins = []
            for sim in simulated:
                if stop.is_set():
                    break
                joins.append(loop.create_task(sim.join()))
                refresh()
                if args.ramp > 0:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), args.ramp)
            if joins:
                await asyncio.gather(*joins)
            measured_from = loop.time()
            deadline = measured_from + args.duration
            while not stop.is_set() and loop.time() < deadline:
                refresh()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), min(0.5, max(0.0, deadline - loop.time())))
            refresh()
    finally:
        await asyncio.gather(*(sim.leave() for sim in simulated))
    ran = loop.time() - (measured_from if measured_from is not None else started)
    summary = summarize(stats, room=room_name, duration=ran)
    if args.json:
        consoles.line(json.dumps(summary, indent=2))
    else:
        consoles.out.print(summary_table(summary))
    return 0 if summary["joined"] == len(stats) else 1


def run(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Run ``load-test``; the exit status (1 if a participant could not join)."""
    return run_command(lambda stop: _session(args, env, stop))
