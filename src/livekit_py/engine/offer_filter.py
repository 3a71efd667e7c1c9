"""Offers with media sections aiortc cannot receive, answered with those sections rejected.

aiortc raises inside ``setRemoteDescription`` when one audio or video section of
an offer has no codec it knows (a video section offering only VP9, AV1 or
H.265, say), and then nothing of that offer is applied. The subscriber must
still answer: the other sections carry other publishers' tracks. So before the
offer reaches aiortc, each such section is found (:func:`unreceivable_sections`)
and turned, in the copy aiortc sees, into an inactive section with one codec
aiortc knows (:func:`offer_for_aiortc`): aiortc keeps one transceiver per m-line
in the offer's order, so the section stays where it is and later offers that
reuse the m-line still line up. aiortc's answer is then edited before it goes
to the server (:func:`reject_in_answer`): each of those sections is answered
rejected, port 0 with the first format of the offer (RFC 3264 section 6), and
left out of the BUNDLE group (RFC 8843 section 7.3.3).

Everything here is pure text work on SDP, tested without sockets.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortc.codecs import CODECS
from aiortc.rtcpeerconnection import find_common_codecs
from aiortc.sdp import SessionDescription

__all__ = [
    "RejectedSection",
    "offer_for_aiortc",
    "reject_in_answer",
    "unreceivable_sections",
]

# The codec the copy of a rejected section offers aiortc instead (any it knows).
_STAND_IN = {"audio": "opus/48000/2", "video": "VP8/90000"}
_DIRECTIONS = ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive")
_CODEC_ATTRIBUTES = ("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")


@dataclass(frozen=True)
class RejectedSection:
    """One audio/video section of an offer that aiortc has no codec for."""

    index: int
    """Its position among the offer's m-lines."""
    mid: str
    kind: str
    codecs: tuple[str, ...]
    """The offered codecs (mime types), for the error message."""
    first_format: str
    """The offer's first payload type (the one format a rejected answer lists)."""
    first_rtpmap: str | None
    """The offer's ``a=rtpmap`` line for :attr:`first_format`, if it has one."""

    @property
    def reason(self) -> str:
        offered = ", ".join(dict.fromkeys(self.codecs)) or "no codec"
        return f"cannot receive {self.kind} m-line {self.mid}: offered {offered}, none supported"


def _split(sdp: str) -> tuple[list[str], list[list[str]], str]:
    """(session lines, one list of lines per m-section, the line ending)."""
    newline = "\r\n" if "\r\n" in sdp else "\n"
    lines = [line for line in sdp.replace("\r\n", "\n").split("\n") if line]
    session: list[str] = []
    sections: list[list[str]] = []
    for line in lines:
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        else:
            session.append(line)
    return session, sections, newline


def _join(session: list[str], sections: list[list[str]], newline: str) -> str:
    lines = session + [line for section in sections for line in section]
    return newline.join(lines) + newline


def unreceivable_sections(sdp: str) -> list[RejectedSection]:
    """The audio/video sections of ``sdp`` (an offer) with no codec aiortc can receive.

    Sections already rejected by the offerer (port 0) are not listed.

    Raises:
        ValueError: If ``sdp`` does not parse as SDP.
    """
    parsed = SessionDescription.parse(sdp)
    _, sections, _ = _split(sdp)
    if len(sections) != len(parsed.media):
        raise ValueError("the offer's m-lines could not be told apart")
    out: list[RejectedSection] = []
    for index, (media, lines) in enumerate(zip(parsed.media, sections, strict=True)):
        if media.kind not in CODECS or media.port == 0:
            continue
        if find_common_codecs(CODECS[media.kind], media.rtp.codecs):
            continue
        first = str(media.fmt[0]) if media.fmt else "0"
        rtpmap = next((x for x in lines if x.startswith(f"a=rtpmap:{first} ")), None)
        out.append(
            RejectedSection(
                index=index,
                mid=media.rtp.muxId,
                kind=media.kind,
                codecs=tuple(
                    c.mimeType for c in media.rtp.codecs if not c.mimeType.lower().endswith("/rtx")
                ),
                first_format=first,
                first_rtpmap=rtpmap,
            )
        )
    return out


def offer_for_aiortc(sdp: str, rejected: list[RejectedSection]) -> str:
    """``sdp`` with each rejected section made inactive and offering one codec aiortc knows."""
    if not rejected:
        return sdp
    session, sections, newline = _split(sdp)
    for section in rejected:
        lines = sections[section.index]
        words = lines[0].split()
        pt = section.first_format if section.first_format.isdigit() else "96"
        words[3:] = [pt]
        kept = [
            line
            for line in lines[1:]
            if not line.startswith(_CODEC_ATTRIBUTES) and line not in _DIRECTIONS
        ]
        stand_in = [f"a=rtpmap:{pt} {_STAND_IN[section.kind]}", "a=inactive"]
        sections[section.index] = [" ".join(words), *kept, *stand_in]
    return _join(session, sections, newline)


def reject_in_answer(answer: str, rejected: list[RejectedSection]) -> str:
    """aiortc's ``answer`` with each rejected section answered with port 0, out of the bundle.

    Raises:
        ValueError: If ``answer`` has fewer m-lines than the rejected sections need.
    """
    if not rejected:
        return answer
    session, sections, newline = _split(answer)
    for section in rejected:
        if section.index >= len(sections):
            raise ValueError(f"the answer has no m-line {section.index}")
        words = sections[section.index][0].split()
        profile = words[2] if len(words) > 2 else "UDP/TLS/RTP/SAVPF"
        lines = [
            f"m={section.kind} 0 {profile} {section.first_format}",
            "c=IN IP4 0.0.0.0",
            f"a=mid:{section.mid}",
            "a=inactive",
            "a=rtcp-mux",
        ]
        if section.first_rtpmap is not None:
            lines.append(section.first_rtpmap)
        sections[section.index] = lines
    mids = {s.mid for s in rejected}
    for i, line in enumerate(session):
        if line.startswith("a=group:BUNDLE"):
            items = [m for m in line.split()[1:] if m not in mids]
            session[i] = " ".join(["a=group:BUNDLE", *items])
    return _join(session, sections, newline)
