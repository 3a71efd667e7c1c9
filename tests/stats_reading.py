"""Reading ``stats`` messages the way official SDK code does: the same code for both SDKs.

Everything here takes a list of ``RtcStats`` messages, ours (``livekit_py.rtc.stats``) or
the official SDK's (``livekit.rtc.stats``), and reads them only through the official
field names, so a test that passes on both shows that code written for the official
SDK reads ours unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# every field of the W3C parts that names another entry by its id
_REFERENCES = (
    "codec_id",
    "transport_id",
    "remote_id",
    "local_id",
    "media_source_id",
    "playout_id",
    "local_candidate_id",
    "remote_candidate_id",
    "selected_candidate_pair_id",
    "local_certificate_id",
    "remote_certificate_id",
    "issuer_certificate_id",
)


def entries(stats: Iterable[Any], kind: str) -> list[Any]:
    """The entries of one kind (``inbound_rtp``, ``codec``...): ``s.<kind>`` of each."""
    return [getattr(s, kind) for s in stats if s.WhichOneof("stats") == kind]


def by_id(stats: Iterable[Any]) -> dict[str, tuple[str, Any]]:
    """Every entry by its ``rtc.id``: (its kind, the entry)."""
    out: dict[str, tuple[str, Any]] = {}
    for s in stats:
        kind = s.WhichOneof("stats")
        entry = getattr(s, kind)
        out[entry.rtc.id] = (kind, entry)
    return out


def dangling_references(stats: list[Any]) -> list[str]:
    """References (``codec_id``, ``transport_id``, ...) to ids no entry has; [] when all resolve.

    An empty (or unset) reference refers to nothing and is fine.
    """
    known = by_id(stats)
    missing: list[str] = []
    for stats_id, (kind, entry) in known.items():
        for part, _ in entry.ListFields():
            if part.message_type is None:
                continue
            section = getattr(entry, part.name)
            for name in _REFERENCES:
                if name not in section.DESCRIPTOR.fields_by_name:
                    continue
                target = getattr(section, name)
                if target and target not in known:
                    missing.append(f"{kind} {stats_id}: {part.name}.{name} = {target!r}")
    return missing


def codec_of(stats: list[Any], stream: Any) -> Any:
    """The ``codec`` part of the codec entry an RTP stream's ``stream.codec_id`` names."""
    found = by_id(stats).get(stream.stream.codec_id)
    assert found is not None, f"no codec entry {stream.stream.codec_id!r}"
    kind, entry = found
    assert kind == "codec", kind
    return entry.codec


def inbound(stats: list[Any], kind: str) -> list[Any]:
    """The ``inbound_rtp`` entries of one media kind (``audio``, ``video``)."""
    return [e for e in entries(stats, "inbound_rtp") if e.stream.kind == kind]


def outbound(stats: list[Any], kind: str) -> list[Any]:
    """The ``outbound_rtp`` entries of one media kind."""
    return [e for e in entries(stats, "outbound_rtp") if e.stream.kind == kind]


def selected_pairs(stats: list[Any]) -> list[Any]:
    """The ``candidate_pair`` parts of the pairs the transports say they selected."""
    known = by_id(stats)
    out = []
    for transport in entries(stats, "transport"):
        selected = transport.transport.selected_candidate_pair_id
        if selected and selected in known:
            out.append(known[selected][1].candidate_pair)
    return out


def data_channel(stats: list[Any], label: str) -> Any | None:
    """The ``dc`` part of the data channel entry labelled ``label``, None if there is none."""
    for entry in entries(stats, "data_channel"):
        if entry.dc.label == label:
            return entry.dc
    return None
