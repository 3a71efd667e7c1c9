"""rtc.jupyter: the embedded room page, and the rich display of frames and participants.

Each is rendered and read back: the PNG decodes with PyAV to the frame's pixels, the
audio player's WAV is the frame, the tables have the right rows, and the room page
carries the livekit-client bundle and loads nothing from elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import sys
import types
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from livekit.protocol import models as proto_models

from livekit_py import rtc
from livekit_py.rtc import jupyter
from livekit_py.rtc.track_publication import RemoteTrackPublication

RESOURCES = Path(jupyter.__file__).parent / "resources"
BUNDLE = RESOURCES / "livekit-client" / "livekit-client.umd.js"
ROOT = Path(__file__).resolve().parents[2]


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text of table cells by row."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[list[str]] = []
        self.captions: list[str] = []
        self.scripts: list[str] = []
        self._cell: list[str] | None = None
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th", "caption", "script"):
            self._cell, self._in = [], tag

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in and self._cell is not None:
            text = "".join(self._cell)
            if tag in ("td", "th"):
                self.rows[-1].append(text)
            elif tag == "caption":
                self.captions.append(text)
            else:
                self.scripts.append(text)
            self._cell = self._in = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(text: str) -> _Elements:
    parser = _Elements()
    parser.feed(text)
    parser.close()
    return parser


def decode_png(png: bytes) -> np.ndarray:
    with av.open(io.BytesIO(png), format="png_pipe") as container:
        frame = next(container.decode(video=0))
        out: np.ndarray = frame.to_ndarray(format="rgb24")
        return out


# -- VideoFrame._repr_png_ ---------------------------------------------------------


def _rgba(width: int, height: int, seed: int) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    return pixels


@pytest.mark.parametrize(("width", "height"), [(64, 48), (33, 17), (1, 1)])
def test_png_of_an_rgba_frame_decodes_to_its_pixels(width: int, height: int) -> None:
    pixels = _rgba(width, height, seed=width)
    frame = rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, pixels.tobytes())
    png = frame._repr_png_()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert np.array_equal(decode_png(png), pixels[..., :3])


@pytest.mark.parametrize(
    "buffer_type",
    [
        rtc.VideoBufferType.I420,
        rtc.VideoBufferType.NV12,
        rtc.VideoBufferType.BGRA,
        rtc.VideoBufferType.I444,
        rtc.VideoBufferType.I010,
    ],
)
def test_png_of_any_layout_is_its_rgb24_conversion(buffer_type: int) -> None:
    width, height = 40, 30
    source = rtc.VideoFrame(
        width, height, rtc.VideoBufferType.RGBA, _rgba(width, height, seed=7).tobytes()
    )
    frame = source.convert(buffer_type)
    expected = np.frombuffer(frame.convert(rtc.VideoBufferType.RGB24).data, np.uint8)
    decoded = decode_png(frame._repr_png_())
    assert decoded.shape == (height, width, 3)
    assert np.array_equal(decoded.reshape(-1), expected)


def test_png_bytes_rejects_what_is_not_an_rgb_image() -> None:
    with pytest.raises(ValueError, match="rgb must be uint8"):
        jupyter.png_bytes(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="rgb must be uint8"):
        jupyter.png_bytes(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="rgb must be uint8"):
        jupyter.png_bytes(np.zeros((0, 4, 3), np.uint8))


# -- AudioFrame._repr_html_ ---------------------------------------------------------


def _sine_frame(rate: int, channels: int, seconds: float, amplitude: float) -> rtc.AudioFrame:
    n = int(rate * seconds)
    t = np.arange(n) / rate
    mono = (amplitude * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    samples = np.stack([mono // (c + 1) for c in range(channels)], axis=1)
    return rtc.AudioFrame(samples.tobytes(), rate, channels, n)


def test_audio_frame_renders_a_player_whose_wav_is_the_frame() -> None:
    frame = _sine_frame(16000, 2, 0.5, 0.8)
    page = parse(frame._repr_html_())
    audio = [attrs for tag, attrs in page.tags if tag == "audio"]
    assert len(audio) == 1 and "controls" in audio[0]
    src = audio[0]["src"] or ""
    prefix = "data:audio/wav;base64,"
    assert src.startswith(prefix)
    assert base64.b64decode(src[len(prefix) :]) == frame.to_wav_bytes()
    # PyAV reads the WAV back as the frame's samples
    with av.open(io.BytesIO(base64.b64decode(src[len(prefix) :]))) as container:
        stream = container.streams.audio[0]
        assert (stream.rate, stream.channels) == (16000, 2)
        decoded = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(stream)])
    assert np.array_equal(decoded, np.frombuffer(frame.data, np.int16))


def test_the_waveform_has_a_lane_per_channel_drawing_its_envelope() -> None:
    frame = _sine_frame(48000, 2, 0.2, 0.8)
    page = parse(frame._repr_html_())
    svg = [attrs for tag, attrs in page.tags if tag == "svg"]
    assert len(svg) == 1
    lane = 48
    assert svg[0]["height"] == str(2 * lane)
    polygons = [attrs["points"] or "" for tag, attrs in page.tags if tag == "polygon"]
    assert len(polygons) == 2
    for channel, points in enumerate(polygons):
        ys = np.array([float(p.split(",")[1]) for p in points.split()])
        middle = channel * lane + lane / 2
        # channel c has amplitude 0.8 / (c + 1): the envelope reaches that far each way
        reach = 0.8 / (channel + 1) * (lane / 2 - 1)
        assert ys.min() == pytest.approx(middle - reach, abs=1.0)
        assert ys.max() == pytest.approx(middle + reach, abs=1.5)


def test_a_silent_or_tiny_frame_still_renders() -> None:
    for frame in (rtc.AudioFrame.create(48000, 1, 480), rtc.AudioFrame.create(8000, 1, 3)):
        page = parse(frame._repr_html_())
        assert [tag for tag, _ in page.tags].count("audio") == 1
        assert [tag for tag, _ in page.tags].count("polygon") == 1
    empty = parse(rtc.AudioFrame.create(48000, 1, 0)._repr_html_())
    assert [tag for tag, _ in empty.tags].count("polygon") == 0


# -- participants and rooms -------------------------------------------------------------


def _track(sid: str, kind: Any, source: Any, name: str, **kw: Any) -> proto_models.TrackInfo:
    return proto_models.TrackInfo(sid=sid, type=kind, source=source, name=name, **kw)


def test_a_participant_shows_a_row_per_publication() -> None:
    p = rtc.RemoteParticipant(
        proto_models.ParticipantInfo(identity="alice", name="Alice <A>", sid="PA_alice")
    )
    mic = _track(
        "TR_mic",
        proto_models.TrackType.AUDIO,
        proto_models.TrackSource.MICROPHONE,
        "mic",
        mime_type="audio/opus",
        muted=True,
    )
    cam = _track(
        "TR_cam",
        proto_models.TrackType.VIDEO,
        proto_models.TrackSource.CAMERA,
        "cam",
        mime_type="video/VP8",
        width=640,
        height=360,
        simulcast=True,
    )
    p._add_publication(RemoteTrackPublication(mic))
    p._add_publication(RemoteTrackPublication(cam))
    text = p._repr_html_()
    assert "Alice &lt;A&gt;" in text  # escaped
    page = parse(text)
    assert page.captions == ["RemoteParticipant 'alice' (Alice <A>), PA_alice"]
    assert page.rows[0] == ["track", "kind", "source", "name", "details"]
    assert page.rows[1:] == [
        ["TR_mic", "audio", "microphone", "mic", "audio/opus, muted, not subscribed"],
        ["TR_cam", "video", "camera", "cam", "video/VP8, 640x360, simulcast, not subscribed"],
    ]


def test_a_participant_without_tracks_says_so() -> None:
    p = rtc.RemoteParticipant(proto_models.ParticipantInfo(identity="bob", sid="PA_bob"))
    page = parse(p._repr_html_())
    assert page.captions == ["RemoteParticipant 'bob', PA_bob: publishes nothing"]
    assert page.rows == [["track", "kind", "source", "name", "details"]]


def test_a_room_that_never_joined_shows_an_empty_table() -> None:
    page = parse(rtc.Room()._repr_html_())
    assert page.captions == ["Room (not joined), disconnected"]
    assert page.rows == [["identity", "name", "", "publishes"]]


# -- room_html / display_room -----------------------------------------------------------


def test_the_bundle_is_the_pinned_livekit_client_unmodified() -> None:
    assert hashlib.sha256(BUNDLE.read_bytes()).hexdigest() == jupyter._BUNDLE_SHA256
    assert f'"{jupyter.LIVEKIT_CLIENT_VERSION}"' in BUNDLE.read_text()
    assert (
        (RESOURCES / "livekit-client" / "LICENSE")
        .read_text()
        .startswith("\n                                 Apache License")
    )


def test_the_bundle_version_is_the_one_the_browser_tests_pin() -> None:
    package = ROOT / "tests" / "browser" / "package.json"
    if not package.exists():
        pytest.skip("no tests/browser/package.json in this tree")
    pinned = json.loads(package.read_text())["dependencies"]["livekit-client"]
    assert pinned == jupyter.LIVEKIT_CLIENT_VERSION


def _srcdoc(room: jupyter.RoomHTML) -> tuple[dict[str, str | None], str]:
    page = parse(room.data)
    frames = [attrs for tag, attrs in page.tags if tag == "iframe"]
    assert len(frames) == 1
    return frames[0], frames[0]["srcdoc"] or ""


_EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def test_room_html_inlines_the_bundle_and_loads_nothing_from_elsewhere() -> None:
    room = jupyter.room_html("wss://example.test:7880", "tok.en", width="100%", height="200px")
    assert room._repr_html_() == room.data == str(room)
    frame, inner = _srcdoc(room)
    assert (frame["width"], frame["height"]) == ("100%", "200px")
    assert "microphone" in (frame["allow"] or "")
    bundle = BUNDLE.read_text()
    body = bundle.split("\n//# sourceMappingURL=")[0]
    assert body in inner
    assert "sourceMappingURL" not in inner
    page = parse(inner)
    # no script, stylesheet, image or frame is loaded from a URL
    assert not [attrs for _, attrs in page.tags if "src" in attrs or "href" in attrs]
    assert not _EXTERNAL.search(inner)
    # outside the bundle, no URL at all but the server's
    outside = inner.replace(body, "")
    assert re.findall(r"(?:wss?|https?)://[^\s\"'<]+", outside) == ["wss://example.test:7880"]
    config = json.loads(page.scripts[1])
    assert config == {"url": "wss://example.test:7880", "token": "tok.en"}


def test_the_url_and_token_cannot_break_out_of_the_page() -> None:
    token = '</script><script>alert("x")</script>&'
    room = jupyter.room_html("ws://h/</script>", token, width="1px", height="1px")
    _, inner = _srcdoc(room)
    page = parse(inner)
    assert len(page.scripts) == 3  # the bundle, the configuration, the page's own code
    config = json.loads(page.scripts[1])
    assert config == {"url": "ws://h/</script>", "token": token}


def test_room_html_in_colab_is_the_page_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    room = jupyter.room_html("ws://127.0.0.1:7880", "t", width="100%", height="110px")
    assert room.data.startswith("<!doctype html>")
    assert "iframe" not in room.data


def test_room_html_rejects_an_empty_url_or_token() -> None:
    with pytest.raises(ValueError, match="url must be a non-empty string"):
        jupyter.room_html("", "t", width="1", height="1")
    with pytest.raises(ValueError, match="token must be a non-empty string"):
        jupyter.room_html("ws://x", None, width="1", height="1")  # type: ignore[arg-type]


def test_display_room_displays_the_room_through_ipython(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[Any] = []
    ipython = types.ModuleType("IPython")
    display_module = types.ModuleType("IPython.display")
    display_module.display = shown.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display_module)
    jupyter.display_room("ws://127.0.0.1:7880", "tok")
    assert len(shown) == 1 and isinstance(shown[0], jupyter.RoomHTML)
    frame, _ = _srcdoc(shown[0])
    assert (frame["width"], frame["height"]) == ("100%", "110px")


def test_display_room_without_ipython_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "IPython", None)
    monkeypatch.setitem(sys.modules, "IPython.display", None)
    with pytest.raises(ImportError, match="pip install ipython"):
        jupyter.display_room("ws://127.0.0.1:7880", "tok")


def test_the_page_script_is_valid_javascript(tmp_path: Path) -> None:
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    room = jupyter.room_html("ws://127.0.0.1:7880", "t", width="1", height="1")
    _, inner = _srcdoc(room)
    own = parse(inner).scripts[2]
    script = tmp_path / "page.js"
    script.write_text(own)
    subprocess.run([node, "--check", str(script)], check=True, timeout=60)
