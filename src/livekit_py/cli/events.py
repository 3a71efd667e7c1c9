"""Room events as records (plain dicts) and records as lines of text or JSON.

``join`` turns each event into a record with :func:`participant_fields`,
:func:`publication_fields` and :func:`payload_fields`, then prints it with
:func:`format_record` (one aligned line for people) or :func:`json_record` (one JSON
object a line, for scripts). Both are pure and unit-tested.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import Protocol

from livekit_py import rtc

__all__ = [
    "CHAT_TOPIC",
    "LEGACY_CHAT_TOPIC",
    "TRANSCRIPTION_TOPIC",
    "enum_name",
    "format_bytes",
    "format_record",
    "json_record",
    "parse_legacy_chat",
    "participant_fields",
    "payload_fields",
    "publication_fields",
    "record",
]

CHAT_TOPIC = "lk.chat"
"""The text stream topic of LiveKit's chat (components-js, the agents playground)."""
LEGACY_CHAT_TOPIC = "lk-chat-topic"
"""The data packet topic of the chat of older LiveKit components (JSON messages)."""
TRANSCRIPTION_TOPIC = "lk.transcription"
"""The text stream topic of agents' transcriptions."""

Record = dict[str, object]


class _Participant(Protocol):
    @property
    def identity(self) -> str: ...
    @property
    def sid(self) -> str: ...
    @property
    def name(self) -> str: ...


class _Publication(Protocol):
    @property
    def sid(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> int: ...
    @property
    def source(self) -> int: ...
    @property
    def mime_type(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...


_PREFIXES = ("KIND_", "SOURCE_", "CONN_", "QUALITY_")


def enum_name(enum: object, value: int) -> str:
    """``TrackKind.KIND_AUDIO`` → ``audio``, ``TrackSource.SOURCE_SCREENSHARE`` → ``screenshare``.

    Unknown values give their number as text.
    """
    try:
        name = str(enum.Name(value))  # type: ignore[attr-defined]
    except (ValueError, AttributeError):
        return str(value)
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return name.lower()


def record(event: str, **fields: object) -> Record:
    """A record of ``event`` at the current wall-clock time (``time``, Unix seconds)."""
    return {"time": round(time.time(), 3), "event": event, **fields}


def participant_fields(participant: _Participant | None) -> Record:
    """Who: identity, and the name when it differs."""
    if participant is None:
        return {"identity": ""}
    out: Record = {"identity": participant.identity}
    if participant.name and participant.name != participant.identity:
        out["name"] = participant.name
    if participant.sid:
        out["participant_sid"] = participant.sid
    return out


def publication_fields(publication: _Publication) -> Record:
    """What track: sid, kind, source, name, codec, and the size of a video."""
    out: Record = {
        "track_sid": publication.sid,
        "kind": enum_name(rtc.TrackKind, publication.kind),
        "source": enum_name(rtc.TrackSource, publication.source),
    }
    if publication.name:
        out["track_name"] = publication.name
    if publication.mime_type:
        out["mime_type"] = publication.mime_type
    if publication.kind == rtc.TrackKind.KIND_VIDEO and publication.width:
        out["width"] = publication.width
        out["height"] = publication.height
    return out


def payload_fields(data: bytes) -> Record:
    """A payload as ``text`` when it is UTF-8, else as ``base64``; with its ``size``."""
    try:
        return {"size": len(data), "text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"size": len(data), "base64": base64.b64encode(data).decode("ascii")}


def parse_legacy_chat(data: bytes) -> str | None:
    """The message of an older components' chat packet (``{"message": ...}``), else None."""
    try:
        decoded = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(decoded, dict) and isinstance(decoded.get("message"), str):
        return str(decoded["message"])
    return None


def format_bytes(count: float) -> str:
    """``1536`` → ``1.5 KiB``; bytes below 1 KiB as they are."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# the fields a line shows after the event name, in this order; the rest follow as key=value
_LEAD = ("identity", "kind", "source", "track_sid", "topic")
_HIDDEN = ("time", "event", "participant_sid", "text", "base64")


def _value(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if (not value or " " in value) else value
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def format_record(rec: Mapping[str, object]) -> str:
    """One line for people: ``HH:MM:SS.mmm event  identity ... key=value ... "text"``."""
    stamp = rec.get("time")
    if isinstance(stamp, (int, float)):
        clock = (
            time.strftime("%H:%M:%S", time.localtime(stamp)) + f".{int(stamp * 1000) % 1000:03d}"
        )
    else:
        clock = "--:--:--.---"
    parts = [clock, f"{rec.get('event', '?')!s:<22}"]
    for key in _LEAD:
        if key in rec and rec[key] != "":
            parts.append(f"{key}={_value(rec[key])}" if key == "topic" else _value(rec[key]))
    for key, value in rec.items():
        if key in _LEAD or key in _HIDDEN:
            continue
        parts.append(f"{key}={_value(value)}")
    if "text" in rec:
        parts.append(json.dumps(rec["text"], ensure_ascii=False))
    elif "base64" in rec:
        parts.append(f"base64:{rec['base64']}")
    return " ".join(parts)


def json_record(rec: Mapping[str, object]) -> str:
    """One line of JSON."""
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":"))
