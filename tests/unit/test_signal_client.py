"""The signal client's URL building and message handling, without a server."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from livekit.protocol import models as proto_models
from livekit.protocol import rtc as proto_rtc
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from livekit_py.signal import client as signal_client_module
from livekit_py.signal.client import (
    MAX_MESSAGE_SIZE,
    BadFrame,
    SignalClient,
    _closed_text,
    _parse,
    describe,
)
from livekit_py.signal.url import PROTOCOL_VERSION, base_ws_url, redact, rtc_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("ws://127.0.0.1:7880", "ws://127.0.0.1:7880"),
        ("ws://127.0.0.1:7880/", "ws://127.0.0.1:7880"),
        ("wss://example.livekit.cloud", "wss://example.livekit.cloud"),
        ("wss://example.livekit.cloud/", "wss://example.livekit.cloud"),
        ("http://localhost:7880", "ws://localhost:7880"),
        ("https://host/prefix/", "wss://host/prefix"),
        ("ws://host:1/rtc", "ws://host:1"),
    ],
)
def test_base_url_forms(given: str, expected: str) -> None:
    assert base_ws_url(given) == expected


@pytest.mark.parametrize("bad", ["", "   ", "ftp://host", "127.0.0.1:7880", "ws://"])
def test_bad_urls_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="url"):
        base_ws_url(bad)


def test_rtc_url_carries_the_parameters_the_server_reads() -> None:
    url = rtc_url("wss://host/", "tok.en", auto_subscribe=False)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("wss", "host", "/rtc")
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert q["access_token"] == "tok.en"
    assert q["auto_subscribe"] == "0"
    assert q["sdk"] == "python"
    assert q["protocol"] == str(PROTOCOL_VERSION)
    assert q["version"]
    assert "reconnect" not in q
    # RPC v2 and data streams v2, packet trailers and deflate-raw, as the official
    # SDK 1.2.1 advertises them
    assert q["client_protocol"] == "2"
    assert q["capabilities"] == "CAP_PACKET_TRAILER,CAP_COMPRESSION_DEFLATE_RAW"
    resume = rtc_url("ws://h", "t", auto_subscribe=True, reconnect=True, participant_sid="PA_x")
    rq = {k: v[0] for k, v in parse_qs(urlsplit(resume).query).items()}
    assert (rq["reconnect"], rq["sid"], rq["auto_subscribe"]) == ("1", "PA_x", "1")


def test_tokens_never_reach_logs() -> None:
    url = rtc_url("ws://h", "secret-token", auto_subscribe=True)
    assert "secret-token" not in redact(url)
    join = proto_rtc.SignalResponse(
        join=proto_rtc.JoinResponse(
            room=proto_models.Room(name="r", turn_password="hunter2"),
            ice_servers=[proto_rtc.ICEServer(urls=["turn:x"], username="u", credential="pw")],
        )
    )
    text = describe(join)
    assert "hunter2" not in text and "pw" not in text and 'name: "r"' in text


def _client_with_log() -> tuple[SignalClient, list[tuple[str, Any]]]:
    client = SignalClient()
    seen: list[tuple[str, Any]] = []
    for kind in ("offer", "update", "leave", "speakers_changed", "room_update", "trickle"):
        client.on(kind, lambda msg, kind=kind: seen.append((kind, msg)))
    return client, seen


def test_dispatch_routes_each_message_to_its_handler() -> None:
    client, seen = _client_with_log()
    update = proto_rtc.ParticipantUpdate(
        participants=[proto_models.ParticipantInfo(identity="a", sid="PA_a")]
    )
    client._dispatch(proto_rtc.SignalResponse(update=update))
    client._dispatch(
        proto_rtc.SignalResponse(offer=proto_rtc.SessionDescription(type="offer", sdp="v=0"))
    )
    client._dispatch(proto_rtc.SignalResponse(leave=proto_rtc.LeaveRequest(reason=4)))
    assert [k for k, _ in seen] == ["update", "offer", "leave"]
    assert seen[0][1].participants[0].identity == "a"
    assert seen[1][1].sdp == "v=0"


class FakeTime:
    """Stands in for the ``time`` module of the signal client: the test sets the clocks."""

    def __init__(self) -> None:
        self.mono = 100.0
        self.wall_ms = 1_700_000_000_000

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return self.wall_ms / 1000


def test_pongs_update_liveness_and_rtt_without_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeTime()
    monkeypatch.setattr(signal_client_module, "time", clock)
    client, seen = _client_with_log()
    client._last_pong = 0.0
    # a pong answering the ping sent 42 ms ago
    clock.mono = 200.0
    sent_ms = clock.wall_ms - 42
    client._dispatch(
        proto_rtc.SignalResponse(pong_resp=proto_rtc.Pong(last_ping_timestamp=sent_ms))
    )
    assert client._last_pong == 200.0 and client.rtt_ms == 42
    # the legacy pong refreshes liveness and leaves the rtt alone
    clock.mono = 230.0
    client._dispatch(proto_rtc.SignalResponse(pong=5))
    assert client._last_pong == 230.0 and client.rtt_ms == 42
    assert seen == []  # pongs never reach message handlers


def test_unhandled_and_unknown_messages_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    client, seen = _client_with_log()
    caplog.set_level(logging.DEBUG, logger="livekit_py.signal")
    # a message we know but nobody handles
    client._dispatch(proto_rtc.SignalResponse(refresh_token="t"))
    # a message from a future protocol: a field number this protobuf does not know
    raw = bytes([0xFA, 0x07, 0x03]) + b"abc"  # field 127, length-delimited, 3 bytes
    parsed = _parse(raw)
    assert parsed.WhichOneof("message") is None
    client._dispatch(parsed)
    assert seen == []
    assert any("no handler" in r.message for r in caplog.records)


@pytest.mark.parametrize(
    ("frame", "named"),
    [
        (b"\xff\xff\xff", "3-byte frame that does not parse as a SignalResponse"),
        # a JoinResponse cut in the middle of its room
        (
            proto_rtc.SignalResponse(
                join=proto_rtc.JoinResponse(room=proto_models.Room(name="r" * 50))
            ).SerializeToString()[:20],
            "20-byte frame that does not parse as a SignalResponse",
        ),
        ("secret-token-in-text", "a text frame (20 characters)"),
    ],
)
def test_frames_that_are_not_signal_responses_are_named_not_quoted(
    frame: str | bytes, named: str
) -> None:
    with pytest.raises(BadFrame) as info:
        _parse(frame)
    assert named in str(info.value)
    assert "secret-token" not in str(info.value)  # what was sent never reaches the message


def _closed(rcvd: tuple[int, str] | None, sent: tuple[int, str] | None = None) -> ConnectionClosed:
    return ConnectionClosed(
        Close(*rcvd) if rcvd else None, Close(*sent) if sent else None, rcvd_then_sent=None
    )


@pytest.mark.parametrize(
    ("closed", "named"),
    [
        (_closed((1008, "policy")), "code 1008 (policy violation) policy"),
        (_closed((1011, "")), "code 1011 (internal error)"),
        (_closed((4000, "custom")), "code 4000 (private use) custom"),
        (_closed(None), "without a close frame"),
        (
            _closed(None, (1009, "frame with 52428800 bytes exceeds limit of 16777216 bytes")),
            "over the 16 MiB size limit (frame with 52428800 bytes",
        ),
        (_closed(None, (1007, "invalid start byte at position 0")), "not valid UTF-8"),
        (_closed(None, (1002, "reserved bits must be 0")), "broke the WebSocket protocol"),
    ],
)
def test_close_reasons_name_the_code_or_what_was_wrong(
    closed: ConnectionClosed, named: str
) -> None:
    assert named in _closed_text(closed)


def test_the_size_limit_is_well_above_real_messages() -> None:
    # a JoinResponse for a room of 2000 participants with two tracks each
    def participant(i: int) -> proto_models.ParticipantInfo:
        return proto_models.ParticipantInfo(
            sid=f"PA_{i:012d}",
            identity=f"participant-identity-{i}",
            name=f"Participant Name {i}",
            metadata="m" * 64,
            tracks=[
                proto_models.TrackInfo(
                    sid=f"TR_{i:012d}{k}", name="microphone", mime_type="audio/opus"
                )
                for k in range(2)
            ],
        )

    join = proto_rtc.SignalResponse(
        join=proto_rtc.JoinResponse(other_participants=[participant(i) for i in range(2000)])
    )
    assert join.ByteSize() * 8 < MAX_MESSAGE_SIZE


def test_handler_errors_do_not_break_dispatch(caplog: pytest.LogCaptureFixture) -> None:
    client = SignalClient()
    calls: list[str] = []

    def broken(_: Any) -> None:
        raise RuntimeError("boom")

    client.on("update", broken)
    client.on("leave", lambda _: calls.append("leave"))
    client._dispatch(proto_rtc.SignalResponse(update=proto_rtc.ParticipantUpdate()))
    client._dispatch(proto_rtc.SignalResponse(leave=proto_rtc.LeaveRequest()))
    assert calls == ["leave"]
    assert any("boom" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_registering_an_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="no message"):
        SignalClient().on("not_a_message", lambda _: None)


async def test_send_on_a_closed_client_raises() -> None:
    with pytest.raises(ConnectionError):
        await SignalClient().send(proto_rtc.SignalRequest(ping=1))
    await SignalClient().close()  # closing a never-opened client is fine
