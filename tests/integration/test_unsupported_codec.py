"""A track we cannot receive (VP9 from the official SDK) fails to subscribe; the rest flows.

What livekit-server 1.13.5 does with a VP9 track for a subscriber that cannot
decode it: it offers every codec it knows on the new video m-line (VP8, VP9,
H.264, AV1, H.265), aiortc answers with VP8 and H.264, and the server, finding
no common codec, sends a SubscriptionResponse with SE_CODEC_UNSUPPORTED and
re-offers the m-line without the track. So the first test sees the failure
through the server. The second makes the server's offer one we cannot answer
(the VP9 track's m-line is treated as offering nothing we know, as an offer
with only VP9 on it would be) to check the server takes our rejected (port 0)
m-line while the rest of the subscriber connection keeps working.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiortc.sdp import SessionDescription
from livekit import rtc as official

from livekit_py import rtc
from livekit_py.engine import offer_filter
from livekit_py.engine import transport as transport_module
from tests.conftest import TokenFactory
from tests.helpers import EventLog, wait_until
from tests.integration.audio_utils import background, collect_audio, dominant_frequency, feed_sine
from tests.integration.test_video import FPS, H, W, feed_video, measure_stream

pytestmark = [pytest.mark.server, pytest.mark.interop]

TONE = 440.0
WAIT = 30.0  # generous: the machine is loaded


def _camera(codec: Any) -> Any:
    return official.TrackPublishOptions(
        source=official.TrackSource.SOURCE_CAMERA,
        video_codec=codec,
        video_encoding=official.VideoEncoding(max_bitrate=800_000, max_framerate=FPS),
        simulcast=False,
    )


async def _run(
    server_url: str,
    make_token: TokenFactory,
    *,
    then_vp8: bool = True,
    until: tuple[Callable[[], bool], str] | None = None,
    single_peer_connection: bool | None = None,
) -> tuple[str, str]:
    """Official SDK publishes a tone and a VP9 track, then a VP8 one; checks what we get.

    Returns (the VP9 track sid, the subscription failure's error).
    """
    ours, theirs = rtc.Room(), official.Room()
    log = EventLog(ours, ["track_subscribed", "track_subscription_failed", "track_unsubscribed"])
    audio_source = official.AudioSource(48000, 1)
    audio = official.LocalAudioTrack.create_audio_track("tone", audio_source)
    vp9_source, vp8_source = official.VideoSource(W, H), official.VideoSource(W, H)
    vp9 = official.LocalVideoTrack.create_video_track("vp9", vp9_source)
    vp8 = official.LocalVideoTrack.create_video_track("vp8", vp8_source)
    frame, rgba = official.VideoFrame, official.VideoBufferType.RGBA
    try:
        options = rtc.RoomOptions(single_peer_connection=single_peer_connection)
        await ours.connect(server_url, make_token("ours"), options)
        await theirs.connect(server_url, make_token("official"))
        async with (
            background(feed_sine(audio_source, official.AudioFrame, TONE)),
            background(feed_video(vp9_source, frame, rgba)),
            background(feed_video(vp8_source, frame, rgba)),
        ):
            mic = official.TrackPublishOptions(source=official.TrackSource.SOURCE_MICROPHONE)
            await theirs.local_participant.publish_track(audio, mic)
            vp9_pub = await theirs.local_participant.publish_track(
                vp9, _camera(official.VideoCodec.VP9)
            )
            failed = await log.wait_for(
                "track_subscription_failed", lambda p, sid, e: sid == vp9_pub.sid, timeout=WAIT
            )
            participant, _, error = failed
            assert participant is ours.remote_participants["official"]

            # the audio still arrives, and is the tone
            audio_track, _, _ = await log.wait_for(
                "track_subscribed", lambda t, *_: t.kind == rtc.TrackKind.KIND_AUDIO, timeout=WAIT
            )
            stream = rtc.AudioStream(audio_track, sample_rate=48000, num_channels=1)
            samples, rate, _ = await collect_audio(stream, 1.0, timeout=WAIT)
            await stream.aclose()
            assert abs(dominant_frequency(samples, rate) - TONE) < 10

            # the VP9 track is not subscribed, and failed once
            remote = ours.remote_participants["official"]
            assert remote.track_publications[vp9_pub.sid].track is None
            failures = [a for a in log.args("track_subscription_failed") if a[1] == vp9_pub.sid]
            assert len(failures) == 1, failures

            # a VP8 track published afterwards (a renegotiation) arrives, with frames
            vp8_pub = await theirs.local_participant.publish_track(
                vp8, _camera(official.VideoCodec.VP8)
            )
            if until is not None:
                await wait_until(until[0], timeout=WAIT, what=until[1])
            if not then_vp8:
                return vp9_pub.sid, str(error)
            video_track, _, _ = await log.wait_for(
                "track_subscribed", lambda t, *_: t.sid == vp8_pub.sid, timeout=WAIT
            )
            video = rtc.VideoStream(video_track, format=rtc.VideoBufferType.RGBA)
            fps, _ = await measure_stream(video, rtc.VideoBufferType.RGBA, seconds=2.0)
            await video.aclose()
            assert fps > 5, f"the VP8 track after the failed VP9 one arrives at {fps:.1f} fps"
            return vp9_pub.sid, str(error)
    finally:
        await theirs.disconnect()
        await ours.disconnect()
        for source in (audio_source, vp9_source, vp8_source):
            await source.aclose()


async def test_a_vp9_track_fails_to_subscribe_and_the_others_flow(
    server_url: str, make_token: TokenFactory
) -> None:
    _, error = await _run(server_url, make_token)
    assert error  # the server's SE_CODEC_UNSUPPORTED, or our own rejection


async def test_an_m_line_we_cannot_answer_is_rejected_and_the_others_flow(
    server_url: str, make_token: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Treat the m-line of the VP9 track as offering only VP9.

    The first offer of a new video m-line offers every codec, VP9 among them;
    answering it rejected is what we would do if VP9 were all it offered. The
    server (pion) then takes the rejected m-line's one format as what was
    negotiated: its next offers carry that m-line with VP9 alone (the offer
    aiortc used to raise on, leaving the negotiation stuck), and every later
    video m-line too, so the VP8 track published afterwards fails as well here
    (the renegotiation it causes is what brings the VP9-only offer). Two peer
    connections: with one, the server answers our offers (of codecs we know) instead.
    """
    answers: list[str] = []
    first_video: list[str] = []
    truly_vp9_only: list[str] = []
    real_unreceivable = offer_filter.unreceivable_sections
    real_reject = offer_filter.reject_in_answer

    def only_vp9(sdp: str) -> list[offer_filter.RejectedSection]:
        found = real_unreceivable(sdp)
        if found:
            truly_vp9_only.append(sdp)
        parsed = SessionDescription.parse(sdp)
        for index, media in enumerate(parsed.media):
            vp9 = [c for c in media.rtp.codecs if c.mimeType.lower() == "video/vp9"]
            if not vp9 or media.direction not in ("sendonly", "sendrecv") or not media.msid:
                continue
            track_sid = media.msid.split()[-1]
            if not first_video:
                first_video.append(track_sid)  # the VP9 track: the VP8 one comes later
            if track_sid != first_video[0]:
                continue
            pt = str(vp9[0].payloadType)
            found.append(
                offer_filter.RejectedSection(
                    index=index,
                    mid=media.rtp.muxId,
                    kind=media.kind,
                    codecs=("video/VP9",),
                    first_format=pt,
                    first_rtpmap=f"a=rtpmap:{pt} VP9/90000",
                )
            )
        return found

    def recording_reject(answer: str, rejected: list[offer_filter.RejectedSection]) -> str:
        out = real_reject(answer, rejected)
        if rejected:
            answers.append(out)
        return out

    monkeypatch.setattr(transport_module, "unreceivable_sections", only_vp9)
    monkeypatch.setattr(transport_module, "reject_in_answer", recording_reject)
    answered = (
        lambda: bool(truly_vp9_only) and len(answers) >= 2,
        "an answer to an offer whose VP9 m-line has VP9 alone",
    )
    _, error = await _run(
        server_url, make_token, then_vp8=False, until=answered, single_peer_connection=False
    )
    assert "cannot receive video" in error and "video/VP9" in error
    assert answers and all("m=video 0 UDP/TLS/RTP/SAVPF" in a for a in answers)
