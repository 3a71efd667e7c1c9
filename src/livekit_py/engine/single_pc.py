"""Single peer connection mode: its pure parts (no sockets, no aiortc objects).

With ``/rtc/v1`` (``RoomOptions.single_peer_connection``) one peer connection carries
everything: we always offer and the server always answers. Our tracks go out on
send-only m-lines as before; the server's media comes back on *receive-only* m-lines
that we add to our offers, three audio and three video at first (as the official
SDKs do, so that the tracks subscribed at join time fit in the first answer), and as
many more as a ``MediaSectionsRequirement`` asks for when the server holds more
tracks for us than we have free m-lines (a requirement of 0 and 0 only asks for a
new offer: an m-line was freed or filled). The answer says which of our receive-only
m-lines now carry a track (``sendonly``, with ``mid_to_track_id``); the data channels
are our own ``_reliable``/``_lossy`` ones, which the server also sends on.
"""

from __future__ import annotations

from aiortc.sdp import SessionDescription

from ..log import get_logger

logger = get_logger("engine.single_pc")

#: Receive-only m-lines of the first offer, as the official JS and Rust SDKs add.
INITIAL_AUDIO_SECTIONS = 3
INITIAL_VIDEO_SECTIONS = 3

#: The most receive-only m-lines of one kind that one requirement may add: more is
#: not a real room's need (each is one subscribed track) but a broken server's.
MAX_SECTIONS_PER_REQUIREMENT = 64


def requested_sections(num_audios: int, num_videos: int) -> tuple[int, int]:
    """How many receive-only audio and video m-lines to add for a MediaSectionsRequirement.

    The counts are the server's; a count above :data:`MAX_SECTIONS_PER_REQUIREMENT`
    is cut to it (and logged), a negative one (impossible in the uint32 fields, but
    this is also called with plain ints) counts as none.
    """
    out: list[int] = []
    for kind, count in (("audio", num_audios), ("video", num_videos)):
        wanted = max(0, int(count))
        if wanted > MAX_SECTIONS_PER_REQUIREMENT:
            logger.warning(
                "the server asked for %d receive-only %s m-lines; adding %d",
                wanted,
                kind,
                MAX_SECTIONS_PER_REQUIREMENT,
            )
            wanted = MAX_SECTIONS_PER_REQUIREMENT
        out.append(wanted)
    return out[0], out[1]


def answered_codecs(sdp: str, kind: str) -> dict[str, dict[int, str]]:
    """Payload type -> MIME type (``video/VP8``) of each ``kind`` m-line of ``sdp``, by mid.

    What was negotiated for receiving: from our answer with two peer connections,
    from the server's answer with one. Raises what aiortc's parser raises on SDP it
    cannot read.
    """
    return {
        media.rtp.muxId: {
            c.payloadType: c.mimeType for c in media.rtp.codecs if c.payloadType is not None
        }
        for media in SessionDescription.parse(sdp).media
        if media.kind == kind and media.rtp.muxId
    }


_DIRECTIONS = ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive")


def answer_for_aiortc(answer_sdp: str) -> tuple[str, list[str]]:
    """The server's answer as aiortc is given it: m-lines that carry nothing made inactive.

    livekit-server answers each of our receive-only m-lines ``sendonly``, also the
    ones it has no track on yet (no ``a=ssrc``). aiortc would start a receiver on each
    of them with no SSRC; with several receivers of one payload type it then routes
    the packets of an SSRC it was never told to none of them. Made ``inactive`` in
    the copy aiortc applies, such an m-line gets its receiver started (with the
    track's SSRC) by the answer that first puts a track on it.

    Returns:
        The SDP for aiortc, and the mids made inactive.
    """
    newline = "\r\n" if "\r\n" in answer_sdp else "\n"
    lines = [line for line in answer_sdp.replace("\r\n", "\n").split("\n") if line]
    sections: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    idled: list[str] = []
    for section in sections[1:]:
        if not section[0].startswith(("m=audio", "m=video")):
            continue
        if any(line.startswith("a=ssrc:") for line in section):
            continue
        if "a=sendonly" not in section and "a=sendrecv" not in section:
            continue
        mid = next((line[len("a=mid:") :] for line in section if line.startswith("a=mid:")), "")
        idled.append(mid)
        section[:] = ["a=inactive" if line in _DIRECTIONS else line for line in section]
    if not idled:
        return answer_sdp, []
    return newline.join(line for section in sections for line in section) + newline, idled


def sending_ssrcs(sdp: str) -> dict[str, tuple[int, int | None]]:
    """Mid -> (SSRC, its retransmission SSRC or None) of each m-line that names one.

    The media SSRC is the first of an ``a=ssrc-group:FID`` when there is one (its
    second repairs it), else the first ``a=ssrc``.
    """
    out: dict[str, tuple[int, int | None]] = {}
    for media in SessionDescription.parse(sdp).media:
        if media.kind not in ("audio", "video") or not media.rtp.muxId or not media.ssrc:
            continue
        fid = next((g for g in media.ssrc_group if g.semantic == "FID" and len(g.items) == 2), None)
        if fid is not None:
            out[media.rtp.muxId] = (int(fid.items[0]), int(fid.items[1]))
        else:
            out[media.rtp.muxId] = (media.ssrc[0].ssrc, None)
    return out
