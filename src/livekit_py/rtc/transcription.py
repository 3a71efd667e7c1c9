"""Transcriptions: text for what a participant said on one of its tracks.

They travel as ``DataPacket.transcription`` messages of the LiveKit protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

from livekit.protocol import models as proto_models


@dataclass
class TranscriptionSegment:
    """One piece of a transcription.

    ``start_time``/``end_time`` are in whatever unit the producer uses (LiveKit
    agents use milliseconds); ``final`` is False while the text may still change
    (segments with the same ``id`` replace each other).
    """

    id: str
    text: str
    start_time: int
    end_time: int
    language: str
    final: bool


@dataclass
class Transcription:
    """Segments transcribing the track ``track_sid`` of ``participant_identity``."""

    participant_identity: str
    track_sid: str
    segments: list[TranscriptionSegment]


def transcription_to_proto(transcription: Transcription) -> proto_models.Transcription:
    """The protocol message for ``transcription`` (raises ValueError on wrong types)."""
    if not isinstance(transcription, Transcription):
        raise ValueError(f"expected a Transcription, not {type(transcription).__name__}")
    if not isinstance(transcription.participant_identity, str):
        raise ValueError("Transcription.participant_identity must be a str")
    if not isinstance(transcription.track_sid, str):
        raise ValueError("Transcription.track_sid must be a str")
    segments = []
    for segment in transcription.segments:
        if not isinstance(segment, TranscriptionSegment):
            raise ValueError(
                f"Transcription.segments must hold TranscriptionSegment, "
                f"not {type(segment).__name__}"
            )
        for name in ("start_time", "end_time"):
            value = getattr(segment, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"TranscriptionSegment.{name} must be an int >= 0, not {value!r}")
        for name in ("id", "text", "language"):
            if not isinstance(getattr(segment, name), str):
                raise ValueError(f"TranscriptionSegment.{name} must be a str")
        segments.append(
            proto_models.TranscriptionSegment(
                id=segment.id,
                text=segment.text,
                start_time=segment.start_time,
                end_time=segment.end_time,
                final=bool(segment.final),
                language=segment.language,
            )
        )
    return proto_models.Transcription(
        transcribed_participant_identity=transcription.participant_identity,
        track_id=transcription.track_sid,
        segments=segments,
    )


def segments_from_proto(message: proto_models.Transcription) -> list[TranscriptionSegment]:
    """The segments of a received transcription message."""
    return [
        TranscriptionSegment(
            id=s.id,
            text=s.text,
            start_time=s.start_time,
            end_time=s.end_time,
            language=s.language,
            final=s.final,
        )
        for s in message.segments
    ]
