"""Rooms and media in Jupyter notebooks.

:func:`room_html` and :func:`display_room` are the official SDK's: they embed a LiveKit
room in a notebook output cell, so that whoever runs the notebook can talk to the
participants the Python code runs (an agent, a bot, a recorder). The page runs the
JavaScript SDK ``livekit-client``, whose bundle ships inside this package (see
``resources/livekit-client/README.md``): it loads nothing from the network but the room
itself.

The rest of the module renders our own objects for IPython's rich display: a
:class:`~livekit_py.rtc.VideoFrame` shows as a PNG image (``_repr_png_``), an
:class:`~livekit_py.rtc.AudioFrame` as a player with its waveform, and a ``Room`` or a
participant as a short table of who is there and what they publish (``_repr_html_``).
Those methods call the helpers below; nothing here is imported until they run.

IPython is only needed by :func:`display_room`; :func:`room_html` returns a
:class:`RoomHTML`, which IPython displays like its own ``HTML`` object (the official
SDK's return value) and which holds the text in ``data`` as that one does.
"""

from __future__ import annotations

import base64
import functools
import html
import importlib
import json
import re
import struct
import sys
import zlib
from collections.abc import Sequence
from importlib.resources import files
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

__all__ = ["LIVEKIT_CLIENT_VERSION", "RoomHTML", "display_room", "room_html"]

#: The version of the ``livekit-client`` bundle inlined by :func:`room_html`.
LIVEKIT_CLIENT_VERSION = "2.23.0"
# sha256 of resources/livekit-client/livekit-client.umd.js, the file npm ships unmodified
_BUNDLE_SHA256 = "fb646f2260d84f91238d0a2dc10726c456631d6a26c7cafc43cfee5959b4d31d"

_URL_PLACEHOLDER = '"##livekit-url-placeholder##"'
_TOKEN_PLACEHOLDER = '"##livekit-token-placeholder##"'
_BUNDLE_MARK = "/*@livekit-client-bundle@*/"
_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.MULTILINE)


class RoomHTML:
    """The HTML of a room, as :func:`room_html` returns it.

    IPython (Jupyter, Colab, VS Code) shows it through ``_repr_html_``; ``data`` holds the
    text, as in IPython's ``HTML`` (which the official SDK returns), e.g. for
    ``ipywidgets.HTML(value=room.data)``.
    """

    def __init__(self, data: str) -> None:
        self.data = data

    def _repr_html_(self) -> str:
        return self.data

    def __html__(self) -> str:
        return self.data

    def __str__(self) -> str:
        return self.data

    def __repr__(self) -> str:
        return f"RoomHTML({len(self.data)} characters)"


def _resource_path(*parts: str) -> Traversable:
    path = files("livekit_py.rtc").joinpath("resources")
    for part in parts:
        path = path.joinpath(part)
    return path


def _resource(*parts: str) -> str:
    return _resource_path(*parts).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _bundle() -> str:
    """The livekit-client UMD bundle, ready to sit inside a ``<script>`` element."""
    text = _resource("livekit-client", "livekit-client.umd.js")
    if "</script" in text.lower():  # would end the inline script early; never in 2.23.0
        raise RuntimeError("the livekit-client bundle contains '</script' and cannot be inlined")
    # the source map is not shipped: drop the comment that points to it
    return _SOURCE_MAP.sub("", text)


def _js_string(value: str) -> str:
    """``value`` as a JSON string that is safe inside an HTML ``<script>`` element."""
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _page(url: str, token: str) -> str:
    template = _resource("jupyter-html", "index.html")
    before, mark, after = template.partition(_BUNDLE_MARK)
    if not mark:
        raise RuntimeError("resources/jupyter-html/index.html lost its bundle marker")
    after = after.replace(_URL_PLACEHOLDER, _js_string(url))
    after = after.replace(_TOKEN_PLACEHOLDER, _js_string(token))
    return before + _bundle() + after


def room_html(url: str, token: str, *, width: str, height: str) -> RoomHTML:
    """The HTML of a LiveKit room for a notebook cell.

    The page joins the room with ``token`` as soon as it is shown, plays what the other
    participants publish, and has buttons for the microphone, the camera and leaving.
    Outside Google Colab it is wrapped in an ``<iframe srcdoc=...>`` of the given size
    (Colab already puts every output in an iframe).

    Args:
        url: The server's WebSocket URL, e.g. ``ws://127.0.0.1:7880``.
        token: A join token for the person in front of the notebook.
        width: The CSS width of the iframe, e.g. ``"100%"``.
        height: The CSS height of the iframe, e.g. ``"110px"``.

    Returns:
        The page, which a notebook renders (``_repr_html_``); its text is in ``data``.

    Raises:
        ValueError: If ``url`` or ``token`` is not a non-empty string.

    Important:
        The HTML contains ``url`` and ``token`` in plain text. Do not save notebooks
        with long-lived tokens in their outputs.
    """
    for name, value in (("url", url), ("token", token)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    text = _page(url, token)
    if "google.colab" not in sys.modules:
        # the leading space keeps IPython from suggesting its IFrame class, which cannot
        # take srcdoc
        text = (
            f' <iframe width="{html.escape(width, quote=True)}" '
            f'height="{html.escape(height, quote=True)}" frameborder="0" '
            f'allow="microphone; camera; autoplay" '
            f'srcdoc="{html.escape(text, quote=True)}"></iframe>'
        )
    return RoomHTML(text)


def display_room(url: str, token: str, *, width: str = "100%", height: str = "110px") -> None:
    """Show a LiveKit room in the current notebook output (Jupyter or Google Colab).

    Args:
        url: The server's WebSocket URL.
        token: A join token for the person in front of the notebook.
        width: The CSS width of the room, ``"100%"`` by default.
        height: The CSS height; the default fits the control bar and the list of
            participants; give more (e.g. ``"400px"``) to see video.

    Raises:
        ImportError: If IPython is not installed.
        ValueError: If ``url`` or ``token`` is not a non-empty string.
    """
    try:
        ipython_display = importlib.import_module("IPython.display")
    except ImportError as exc:
        raise ImportError(
            "display_room needs IPython (pip install ipython); room_html works without it"
        ) from exc
    ipython_display.display(room_html(url, token, width=width, height=height))


# -- rich display of our own objects --------------------------------------------------


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an image as a PNG file (8-bit RGB, no interlacing).

    Args:
        rgb: ``uint8`` pixels shaped ``(height, width, 3)``.

    Returns:
        The bytes of the PNG file.

    Raises:
        ValueError: If ``rgb`` is not a non-empty uint8 array of that shape.
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise ValueError(
            f"rgb must be uint8 shaped (height, width, 3), got {rgb.dtype} {rgb.shape}"
        )
    height, width = rgb.shape[:2]
    # every row starts with its filter type; 0 (none) leaves the work to zlib
    rows = np.zeros((height, 1 + 3 * width), dtype=np.uint8)
    rows[:, 1:] = rgb.reshape(height, 3 * width)

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, truecolour
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


_WAVE_WIDTH = 480
_WAVE_LANE = 48


def waveform_svg(samples: np.ndarray, *, width: int = _WAVE_WIDTH, lane: int = _WAVE_LANE) -> str:
    """An inline SVG of the waveform: each channel's min/max envelope in its own lane.

    Args:
        samples: ``int16`` samples shaped ``(samples_per_channel, num_channels)``.
        width: Columns of the drawing (at most one per sample).
        lane: Height of each channel's lane in pixels.

    Returns:
        The ``<svg>`` element.
    """
    count, channels = samples.shape
    columns = max(1, min(width, count))
    height = lane * channels
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{columns}" height="{height}" '
        f'viewBox="0 0 {columns} {height}" role="img" aria-label="waveform">',
        f'<rect width="{columns}" height="{height}" fill="#f6f8fa"/>',
    ]
    if count:
        # the samples of column c are [edges[c], edges[c + 1])
        edges = (np.arange(columns) * count) // columns
        scaled = samples.astype(np.float64) / 32768.0
        highs = np.maximum.reduceat(scaled, edges, axis=0)
        lows = np.minimum.reduceat(scaled, edges, axis=0)
        x = np.arange(columns, dtype=np.float64) + 0.5
        half = lane / 2
        for ch in range(channels):
            middle = ch * lane + half
            top = middle - highs[:, ch] * (half - 1)
            bottom = middle - lows[:, ch] * (half - 1)
            # the envelope's outline: along the top, then back along the bottom
            xs = np.concatenate([x, x[::-1]])
            ys = np.concatenate([top, bottom[::-1] + 0.5])
            pairs = zip(xs.tolist(), ys.tolist(), strict=True)
            points = " ".join(f"{a:.1f},{b:.1f}" for a, b in pairs)
            parts.append(f'<polygon points="{points}" fill="#1f8cf9" stroke="none"/>')
    parts.append("</svg>")
    return "".join(parts)


def audio_html(wav: bytes, samples: np.ndarray, sample_rate: int, title: str) -> str:
    """A player for a sound: its waveform and an ``<audio>`` element with the WAV inline.

    Args:
        wav: The sound as a WAV file.
        samples: Its ``int16`` samples shaped ``(samples_per_channel, num_channels)``.
        sample_rate: Samples per second of each channel.
        title: The line above the player.

    Returns:
        An HTML fragment.
    """
    source = "data:audio/wav;base64," + base64.b64encode(wav).decode("ascii")
    return (
        '<div class="livekit-py-audio">'
        f"<div><code>{html.escape(title)}</code></div>"
        f"<div>{waveform_svg(samples)}</div>"
        f'<audio controls preload="metadata" src="{source}"></audio>'
        "</div>"
    )


def table_html(caption: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A small HTML table; every cell is escaped.

    Args:
        caption: The line above the table.
        headers: The column titles.
        rows: The cells, one sequence per row, as many as ``headers``.

    Returns:
        An HTML fragment.
    """
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return (
        f'<table class="livekit-py"><caption style="text-align:left">{html.escape(caption)}'
        f"</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
