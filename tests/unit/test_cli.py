"""The command line without a server: parsing, settings, tokens, formatting, media plumbing."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import itertools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from livekit_py import rtc
from livekit_py.cli import app, events, load_stats, pattern, record, settings, tokens
from livekit_py.cli.media_file import Interleaver, MediaFileReader, MediaItem, probe
from livekit_py.cli.writers import FORMATS, AudioParams, FileWriter, VideoParams, format_for
from tests.cli_media import BLUE, RED, dominant_frequency, make_clip, read_back

API_KEY, API_SECRET = "devkey", "secret"


def parse(*argv: str) -> argparse.Namespace:
    return app.build_parser().parse_args(list(argv))


# -- parsing -----------------------------------------------------------------------------


def test_every_command_parses_its_options() -> None:
    args = parse("join", "-r", "room", "--send", "a", "--send", "b", "--send-as", "chat", "--json")
    assert (args.command, args.room, args.send, args.send_as, args.json) == (
        "join",
        "room",
        ["a", "b"],
        "chat",
        True,
    )
    args = parse("publish", "clip.mp4", "-r", "room", "--loop", "--size", "720p", "--fps", "24")
    assert (args.file, args.loop, args.size, args.fps, args.codec) == (
        "clip.mp4",
        True,
        (1280, 720),
        24.0,
        "vp8",
    )
    args = parse("publish", "--test-pattern", "-r", "x", "--max-bitrate", "1.5M", "--codec", "h264")
    assert (args.test_pattern, args.max_bitrate, args.codec, args.size) == (
        True,
        1_500_000,
        "h264",
        None,
    )
    args = parse("record", "-r", "x", "-o", "{identity}.webm", "--duration", "1m30s", "-p", "alice")
    assert (args.output, args.duration, args.participant, args.kind) == (
        "{identity}.webm",
        90.0,
        ["alice"],
        "both",
    )
    args = parse("load-test", "-n", "3")
    assert (args.participants, args.room, args.size, args.fps, args.publish, args.duration) == (
        3,
        None,
        (320, 180),
        15.0,
        "audio",
        30.0,
    )
    args = parse(
        "token", "-i", "me", "-r", "x", "--sources", "camera,microphone", "--valid-for", "1h"
    )
    assert (args.identity, args.sources, args.valid_for) == ("me", ["camera", "microphone"], 3600.0)


@pytest.mark.parametrize(
    "argv",
    [
        ["join"],  # no room
        ["publish", "--test-pattern", "-r", "x", "--size", "641x360"],
        ["publish", "--test-pattern", "-r", "x", "--fps", "0"],
        ["record", "-r", "x"],  # no output
        ["load-test", "-n", "0"],
        ["token", "-i", "me", "--sources", "webcam"],
        ["join", "-r", "x", "--duration", "soon"],
        ["join", "-r", "x", "--attribute", "novalue"],
    ],
)
def test_bad_command_lines_are_usage_errors(argv: list[str], capsys: Any) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_the_size_parser_says_what_is_wrong() -> None:
    assert settings.parse_size("640x360") == (640, 360)
    assert settings.parse_size(" 1920 X 1080 ") == (1920, 1080)
    assert settings.parse_size("360p") == (640, 360)
    with pytest.raises(ValueError, match="even"):
        settings.parse_size("641x360")
    with pytest.raises(ValueError, match="between 16"):
        settings.parse_size("8x8")
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        settings.parse_size("big")


def test_bitrates_durations_and_attributes() -> None:
    assert settings.parse_bitrate("800000") == 800_000
    assert settings.parse_bitrate("800k") == 800_000
    assert settings.parse_bitrate("1.5M") == 1_500_000
    assert settings.parse_bitrate("2Mbps") == 2_000_000
    with pytest.raises(ValueError):
        settings.parse_bitrate("fast")
    assert settings.parse_duration("30") == 30.0
    assert settings.parse_duration("500ms") == 0.5
    assert settings.parse_duration("1h30m") == 5400.0
    assert settings.parse_duration("2m5s") == 125.0
    for bad in ("0", "-1", "1x", "m", "", "inf"):
        with pytest.raises(ValueError):
            settings.parse_duration(bad)
    assert settings.parse_attribute("a=b=c") == ("a", "b=c")
    with pytest.raises(ValueError, match="key=value"):
        settings.parse_attribute("=x")


def test_flags_win_over_the_environment_which_wins_over_dev() -> None:
    env = {"LIVEKIT_URL": "wss://env.example", "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s"}
    conn = settings.resolve_connection(url=None, api_key=None, api_secret=None, env=env)
    assert (conn.url, conn.api_key, conn.api_secret) == ("wss://env.example", "k", "s")
    conn = settings.resolve_connection(
        url="ws://flag:1", api_key="fk", api_secret=None, env=env, dev=True
    )
    assert (conn.url, conn.api_key, conn.api_secret) == ("ws://flag:1", "fk", "s")
    conn = settings.resolve_connection(url=None, api_key=None, api_secret=None, env={}, dev=True)
    assert (conn.url, conn.api_key, conn.api_secret) == (
        settings.DEV_URL,
        settings.DEV_API_KEY,
        settings.DEV_API_SECRET,
    )
    with pytest.raises(settings.UsageError, match="LIVEKIT_URL"):
        settings.resolve_connection(url=None, api_key="k", api_secret="s", env={})
    with pytest.raises(settings.UsageError, match="ws://host"):
        settings.resolve_connection(url="ftp://x", api_key="k", api_secret="s", env={})
    no_keys = settings.resolve_connection(url="ws://x:1", api_key=None, api_secret=None, env={})
    with pytest.raises(settings.UsageError, match="LIVEKIT_API_KEY"):
        no_keys.token_for("me", "room")
    given = settings.resolve_connection(
        url="ws://x:1", api_key=None, api_secret=None, env={"LIVEKIT_TOKEN": "t.t.t"}
    )
    assert given.token_for("me", "room") == "t.t.t"


# -- tokens ------------------------------------------------------------------------------


def test_a_token_verifies_with_livekit_api_and_carries_the_grants() -> None:
    from livekit import api

    request = tokens.TokenRequest(
        api_key=API_KEY,
        api_secret=API_SECRET,
        identity="alice",
        name="Alice",
        metadata='{"x":1}',
        attributes={"role": "bot"},
        ttl=600,
        grants=tokens.Grants(
            room="studio",
            can_publish=False,
            can_publish_sources=["microphone"],
            hidden=True,
        ),
    )
    claims = api.TokenVerifier(API_KEY, API_SECRET).verify(tokens.make_token(request))
    assert (claims.identity, claims.name, claims.metadata) == ("alice", "Alice", '{"x":1}')
    assert claims.attributes == {"role": "bot"}
    video = claims.video
    assert video is not None
    assert (video.room_join, video.room, video.can_publish, video.can_subscribe) == (
        True,
        "studio",
        False,
        True,
    )
    assert (video.can_publish_data, video.can_publish_sources, video.hidden) == (
        True,
        ["microphone"],
        True,
    )
    with pytest.raises(Exception, match=r"[Ss]ignature"):
        api.TokenVerifier(API_KEY, "other").verify(tokens.make_token(request))


def test_token_lifetime_and_refusals() -> None:
    request = tokens.TokenRequest(API_KEY, API_SECRET, "bob", tokens.Grants(room="r"), ttl=60)
    claims = tokens.decode_unverified(tokens.make_token(request, now=1000))
    assert (claims["nbf"], claims["exp"], claims["iss"], claims["sub"]) == (
        1000,
        1060,
        API_KEY,
        "bob",
    )
    with pytest.raises(ValueError, match="--room"):
        tokens.make_token(tokens.TokenRequest(API_KEY, API_SECRET, "bob"))
    with pytest.raises(ValueError, match="LIVEKIT_API_SECRET"):
        tokens.make_token(tokens.TokenRequest(API_KEY, "", "bob", tokens.Grants(room="r")))
    with pytest.raises(ValueError, match="unknown track source"):
        tokens.make_token(
            tokens.TokenRequest(
                API_KEY, API_SECRET, "bob", tokens.Grants(room="r", can_publish_sources=["tv"])
            )
        )
    admin = tokens.Grants(room_join=False, room_list=True, room_create=True)
    assert admin.claims() == {
        "roomJoin": False,
        "canPublish": True,
        "canSubscribe": True,
        "canPublishData": True,
        "roomCreate": True,
        "roomList": True,
    }


def test_the_token_command_prints_a_token_or_its_claims(capsys: Any) -> None:
    argv = ["token", "--dev", "-r", "studio", "-i", "carol", "--no-publish", "--admin"]
    assert app.main(argv) == 0
    printed = capsys.readouterr().out.strip()
    claims = tokens.decode_unverified(printed)
    assert claims["sub"] == "carol"
    assert claims["video"] == {
        "roomJoin": True,
        "room": "studio",
        "canPublish": False,
        "canSubscribe": True,
        "canPublishData": True,
        "roomAdmin": True,
    }
    assert app.main([*argv, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["claims"]["sub"] == "carol" and shown["token"].count(".") == 2


def test_the_token_command_without_keys_says_where_they_come_from(
    capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIVEKIT_API_KEY", raising=False)
    monkeypatch.delenv("LIVEKIT_API_SECRET", raising=False)
    with pytest.raises(SystemExit) as exc:
        app.main(["token", "-r", "x", "-i", "me"])
    assert exc.value.code == 2
    assert "LIVEKIT_API_KEY" in capsys.readouterr().err


def test_a_missing_extra_is_named(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "rich" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert app.main(["join", "-r", "x", "--dev"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'livekit-py[cli]'" in err and "rich" in err
    # the token command needs nothing but the standard library
    assert app.main(["token", "--dev", "-r", "x", "-i", "me"]) == 0


def test_python_dash_m_runs_the_cli() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "livekit_py", "token", "--dev", "-r", "r", "-i", "me"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert tokens.decode_unverified(done.stdout)["sub"] == "me"


# -- events ------------------------------------------------------------------------------


class _P:
    identity, sid, name = "alice", "PA_1", "Alice"


class _Pub:
    sid, name, kind, source = "TR_1", "cam", rtc.TrackKind.KIND_VIDEO, rtc.TrackSource.SOURCE_CAMERA
    mime_type, width, height = "video/VP8", 640, 360


def test_records_of_participants_tracks_and_payloads() -> None:
    assert events.participant_fields(_P()) == {
        "identity": "alice",
        "name": "Alice",
        "participant_sid": "PA_1",
    }
    assert events.participant_fields(None) == {"identity": ""}
    assert events.publication_fields(_Pub()) == {
        "track_sid": "TR_1",
        "kind": "video",
        "source": "camera",
        "track_name": "cam",
        "mime_type": "video/VP8",
        "width": 640,
        "height": 360,
    }
    assert events.payload_fields(b"hi") == {"size": 2, "text": "hi"}
    assert events.payload_fields(b"\xff\x00") == {"size": 2, "base64": "/wA="}
    assert events.enum_name(rtc.TrackKind, rtc.TrackKind.KIND_AUDIO) == "audio"
    assert events.enum_name(rtc.TrackSource, 999) == "999"
    assert events.parse_legacy_chat(b'{"id":"1","message":"yo","timestamp":1}') == "yo"
    assert events.parse_legacy_chat(b"not json") is None
    assert events.format_bytes(512) == "512 B"
    assert events.format_bytes(1536) == "1.5 KiB"
    assert events.format_bytes(5 * 1024**3) == "5.0 GiB"


def test_a_record_as_a_line_and_as_json() -> None:
    rec = {
        "time": 1700000000.25,
        "event": "data_received",
        "identity": "bob",
        "participant_sid": "PA_9",
        "topic": "chat room",
        "reliable": True,
        "size": 5,
        "text": "hello",
    }
    line = events.format_record(rec)
    assert line.endswith(
        'data_received          bob topic="chat room" reliable=True size=5 "hello"'
    )
    assert line[8:12] == ".250"
    assert json.loads(events.json_record(rec)) == rec
    binary = events.format_record({"event": "data_received", "size": 1, "base64": "AA=="})
    assert binary.startswith("--:--:--.---") and binary.endswith("base64:AA==")
    listed = events.format_record({"event": "active_speakers", "identities": ["a", "b"]})
    assert listed.endswith("identities=a,b")


# -- the test pattern ----------------------------------------------------------------------


def test_the_pattern_has_its_bars_and_a_moving_square() -> None:
    pat = pattern.TestPattern(320, 180, 30)
    first = pat.frame(0)
    assert (first.width, first.height, first.type) == (320, 180, rtc.VideoBufferType.I420)
    rgba = np.frombuffer(bytes(first.convert(rtc.VideoBufferType.RGBA).data), np.uint8)
    rgba = rgba.reshape(180, 320, 4)
    edges = np.linspace(0, 320, len(pattern.BAR_COLOURS) + 1).astype(int)
    for colour, left, right in zip(pattern.BAR_COLOURS, edges[:-1], edges[1:], strict=True):
        middle = rgba[40:80, left + 5 : right - 5, :3].reshape(-1, 3).mean(axis=0)
        assert np.abs(middle - colour).max() < 12, (colour, middle)
    assert pat.square_x(0) != pat.square_x(15)
    y0 = np.frombuffer(bytes(first.data), np.uint8)[: 320 * 180].reshape(180, 320)
    y15 = np.frombuffer(bytes(pat.frame(15).data), np.uint8)[: 320 * 180].reshape(180, 320)
    assert not np.array_equal(y0[135:], y15[135:]) and np.array_equal(y0[:135], y15[:135])
    with pytest.raises(ValueError, match="even"):
        pattern.TestPattern(321, 180, 30)


def test_audio_goes_with_each_frame_without_drifting() -> None:
    assert [pattern.samples_in_frame(i, 48000, 30) for i in range(3)] == [1600] * 3
    n = 1000
    total = sum(pattern.samples_in_frame(i, 48000, 30000 / 1001) for i in range(n))
    assert total == round(n * 48000 * 1001 / 30000)


def test_the_tone_is_continuous_at_its_frequency() -> None:
    tone = pattern.Tone(440, sample_rate=48000)
    frames = [tone.frame(480) for _ in range(100)]
    pcm = np.concatenate([np.frombuffer(bytes(f.data), np.int16) for f in frames])
    assert abs(dominant_frequency(pcm, 48000) - 440) < 2
    assert np.abs(np.diff(pcm.astype(np.int32))).max() < 32767 * 0.3 * 2 * np.pi * 440 / 48000 + 2
    with pytest.raises(ValueError, match="frequency"):
        pattern.Tone(30000)


# -- media files ---------------------------------------------------------------------------


def _item(kind: str, t: float) -> MediaItem:
    frame: Any = object()
    return MediaItem(kind, frame, t)  # type: ignore[arg-type]


def test_the_interleaver_puts_audio_and_video_in_time_order() -> None:
    mix = Interleaver({"audio", "video"}, max_lag=1.0)
    assert mix.push(_item("audio", 0.02)) == []  # waits for video
    assert mix.push(_item("audio", 0.04)) == []
    ready = mix.push(_item("video", 0.0))
    assert [(i.kind, i.time) for i in ready] == [("video", 0.0)]
    ready = mix.push(_item("video", 0.033))
    assert [(i.kind, i.time) for i in ready] == [("audio", 0.02), ("video", 0.033)]
    # a demuxer that hands out a long run of one kind: released past max_lag
    released: list[float] = []
    pushed = 0.04
    for k in range(60):
        pushed = 0.06 + k * 0.02
        released += [i.time for i in mix.push(_item("audio", pushed))]
        if not released:
            assert pushed - 0.04 <= 1.0 + 1e-9  # held while within max_lag
    assert released[0] == 0.04 and pushed - released[-1] <= 1.0 + 0.02 + 1e-9
    rest = mix.flush()
    assert [i.time for i in rest] == sorted(i.time for i in rest)
    alone = Interleaver({"audio"})
    assert [i.time for i in alone.push(_item("audio", 1.0))] == [1.0]


def test_probe_reads_what_a_file_holds(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", width=160, height=120, fps=10, seconds=1.0)
    info = probe(clip)
    assert (info.width, info.height, info.audio_channels, info.has_video) == (160, 120, 1, True)
    assert info.fps == pytest.approx(10, abs=0.1)
    assert info.duration == pytest.approx(1.0, abs=0.1)
    with pytest.raises(ValueError, match="cannot open"):
        probe(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError):
        probe(tmp_path / "junk.mp4")


async def test_the_reader_decodes_in_order_and_loops(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.webm", width=160, height=120, fps=10, seconds=1.0)
    info = probe(clip)
    reader = MediaFileReader(clip, info=info, audio=True, video=True, size=(80, 60), loop=True)
    reader.start()
    items: list[MediaItem] = []
    try:
        async for item in reader:
            items.append(item)
            if item.loop == 2:
                break
    finally:
        await reader.aclose()
    first_pass = [i for i in items if i.loop == 0]
    pictures = [i for i in first_pass if i.kind == "video"]
    audio = [i for i in first_pass if i.kind == "audio"]
    assert len(pictures) == 10
    frame = pictures[0].frame
    assert isinstance(frame, rtc.VideoFrame)
    assert (frame.width, frame.height, frame.type) == (80, 60, rtc.VideoBufferType.I420)
    rgba = np.frombuffer(bytes(frame.convert(rtc.VideoBufferType.RGBA).data), np.uint8)
    rgba = rgba.reshape(60, 80, 4)
    assert np.abs(rgba[20:40, 5:30, :3].reshape(-1, 3).mean(axis=0) - RED).max() < 30
    assert np.abs(rgba[20:40, 50:75, :3].reshape(-1, 3).mean(axis=0) - BLUE).max() < 30
    seconds = sum(
        i.frame.samples_per_channel / 48000 for i in audio if isinstance(i.frame, rtc.AudioFrame)
    )
    assert seconds == pytest.approx(1.0, abs=0.05)
    times = [i.time for i in items]
    assert all(b >= a - 0.03 for a, b in itertools.pairwise(times))  # in order
    second = [i for i in items if i.loop == 1]
    assert min(i.time for i in second) >= 0.95  # the timeline goes on across loops


async def test_an_audio_only_file_reads_as_audio(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "tone.wav", seconds=0.5, video=False)
    info = probe(clip)
    assert (info.has_video, info.has_audio) == (False, True)
    reader = MediaFileReader(clip, info=info, audio=True, video=True)
    reader.start()
    items = [item async for item in reader]
    assert items and all(i.kind == "audio" for i in items)
    assert items[-1].time == pytest.approx(0.5, abs=0.03)


# -- writers and the recorder's files --------------------------------------------------------


def _tone_frames(seconds: float, hz: float = 440.0) -> list[rtc.AudioFrame]:
    tone = pattern.Tone(hz)
    return [tone.frame(480) for _ in range(round(seconds * 100))]


@pytest.mark.parametrize("ext", sorted(FORMATS))
async def test_every_format_is_written_and_reads_back(tmp_path: Path, ext: str) -> None:
    fmt = format_for(f"x{ext}")
    path = tmp_path / f"out{ext}"
    video = VideoParams(160, 120, 30.0, 500_000) if fmt.video_codec else None
    writer = FileWriter(path, fmt, audio=AudioParams(48000, 1), video=video)
    pat = pattern.TestPattern(160, 120, 30)
    for i, frame in enumerate(_tone_frames(2.0)):
        writer.write_audio(frame, i * 0.01)
        if video is not None and i % 3 == 0:
            writer.write_video(pat.frame(i // 3), i * 0.01)
    await writer.aclose()
    assert writer.error is None
    back = read_back(path)
    kinds = [kind for kind, _ in back["streams"]]  # type: ignore[attr-defined]
    assert kinds == (["audio", "video"] if video else ["audio"])
    pcm = back["audio"]
    assert isinstance(pcm, np.ndarray)
    assert pcm.size / 48000 == pytest.approx(2.0, abs=0.1)
    assert abs(dominant_frequency(pcm, 48000) - 440) < 3
    if video is not None:
        pictures = back["pictures"]
        assert isinstance(pictures, list) and len(pictures) >= 60
        assert pictures[0].shape == (120, 160, 3)


async def test_a_late_start_and_a_gap_are_silence_in_place(tmp_path: Path) -> None:
    path = tmp_path / "gap.wav"
    writer = FileWriter(path, format_for(path), audio=AudioParams(48000, 1), video=None)
    frames = _tone_frames(1.0)
    for i, frame in enumerate(frames[:50]):
        writer.write_audio(frame, 0.5 + i * 0.01)  # starts 0.5 s in
    for i, frame in enumerate(frames[50:]):
        writer.write_audio(frame, 3.0 + i * 0.01)  # after a 2 s gap
    await writer.aclose()
    pcm = read_back(path)["audio"]
    assert isinstance(pcm, np.ndarray)
    assert pcm.size / 48000 == pytest.approx(3.5, abs=0.02)
    assert np.abs(pcm[: 24000 - 480]).max() == 0
    assert np.abs(pcm[24000 + 480 : 48000 - 480]).max() > 1000
    assert np.abs(pcm[int(1.1 * 48000) : int(2.9 * 48000)]).max() == 0


def test_a_writer_refuses_what_its_format_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="holds no video"):
        FileWriter(tmp_path / "a.wav", format_for("a.wav"), audio=None, video=VideoParams(16, 16))
    with pytest.raises(ValueError, match="48000"):
        FileWriter(tmp_path / "a.ogg", format_for("a.ogg"), audio=AudioParams(44100, 1), video=None)
    with pytest.raises(ValueError, match="use one of"):
        format_for("a.avi")


def test_output_templates() -> None:
    assert record.template_fields("rec/{identity}-{kind}.ogg") == {"identity", "kind"}
    assert record.template_fields("plain.wav") == set()
    with pytest.raises(ValueError, match="unknown placeholder"):
        record.template_fields("{who}.wav")
    with pytest.raises(ValueError, match="malformed"):
        record.template_fields("{identity.wav")
    name = record.expand("{room}/{identity}-{track}.webm", room="r", identity="a/b c", track="")
    assert name == "r/a_b_c-unknown.webm"


async def test_a_recording_opens_when_its_tracks_have_media(tmp_path: Path) -> None:
    rec = record._Recording(
        tmp_path / "p.webm", format_for("p.webm"), AudioParams(48000, 1), 500_000
    )
    assert rec.claim("audio", "alice/TR_A") and rec.claim("video", "alice/TR_V")
    assert not rec.claim("audio", "bob/TR_B")
    frames = _tone_frames(1.0)
    rec.frame("audio", frames[0], 10.0)
    assert rec.writer is None  # waits for the video
    pat = pattern.TestPattern(64, 48, 30)
    rec.frame("video", pat.frame(0), 10.05)
    assert rec.writer is not None and rec.writer.video == VideoParams(64, 48, 30.0, 500_000)
    for i, frame in enumerate(frames[1:]):
        rec.frame("audio", frame, 10.01 + (i + 1) * 0.01)
        if i % 3 == 0:
            rec.frame("video", pat.frame(i // 3 + 1), 10.01 + (i + 1) * 0.01)
    await rec.writer.aclose()
    back = read_back(rec.path)
    assert back["streams"] == [("audio", "opus"), ("video", "vp8")]
    alone = record._Recording(
        tmp_path / "a.webm", format_for("a.webm"), AudioParams(48000, 1), 500_000
    )
    alone.claim("audio", "x")
    alone.claim("video", "y")
    alone.frame("audio", frames[0], 0.0)
    alone.open_if_ready(record.SETTLE - 0.1)
    assert alone.writer is None
    alone.open_if_ready(record.SETTLE)  # the video never came: audio alone
    assert alone.writer is not None and alone.writer.video is None
    await alone.writer.aclose()


# -- load-test numbers -----------------------------------------------------------------------


def _stats(kind: str, **parts: Any) -> rtc.stats.RtcStats:
    s = rtc.stats.RtcStats()
    entry = getattr(s, kind)
    entry.rtc.id = parts.pop("id", kind)
    for path, value in parts.items():
        target = entry
        *head, last = path.split("__")
        for name in head:
            target = getattr(target, name)
        setattr(target, last, value)
    return s


def test_traffic_is_read_from_the_sdk_statistics() -> None:
    publisher = [
        _stats("outbound_rtp", id="o1", sent__packets_sent=100, sent__bytes_sent=10_000),
        _stats("outbound_rtp", id="o2", sent__packets_sent=50, sent__bytes_sent=40_000),
    ]
    subscriber = [
        _stats(
            "inbound_rtp",
            received__packets_received=70,
            received__packets_lost=3,
            inbound__bytes_received=7_000,
        ),
        _stats("candidate_pair", id="cp", candidate_pair__current_round_trip_time=0.004),
        _stats("transport", id="t", transport__selected_candidate_pair_id="cp"),
    ]
    t = load_stats.traffic(publisher, subscriber)
    assert t == load_stats.Traffic(150, 50_000, 70, 7_000, 3, 0.004)
    assert load_stats.traffic([], []).rtt is None


def test_bitrates_percentiles_and_the_summary() -> None:
    p = load_stats.ParticipantStats("a", state="joined", join_time=0.1)
    p.update(10.0, load_stats.Traffic(bytes_sent=0, bytes_received=0))
    p.update(11.0, load_stats.Traffic(packets_sent=50, bytes_sent=5_000, bytes_received=10_000))
    p.update(12.0, load_stats.Traffic(packets_sent=100, bytes_sent=10_000, bytes_received=20_000))
    assert (p.tx_bps, p.rx_bps) == (40_000, 80_000)
    assert p.average_bps() == (40_000, 80_000)
    p.latencies = [0.010, 0.020, 0.030, 0.100]
    assert load_stats.percentile(p.latencies, 50) == 0.020
    assert load_stats.percentile(p.latencies, 95) == 0.100
    failed = load_stats.ParticipantStats("b", state="failed", error="connect: refused")
    summary = load_stats.summarize([p, failed], room="r", duration=2.0)
    assert (summary["participants"], summary["joined"], summary["failed"]) == (2, 1, 1)
    assert summary["packets_sent"] == 100
    assert summary["send_kbps_per_participant"] == 40.0
    assert summary["data_latency_ms"] == {"count": 4, "p50": 20.0, "p95": 100.0, "max": 100.0}
    assert summary["errors"] == ["b: connect: refused"]
    json.dumps(summary)  # what --json prints


def test_the_live_table_shows_every_participant() -> None:
    from rich.console import Console

    from livekit_py.cli.load_test import render_table, summary_table

    people = [load_stats.ParticipantStats(f"load-{i}", state="joined") for i in range(3)]
    people[1].traffic = load_stats.Traffic(packets_sent=123, rtt=0.002)
    console = Console(width=160, record=True, file=open(os.devnull, "w"))
    console.print(render_table(people, 5.0, "load test"))
    text = console.export_text()
    assert all(f"load-{i}" in text for i in range(3))
    assert "123" in text and "3/3 joined" in text
    console.print(summary_table(load_stats.summarize(people, room="r", duration=1)))
    assert "packets sent" in console.export_text()


# -- publish's plan --------------------------------------------------------------------------


def test_publish_checks_its_options(tmp_path: Path) -> None:
    from livekit_py.cli.publish import plan_from_args

    with pytest.raises(settings.UsageError, match="either a FILE"):
        plan_from_args(parse("publish", "-r", "x"))
    with pytest.raises(settings.UsageError, match="either a FILE"):
        plan_from_args(parse("publish", "f.mp4", "--test-pattern", "-r", "x"))
    with pytest.raises(settings.UsageError, match="nothing to publish"):
        plan_from_args(parse("publish", "--test-pattern", "--no-audio", "--no-video", "-r", "x"))
    plan = plan_from_args(parse("publish", "--test-pattern", "-r", "x"))
    assert plan.video is not None and (plan.video.width, plan.video.height) == (1280, 720)
    assert plan.audio is not None
    clip = make_clip(tmp_path / "c.mp4", width=160, height=120, fps=10, seconds=0.5)
    plan = plan_from_args(parse("publish", str(clip), "-r", "x", "--no-audio"))
    assert plan.audio is None and plan.video is not None
    assert (plan.video.width, plan.video.height, round(plan.video.fps)) == (160, 120, 10)
    with pytest.raises(settings.UsageError, match="cannot open"):
        plan_from_args(parse("publish", str(tmp_path / "nope.mp4"), "-r", "x"))
    audio_only = make_clip(tmp_path / "t.wav", seconds=0.2, video=False)
    with pytest.raises(settings.UsageError, match="nothing left"):
        plan_from_args(parse("publish", str(audio_only), "-r", "x", "--no-audio"))


def test_runtime_stops_on_the_event(monkeypatch: pytest.MonkeyPatch) -> None:
    from livekit_py.cli.runtime import run_command, wait_or_stop

    async def main(stop: asyncio.Event) -> int:
        assert not await wait_or_stop(stop, 0.01)
        asyncio.get_running_loop().call_soon(stop.set)
        assert await wait_or_stop(stop, None)
        return 7

    assert run_command(main) == 7


def test_the_console_script_points_at_main() -> None:
    tomllib = pytest.importorskip("tomllib")
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text())["project"]
    module, _, name = project["scripts"]["livekit-py"].partition(":")
    assert getattr(importlib.import_module(module), name) is app.main
    assert project["optional-dependencies"]["cli"] == ["rich>=13"]
