"""Public enums and option messages behave like the official SDK's protobuf types."""

from __future__ import annotations

import pytest

from livekit_py import rtc


def test_publish_options_are_protobuf_like() -> None:
    empty = rtc.TrackPublishOptions()
    assert not empty.HasField("dtx") and not empty.HasField("audio_encoding")
    options = rtc.TrackPublishOptions(
        source=rtc.TrackSource.SOURCE_MICROPHONE,
        audio_encoding=rtc.AudioEncoding(max_bitrate=32000),
        dtx=False,
    )
    assert options.source == rtc.TrackSource.SOURCE_MICROPHONE
    assert options.audio_encoding.max_bitrate == 32000
    # assignable after construction, sub-messages auto-created
    empty.video_encoding.max_bitrate = 1_000_000
    empty.video_encoding.max_framerate = 30.0
    empty.video_codec = rtc.VideoCodec.H264
    empty.red = True
    empty.stream = "camera"
    assert empty.HasField("video_encoding") and empty.video_codec == rtc.VideoCodec.H264
    assert rtc.VideoEncoding(max_framerate=15).max_framerate == 15
    with pytest.raises(TypeError):
        rtc.TrackPublishOptions(dtx="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        rtc.TrackPublishOptions(no_such_field=1)  # type: ignore[call-arg]


def test_enums_have_the_official_names_and_numbers() -> None:
    assert rtc.TrackKind.KIND_AUDIO == 1 and rtc.TrackKind.Name(2) == "KIND_VIDEO"
    assert rtc.TrackSource.Value("SOURCE_SCREENSHARE_AUDIO") == 4
    assert dict(rtc.DataPacketKind.items()) == {"KIND_LOSSY": 0, "KIND_RELIABLE": 1}
    assert rtc.DisconnectReason.MEDIA_FAILURE == 15
    assert rtc.ConnectionState.CONN_RECONNECTING == 2
    assert rtc.VideoBufferType.NV12 == 10
    assert rtc.IceServer(urls=["stun:x"], username="u", password="p").password == "p"
    perm = rtc.ParticipantTrackPermission(participant_identity="a", allow_all=True)
    assert perm.allow_all and list(perm.allowed_track_sids) == []


def test_rtc_module_mirrors_the_top_level() -> None:
    import livekit_py

    assert rtc.Room is livekit_py.Room
    assert set(rtc.__all__) == set(livekit_py.__all__)


def test_degradation_preference_is_the_official_int_enum() -> None:
    import enum

    from livekit_py.rtc.participant import DegradationPreference

    assert rtc.DegradationPreference is DegradationPreference
    assert issubclass(DegradationPreference, enum.IntEnum)
    assert {m.name: int(m) for m in DegradationPreference} == {
        "BALANCED": 0,
        "MAINTAIN_FRAMERATE": 1,
        "MAINTAIN_RESOLUTION": 2,
        "MAINTAIN_FRAMERATE_AND_RESOLUTION": 4,
    }
    official = pytest.importorskip("livekit.rtc")
    assert {m.name: int(m) for m in official.DegradationPreference} == {
        m.name: int(m) for m in DegradationPreference
    }
    options = rtc.TrackPublishOptions(
        degradation_preference=DegradationPreference.MAINTAIN_RESOLUTION
    )
    assert options.degradation_preference == 2
