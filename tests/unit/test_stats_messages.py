"""Our stats messages are the official SDK's: same names, numbers, types and values.

protos/livekit_py_stats.proto is a copy of the official stats.proto (package
livekit_py.stats instead of livekit.proto) whose fields are optional instead of
required; everything else must match the installed official SDK's descriptor, so that
code reading the official ``livekit.rtc.stats`` messages reads ours.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor, FileDescriptor
from livekit.rtc._proto import stats_pb2 as official

import livekit_py
from livekit_py import rtc
from livekit_py._proto import livekit_py_stats_pb2 as ours


def _enum(e: EnumDescriptor, package: str) -> tuple[Any, ...]:
    return (e.full_name.removeprefix(package), tuple((v.name, v.number) for v in e.values))


def _shape(file: FileDescriptor, package: str) -> list[tuple[Any, ...]]:
    """Every message field (name, number, type, what it refers to, repeated, oneof)
    and every enum, with the package taken off the names."""
    out: list[tuple[Any, ...]] = []

    def name(d: Descriptor | EnumDescriptor | None) -> str | None:
        return d.full_name.removeprefix(package) if d is not None else None

    def message(m: Descriptor) -> None:
        for f in m.fields:
            oneof = f.containing_oneof
            out.append(
                (
                    name(m),
                    f.name,
                    f.number,
                    f.type,
                    name(f.message_type),
                    name(f.enum_type),
                    _is_repeated(f),
                    oneof.name if oneof is not None else None,
                )
            )
        for nested in m.nested_types:
            message(nested)
        out.extend(_enum(e, package) for e in m.enum_types)

    for m in file.message_types_by_name.values():
        message(m)
    out.extend(_enum(e, package) for e in file.enum_types_by_name.values())
    return sorted(out, key=repr)


def _is_repeated(f: FieldDescriptor) -> bool:
    # FieldDescriptor.is_repeated/is_required came with protobuf 6; label before
    if hasattr(f, "is_repeated"):
        return bool(f.is_repeated)
    return bool(f.label == f.LABEL_REPEATED)


def _is_required(f: FieldDescriptor) -> bool:
    if hasattr(f, "is_required"):
        return bool(f.is_required)
    return bool(f.label == f.LABEL_REQUIRED)


def test_the_messages_are_the_official_ones_field_for_field() -> None:
    assert _shape(ours.DESCRIPTOR, "livekit_py.stats.") == _shape(
        official.DESCRIPTOR, "livekit.proto."
    )


def test_what_the_official_requires_is_optional_here() -> None:
    """Unknown statistics stay unset instead of being zeros we made up."""
    required = [
        f
        for m in official.DESCRIPTOR.message_types_by_name.values()
        for f in m.fields
        if _is_required(f)
    ]
    assert required  # the official marks the fields required
    for m in ours.DESCRIPTOR.message_types_by_name.values():
        assert not [f.name for f in m.fields if _is_required(f)], m.name
    empty = ours.RtcStats(inbound_rtp=ours.RtcStats.InboundRtp())
    assert empty.IsInitialized()
    assert ours.RtcStats.FromString(empty.SerializeToString()) == empty
    assert not empty.inbound_rtp.inbound.HasField("jitter_buffer_delay")
    assert empty.inbound_rtp.inbound.jitter_buffer_delay == 0.0


def test_the_stats_module_has_every_official_name() -> None:
    official_names = {n for n in dir(official) if not n.startswith("_")}
    assert official_names <= set(dir(rtc.stats))
    assert official_names <= set(rtc.stats.__all__)
    assert rtc.stats.RtcStats is ours.RtcStats
    assert livekit_py.stats is rtc.stats
    assert rtc.stats.DC_OPEN == official.DC_OPEN
    assert rtc.stats.IceCandidatePairState.Name(rtc.stats.PAIR_SUCCEEDED) == "PAIR_SUCCEEDED"


def test_a_message_of_ours_reads_as_the_official_one_on_the_wire() -> None:
    """Same numbers and types: an official message parses into ours with every value."""
    theirs = official.RtcStats()
    theirs.inbound_rtp.rtc.id = "IT01A1"
    theirs.inbound_rtp.rtc.timestamp = 1_700_000_000_000_000
    theirs.inbound_rtp.stream.ssrc = 1
    theirs.inbound_rtp.stream.kind = "audio"
    theirs.inbound_rtp.stream.transport_id = "T01"
    theirs.inbound_rtp.stream.codec_id = "C"
    theirs.inbound_rtp.received.packets_received = 10
    theirs.inbound_rtp.received.packets_lost = -1
    theirs.inbound_rtp.received.jitter = 0.002
    mine = ours.RtcStats.FromString(theirs.SerializePartialToString())
    assert mine.WhichOneof("stats") == "inbound_rtp"
    assert mine.inbound_rtp.received.jitter == 0.002
    assert mine.inbound_rtp.received.packets_lost == -1
    assert not mine.inbound_rtp.HasField("inbound")
