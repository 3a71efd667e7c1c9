"""Every use of an aiortc or aioice private name, behind named functions.

livekit-py needs a few things aiortc and aioice have no public API for. They
all live here, and nowhere else in the package:

* :func:`install_encoder` / :func:`installed_encoder`: the encoder slot of
  ``RTCRtpSender`` (``RTCRtpSender.__encoder``). aiortc creates its own encoder
  on the first frame when the slot is empty; ours (Opus at the publisher's
  bitrate, VP8/H.264 with LiveKit's bitrate and frame-rate caps) go there
  before media flows.
* :func:`set_aiortc_target_bitrate` / :func:`aiortc_target_bitrate`: the
  private bitrate of aiortc's ``Vp8Encoder`` and ``H264Encoder``
  (``__target_bitrate``). aiortc's VP8 encoding code reads the private copy,
  not the ``target_bitrate`` property our encoders override, so our caps must
  be written there too (for H.264 it keeps aiortc's own accessor in step).
* :func:`watch_keyframe_requests`: the sender's key-frame request
  (``RTCRtpSender._send_keyframe``, which its RTCP handler calls on a PLI or FIR),
  replaced on one sender by one that also tells a callback: for pre-encoded frames
  aiortc's request (a flag ``encode`` reads, ``pack`` does not) must reach the
  upstream encoder instead. The import check also makes sure the sender still
  hands a track's ``av.Packet`` to its encoder's ``pack`` (``_next_encoded_frame``).
* :func:`ice_connections`: the aioice ``Connection`` under each ICE gatherer
  of a peer connection (``RTCIceGatherer._connection``).
* :func:`adopt_remote_ice_restart`: after the remote side of a connection
  restarted ICE (new ice-ufrag/ice-pwd in its description), makes the aioice
  connection use the new credentials and nominates its selected pairs again
  (``Connection._nominated``, ``Connection.build_request``), since aiortc's
  ICE transport starts once and keeps the old credentials for good.
* :func:`restart_local_ice`: new local ICE credentials on an aioice connection
  (``Connection._local_username`` / ``_local_password``, read-only properties
  otherwise), so that the next offer aiortc creates (it reads them through
  ``RTCIceGatherer.getLocalParameters``) restarts ICE: aiortc's
  ``createOffer()`` has no ``iceRestart`` option.
* :func:`prompt_remote_nomination`: when we are the controlled ICE agent, one more
  binding request on a pair as soon as both directions of its check have
  succeeded (``Connection.check_incoming`` / ``check_complete``, looked up on the
  instance, and ``Connection._check_list``). A pion agent (the LiveKit server)
  nominates a pair when a request arrives on a pair it already holds as
  succeeded, and otherwise only on its next check tick (200 ms): without this a
  subscriber connection waited that tick in about one join in twenty.
* :func:`read_queued_datagrams`: after each datagram asyncio reads from a UDP
  socket of an aioice connection (``Connection._protocols``), hands aioice what
  else is queued on it, so that a busy event loop does not fall behind its
  sockets (asyncio reads one datagram per turn).
* :func:`disable_consent_checks`: replaces ``Connection.query_consent`` on
  one aioice connection by a no-op, so that a consent loop started late (ICE
  completing while the connection is being closed) cannot outlive it.
* :func:`enlarge_receive_buffers`: a larger kernel receive buffer on the UDP
  sockets of an aioice connection (``Connection._protocols``, each protocol's
  asyncio transport), so that a burst arriving while the event loop is busy is
  queued instead of dropped by the kernel.
* :func:`install_receive_buffer` / :func:`installed_receive_buffer`: the jitter
  buffer slot of ``RTCRtpReceiver`` (``RTCRtpReceiver.__jitter_buffer``), which
  turns each received packet into complete encoded frames; ours replace
  aiortc's (:func:`divert_received_packets` for audio, the video frame
  assembler). A buffer that completes several frames with one packet hands the
  earlier ones to the receiver's decoder queue itself
  (``__decoder_queue``, through ``__timestamp_mapper`` and ``__codecs``, while
  ``__decoder_thread`` runs), as the packet handler does with the last one.
* :func:`register_rtp_stream` / :func:`unregister_rtp_stream` /
  :func:`send_rtp_bytes`: extra outgoing RTP streams on a DTLS transport, for
  simulcast (aiortc's ``RTCRtpSender`` has one SSRC). The transport's RTP router
  (``RTCDtlsTransport._rtp_router``, its ``register_sender`` /
  ``unregister_sender``) hands the RTCP about a registered SSRC (receiver
  reports, PLI/FIR, NACK) to the registered object's ``_handle_rtcp_packet``;
  packets go out through ``RTCDtlsTransport._send_rtp`` (SRTP-protected).
* :func:`route_received_ssrc`: the SSRCs a receiver that aiortc already started
  takes packets from (the RTP router's ``ssrc_table``, the receiver's
  ``__rtx_ssrc`` and ``__started``). aiortc registers an m-line's SSRCs once,
  when it starts its receiver; the server reuses m-lines for other tracks with
  other SSRCs, whose packets aiortc then drops as soon as a second receiver has
  the same payload type.
* :func:`depayloaded`: the codec payload aiortc's packet handler extracted
  from a received RTP packet (``RtpPacket._data``).
* :func:`set_frame_filter`: a filter in the receiver's jitter buffer slot that sees
  every complete frame before it reaches the decoder queue, and may replace or drop
  it (end-to-end decryption).
* :func:`received_rtp_timestamp`: the RTP timestamp a decoded frame of a receiver
  was sent with, from its ``pts`` and the receiver's timestamp mapper
  (``__timestamp_mapper``, whose ``_origin`` is the first RTP timestamp it mapped:
  aiortc decodes each frame with ``pts`` = RTP timestamp - origin, modulo 2**32).
* :class:`TransformingVp8Encoder` / :class:`TransformingH264Encoder`: aiortc's VP8
  and H.264 encoders with a :data:`~.frame_transform.FrameTransform` applied to each
  encoded frame where both ``encode`` and ``pack`` hand it to the packetizer
  (``Vp8Encoder._packetize``, ``H264Encoder._packetize``, and
  ``H264Encoder._split_bitstream`` to split the transformed access unit again).
  A transformed frame's last RTP packet carries at least its last
  :data:`TRAILER_ROOM` bytes whole (the server strips a packet trailer from the last
  packet only).

* :func:`observe_ice_checks`: times the connectivity and consent checks of an aioice
  connection for the candidate pair statistics. ``Connection.build_request`` is
  wrapped on the instance (every check, nomination and consent request is built
  there), and the ``request`` method of each pair's STUN protocol on its instance,
  the first time a request is built for the pair.
* :func:`ice_check_list` / :func:`nominated_pairs`: the candidate pairs of an aioice
  connection (``Connection._check_list``) and the nominated ones
  (``Connection._nominated``).
* :func:`dtls_details`: what a DTLS transport knows and aiortc does not report: its
  counters (``RTCDtlsTransport._get_stats``, the ``transport`` entry of aiortc's own
  statistics), its stats id (``_stats_id``), role (``_role``), both certificates
  (``__local_certificate``, its ``RTCCertificate._cert``; the peer's from the
  pyOpenSSL connection ``_ssl``), the negotiated cipher, protocol version and SRTP
  profile (``_ssl``).

At import the module checks that the installed aiortc and aioice still have
each of these (on the classes, or in the compiled code of the methods that
create and read them) and raises :class:`ImportError` naming what is missing
and the installed versions: a renamed internal fails loudly here instead of
turning a hook into a silent no-op.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import socket
import string
import types
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import aioice
import aiortc
from aioice import Connection
from aioice.candidate import Candidate
from aioice.ice import CandidatePair, StunProtocol
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCSctpTransport
from aiortc.codecs.base import Encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder, VpxPayloadDescriptor
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import VIDEO_TIME_BASE, convert_timebase
from aiortc.rtcdtlstransport import RTCCertificate, RTCDtlsTransport, RtpRouter
from aiortc.rtcicetransport import RTCIceGatherer
from aiortc.rtcrtpreceiver import TimestampMapper
from aiortc.rtp import AnyRtcpPacket, RtpPacket
from aiortc.stats import RTCTransportStats
from av.frame import Frame
from av.packet import Packet
from av.stream import Stream
from cryptography.hazmat.primitives.serialization import Encoding

from ..log import get_logger
from .frame_transform import FrameTransform

__all__ = [
    "AiortcVideoEncoder",
    "DtlsDetails",
    "EncodedFrame",
    "FrameBatchBuffer",
    "FrameFilter",
    "ReceiveBuffer",
    "TransformingH264Encoder",
    "TransformingVp8Encoder",
    "adopt_remote_ice_restart",
    "aiortc_target_bitrate",
    "depayloaded",
    "disable_consent_checks",
    "divert_received_packets",
    "dtls_details",
    "ice_check_list",
    "ice_connection_of",
    "ice_connections",
    "install_encoder",
    "install_receive_buffer",
    "installed_encoder",
    "installed_receive_buffer",
    "prompt_remote_nomination",
    "received_rtp_timestamp",
    "nominated_pairs",
    "observe_ice_checks",
    "register_rtp_stream",
    "restart_local_ice",
    "retransmit_sctp_now",
    "send_rtp_bytes",
    "set_aiortc_target_bitrate",
    "unregister_rtp_stream",
    "watch_keyframe_requests",
    "installed_frame_filter",
    "set_frame_filter",
    "StunObserver",
]

logger = get_logger("webrtc.aiortc_adapter")

AiortcVideoEncoder = Vp8Encoder | H264Encoder
"""The aiortc video encoders whose private bitrate :func:`set_aiortc_target_bitrate` writes."""

# The mangled names of the private attributes used below.
_SENDER_ENCODER = "_RTCRtpSender__encoder"
# RTCRtpSender: what its RTCP handler calls on a PLI/FIR, and the method that reads the
# track and encodes a frame or packs a packet.
_SEND_KEYFRAME = "_send_keyframe"
_NEXT_ENCODED_FRAME = "_next_encoded_frame"
_VP8_BITRATE = "_Vp8Encoder__target_bitrate"
_H264_BITRATE = "_H264Encoder__target_bitrate"
_GATHERER_CONNECTION = "_connection"
_QUERY_CONSENT = "query_consent"
_NOMINATED = "_nominated"
# A fresh nominating check this often, this many times, after a remote ICE restart.
NOMINATE_INTERVAL = 0.1
NOMINATE_ATTEMPTS = 30
# How long the last checks may still take after that before the restart is left to consent.
NOMINATE_WAIT = 5.0
_BUILD_REQUEST = "build_request"
_CHECK_INCOMING = "check_incoming"
_CHECK_COMPLETE = "check_complete"
_CHECK_LIST = "_check_list"
_CLOSE = "close"
_PROMPTED = "_livekit_py_prompts"
_LOCAL_USERNAME = "_local_username"
_LOCAL_PASSWORD = "_local_password"
# RTCSctpTransport: the retransmission timer's handle and what it calls when it fires.
_SCTP_T3_HANDLE = "_t3_handle"
_SCTP_T3_EXPIRED = "_t3_expired"
_SCTP_T3_START = "_t3_start"
# RTCRtpReceiver: the jitter buffer every received (depayloaded) packet is added to,
# and where the packet handler puts the frame it returns: the decoder thread's input
# queue (while that thread runs), after mapping its RTP timestamp, with the codec of
# its payload type.
_RECEIVER_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
_RECEIVER_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_RECEIVER_DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"
_RECEIVER_TIMESTAMP_MAPPER = "_RTCRtpReceiver__timestamp_mapper"
_RECEIVER_CODECS = "_RTCRtpReceiver__codecs"
# TimestampMapper: the first RTP timestamp it mapped (moved back by 2**32 at each wrap).
_MAPPER_ORIGIN = "_origin"
# RTCRtpReceiver: whether receive() ran (it registers the SSRCs once), and the map
# from retransmission SSRCs to the SSRC they repair, which unwraps RTX packets.
_RECEIVER_STARTED = "_RTCRtpReceiver__started"
_RECEIVER_RTX_SSRC = "_RTCRtpReceiver__rtx_ssrc"
# RtpRouter: SSRC -> receiver, consulted first for each received RTP packet.
_ROUTER_SSRC_TABLE = "ssrc_table"
# RtpPacket: the depayloaded codec data the packet handler attaches.
_PACKET_DATA = "_data"

_DTLS_ROUTER = "_rtp_router"
_DTLS_SEND_RTP = "_send_rtp"
_DTLS_HANDLE_RTCP = "_handle_rtcp_data"
_RTCP_RECIPIENT = "_handle_rtcp_packet"

# Vp8Encoder/H264Encoder: the packetizer encode() and pack() hand each encoded frame to,
# and H.264's Annex-B splitter (start codes -> NAL units).
_PACKETIZE = "_packetize"
_SPLIT_BITSTREAM = "_split_bitstream"
# aioice Connection: its candidate pairs; StunProtocol: runs one STUN transaction.
_CHECK_LIST = "_check_list"
_STUN_REQUEST = "request"
# aioice Connection: the protocols (one per local socket) gathering made, each with
# the asyncio transport of its socket in ``transport``.
_ICE_PROTOCOLS = "_protocols"
# RTCDtlsTransport: its aiortc statistics, their id, its role, its certificate (an
# RTCCertificate, whose x509 certificate is _cert) and its pyOpenSSL connection.
_DTLS_GET_STATS = "_get_stats"
_DTLS_STATS_ID = "_stats_id"
_DTLS_ROLE = "_role"
_DTLS_SSL = "_ssl"
_DTLS_LOCAL_CERTIFICATE = "_RTCDtlsTransport__local_certificate"
_CERTIFICATE_X509 = "_cert"
# ICE credentials: ice-char is ALPHA / DIGIT / "+" / "/" (RFC 8839); aioice checks the lengths.
_ICE_CHARS = string.ascii_letters + string.digits


# -- the import-time check ----------------------------------------------------------


def _code_names(func: object) -> set[str]:
    """Attribute and global names the compiled code of ``func`` uses (nested code too)."""
    code = getattr(func, "__code__", None)
    if not isinstance(code, types.CodeType):
        return set()
    names: set[str] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        names.update(current.co_names)
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return names


def _class_uses(cls: type, name: str, *, exclude: tuple[str, ...] = ()) -> bool:
    """Whether a method (or property accessor) of ``cls`` not in ``exclude`` uses ``name``."""
    for key, value in vars(cls).items():
        if key in exclude:
            continue
        funcs = [value.fget, value.fset] if isinstance(value, property) else [value]
        if any(name in _code_names(f) for f in funcs):
            return True
    return False


def _missing_internals() -> list[str]:
    """What this module relies on and the installed aiortc/aioice does not have."""
    missing: list[str] = []
    # RTCRtpSender: the encoder slot is an instance attribute created empty in
    # __init__ and filled lazily (only when still empty) by the sending code.
    if _SENDER_ENCODER not in _code_names(RTCRtpSender.__init__):
        missing.append(f"RTCRtpSender.__init__ no longer sets {_SENDER_ENCODER}")
    elif not _class_uses(RTCRtpSender, _SENDER_ENCODER, exclude=("__init__",)):
        missing.append(f"RTCRtpSender no longer reads {_SENDER_ENCODER} when sending")
    # RTCRtpSender: the RTCP handler asks for a key frame through a method looked up on
    # the instance (so an instance attribute replaces it), and the sending code packs
    # whatever the track returns that is not a frame (an av.Packet).
    if not callable(getattr(RTCRtpSender, _SEND_KEYFRAME, None)):
        missing.append(f"RTCRtpSender has no method {_SEND_KEYFRAME}")
    elif _SEND_KEYFRAME not in _code_names(RTCRtpSender._handle_rtcp_packet):
        missing.append(f"RTCRtpSender._handle_rtcp_packet no longer calls {_SEND_KEYFRAME}")
    if "pack" not in _code_names(getattr(RTCRtpSender, _NEXT_ENCODED_FRAME, None)):
        missing.append(f"RTCRtpSender.{_NEXT_ENCODED_FRAME} no longer packs pre-encoded packets")
    # Vp8Encoder/H264Encoder: the private bitrate, set in __init__. VP8's encode
    # reads it directly (libvpx's buffer size); aiortc's H.264 code reads it only
    # through the property ours overrides, and it is written to keep the two equal.
    for cls, attr in ((Vp8Encoder, _VP8_BITRATE), (H264Encoder, _H264_BITRATE)):
        if attr not in _code_names(cls.__init__):
            missing.append(f"{cls.__name__}.__init__ no longer sets {attr}")
    if not _class_uses(Vp8Encoder, _VP8_BITRATE, exclude=("__init__", "target_bitrate")):
        missing.append(f"Vp8Encoder no longer reads {_VP8_BITRATE} when encoding")
        if not isinstance(vars(cls).get("target_bitrate"), property):
            missing.append(f"{cls.__name__}.target_bitrate is no longer a property")
    # RTCIceGatherer: its aioice Connection, created in __init__.
    if _GATHERER_CONNECTION not in _code_names(RTCIceGatherer.__init__):
        missing.append(f"RTCIceGatherer.__init__ no longer sets {_GATHERER_CONNECTION}")
    # aioice Connection: the consent loop is a method looked up on the instance
    # when connect() starts it, so an instance attribute replaces it.
    if not callable(getattr(Connection, _QUERY_CONSENT, None)):
        missing.append(f"aioice Connection has no method {_QUERY_CONSENT}")
    elif _QUERY_CONSENT not in _code_names(Connection.connect):
        missing.append(f"aioice Connection.connect no longer starts {_QUERY_CONSENT}")
    # aioice Connection: the nominated pair per component (set in __init__), the
    # request builder and the remote credentials the checks and consent use.
    init_names = _code_names(Connection.__init__)
    for attr in (_NOMINATED, "remote_username", "remote_password"):
        if attr not in init_names:
            missing.append(f"aioice Connection.__init__ no longer sets {attr}")
    if not callable(getattr(Connection, _BUILD_REQUEST, None)):
        missing.append(f"aioice Connection has no method {_BUILD_REQUEST}")
    elif "remote_username" not in _code_names(getattr(Connection, _BUILD_REQUEST)):
        missing.append(f"aioice Connection.{_BUILD_REQUEST} no longer uses remote_username")
    # aioice Connection: the handlers of an answered remote check and of a finished
    # local one, looked up on the instance by the code that calls them, and the
    # check list they work on.
    for method, caller in ((_CHECK_INCOMING, "request_received"), (_CHECK_COMPLETE, "check_start")):
        if not callable(getattr(Connection, method, None)):
            missing.append(f"aioice Connection has no method {method}")
        elif method not in _code_names(getattr(Connection, caller, None)):
            missing.append(f"aioice Connection.{caller} no longer calls {method}")
    if _CHECK_LIST not in init_names:
        missing.append(f"aioice Connection.__init__ no longer sets {_CHECK_LIST}")
    # aioice Connection: the local credentials behind the read-only properties,
    # which aiortc's gatherer puts into every description it creates.
    for attr, prop in ((_LOCAL_USERNAME, "local_username"), (_LOCAL_PASSWORD, "local_password")):
        accessor = vars(Connection).get(prop)
        if attr not in init_names:
            missing.append(f"aioice Connection.__init__ no longer sets {attr}")
        elif not isinstance(accessor, property) or attr not in _code_names(accessor.fget):
            missing.append(f"aioice Connection.{prop} no longer reads {attr}")
        if prop not in _code_names(RTCIceGatherer.getLocalParameters):
            missing.append(f"RTCIceGatherer.getLocalParameters no longer reads {prop}")
    # RTCSctpTransport: the T3 timer handle (set in __init__, None when nothing is
    # outstanding) and the method the timer calls, which marks every outstanding
    # chunk for retransmission and transmits.
    if _SCTP_T3_HANDLE not in _code_names(RTCSctpTransport.__init__):
        missing.append(f"RTCSctpTransport.__init__ no longer sets {_SCTP_T3_HANDLE}")
    expired = getattr(RTCSctpTransport, _SCTP_T3_EXPIRED, None)
    if not callable(expired):
        missing.append(f"RTCSctpTransport has no method {_SCTP_T3_EXPIRED}")
    elif not {_SCTP_T3_HANDLE, "_transmit"} <= _code_names(expired):
        missing.append(f"RTCSctpTransport.{_SCTP_T3_EXPIRED} no longer clears the timer and sends")
    elif _SCTP_T3_EXPIRED not in _code_names(getattr(RTCSctpTransport, _SCTP_T3_START, None)):
        missing.append(f"RTCSctpTransport.{_SCTP_T3_START} no longer arms {_SCTP_T3_EXPIRED}")
    # RTCRtpReceiver: the jitter buffer is an instance attribute set in __init__ and
    # fed (add) by the packet handler, which decodes whatever frame add() returns.
    if _RECEIVER_JITTER_BUFFER not in _code_names(RTCRtpReceiver.__init__):
        missing.append(f"RTCRtpReceiver.__init__ no longer sets {_RECEIVER_JITTER_BUFFER}")
    elif not {_RECEIVER_JITTER_BUFFER, "add"} <= _code_names(RTCRtpReceiver._handle_rtp_packet):
        missing.append(
            f"RTCRtpReceiver._handle_rtp_packet no longer adds packets to {_RECEIVER_JITTER_BUFFER}"
        )
    # ... after attaching the depayloaded data to the packet, and it decodes a frame
    # by mapping its timestamp and putting it on the decoder thread's queue.
    handler_names = _code_names(RTCRtpReceiver._handle_rtp_packet)
    receiver_init = _code_names(RTCRtpReceiver.__init__)
    if _PACKET_DATA not in handler_names:
        missing.append(f"RTCRtpReceiver._handle_rtp_packet no longer sets RtpPacket.{_PACKET_DATA}")
    for attr in (
        _RECEIVER_DECODER_QUEUE,
        _RECEIVER_DECODER_THREAD,
        _RECEIVER_TIMESTAMP_MAPPER,
        _RECEIVER_CODECS,
    ):
        if attr not in receiver_init:
            missing.append(f"RTCRtpReceiver.__init__ no longer sets {attr}")
        elif attr not in handler_names:
            missing.append(f"RTCRtpReceiver._handle_rtp_packet no longer uses {attr}")
    if not {"map", "put"} <= handler_names:
        missing.append(
            "RTCRtpReceiver._handle_rtp_packet no longer maps timestamps and queues frames"
        )
    # TimestampMapper: map() returns the timestamp minus the origin set in __init__.
    if _MAPPER_ORIGIN not in _code_names(TimestampMapper.__init__):
        missing.append(f"aiortc TimestampMapper.__init__ no longer sets {_MAPPER_ORIGIN}")
    elif _MAPPER_ORIGIN not in _code_names(TimestampMapper.map):
        missing.append(f"aiortc TimestampMapper.map no longer uses {_MAPPER_ORIGIN}")
    # RTCRtpReceiver: receive() registers the SSRCs only when not yet started, and
    # fills the RTX map the packet handler unwraps retransmissions with; the router
    # looks each packet's SSRC up in its table first.
    receive_names = _code_names(RTCRtpReceiver.receive)
    for attr in (_RECEIVER_STARTED, _RECEIVER_RTX_SSRC):
        if attr not in receiver_init:
            missing.append(f"RTCRtpReceiver.__init__ no longer sets {attr}")
        elif attr not in receive_names:
            missing.append(f"RTCRtpReceiver.receive no longer uses {attr}")
    if _RECEIVER_RTX_SSRC not in handler_names:
        missing.append(f"RTCRtpReceiver._handle_rtp_packet no longer uses {_RECEIVER_RTX_SSRC}")
    if _ROUTER_SSRC_TABLE not in _code_names(RtpRouter.__init__):
        missing.append(f"aiortc RtpRouter.__init__ no longer sets {_ROUTER_SSRC_TABLE}")
    elif _ROUTER_SSRC_TABLE not in _code_names(RtpRouter.route_rtp):
        missing.append(f"aiortc RtpRouter.route_rtp no longer reads {_ROUTER_SSRC_TABLE}")
    # RTCDtlsTransport: its RTP router (set in __init__), which routes each RTCP
    # packet to the registered senders' _handle_rtcp_packet, and _send_rtp.
    if _DTLS_ROUTER not in _code_names(RTCDtlsTransport.__init__):
        missing.append(f"RTCDtlsTransport.__init__ no longer sets {_DTLS_ROUTER}")
    handle_rtcp = getattr(RTCDtlsTransport, _DTLS_HANDLE_RTCP, None)
    if not callable(handle_rtcp) or not {_DTLS_ROUTER, "route_rtcp", _RTCP_RECIPIENT} <= (
        _code_names(handle_rtcp)
    ):
        missing.append(
            f"RTCDtlsTransport.{_DTLS_HANDLE_RTCP} no longer routes RTCP to {_RTCP_RECIPIENT}"
        )
    if not callable(getattr(RTCDtlsTransport, _DTLS_SEND_RTP, None)):
        missing.append(f"RTCDtlsTransport has no method {_DTLS_SEND_RTP}")
    for method in ("register_sender", "unregister_sender", "route_rtcp"):
        if not callable(getattr(RtpRouter, method, None)):
            missing.append(f"aiortc RtpRouter has no method {method}")
    if not {"data", "timestamp"} <= _code_names(JitterFrame.__init__):
        missing.append("aiortc JitterFrame no longer has data and timestamp")
    # Vp8Encoder/H264Encoder: encode() and pack() packetize the whole encoded frame
    # through self._packetize (VP8: the frame and a picture id; H.264: its NAL units).
    for cls in (Vp8Encoder, H264Encoder):
        if not callable(getattr(cls, _PACKETIZE, None)):
            missing.append(f"{cls.__name__} has no {_PACKETIZE}")
            continue
        for method in ("encode", "pack"):
            if _PACKETIZE not in _code_names(getattr(cls, method, None)):
                missing.append(f"{cls.__name__}.{method} no longer calls {_PACKETIZE}")
    if not callable(getattr(H264Encoder, _SPLIT_BITSTREAM, None)):
        missing.append(f"H264Encoder has no {_SPLIT_BITSTREAM}")
    # aioice Connection: the check list (set in __init__); checks and consent requests
    # are built with self.build_request and sent with the pair protocol's request().
    if _CHECK_LIST not in init_names:
        missing.append(f"aioice Connection.__init__ no longer sets {_CHECK_LIST}")
    for method in ("check_start", _QUERY_CONSENT):
        names = _code_names(getattr(Connection, method, None))
        if not {_BUILD_REQUEST, "protocol", _STUN_REQUEST} <= names:
            missing.append(
                f"aioice Connection.{method} no longer sends {_BUILD_REQUEST}() requests"
                f" through the pair's protocol.{_STUN_REQUEST}()"
            )
    if not callable(getattr(StunProtocol, _STUN_REQUEST, None)):
        missing.append(f"aioice StunProtocol has no method {_STUN_REQUEST}")
    if _ICE_PROTOCOLS not in init_names:
        missing.append(f"aioice Connection.__init__ no longer sets {_ICE_PROTOCOLS}")
    elif not _class_uses(Connection, _ICE_PROTOCOLS, exclude=("__init__", "close")):
        missing.append(f"aioice Connection no longer gathers into {_ICE_PROTOCOLS}")
    # RTCDtlsTransport: the statistics method, and what __init__ sets.
    if not callable(getattr(RTCDtlsTransport, _DTLS_GET_STATS, None)):
        missing.append(f"RTCDtlsTransport has no method {_DTLS_GET_STATS}")
    dtls_init = _code_names(RTCDtlsTransport.__init__)
    for attr in (_DTLS_STATS_ID, _DTLS_ROLE, _DTLS_SSL, _DTLS_LOCAL_CERTIFICATE):
        if attr not in dtls_init:
            missing.append(f"RTCDtlsTransport.__init__ no longer sets {attr}")
    if _CERTIFICATE_X509 not in _code_names(RTCCertificate.__init__):
        missing.append(f"RTCCertificate.__init__ no longer sets {_CERTIFICATE_X509}")
    return missing


def _check_internals() -> None:
    missing = _missing_internals()
    if missing:
        raise ImportError(
            "livekit_py relies on aiortc/aioice internals that the installed versions "
            f"(aiortc {aiortc.__version__}, aioice {aioice.__version__}) do not have: "
            + "; ".join(missing)
            + ". Install the versions livekit_py supports (see its pyproject.toml)."
        )


_check_internals()


# -- RTCRtpSender's encoder slot --------------------------------------------------


def install_encoder(sender: RTCRtpSender, encoder: Encoder) -> None:
    """Make ``sender`` encode with ``encoder`` instead of creating its own.

    aiortc (1.14 to 1.16) creates the encoder lazily, on the first frame, only
    when the sender has none, so setting it before media flows is enough.

    Raises:
        ValueError: If ``sender`` is not an RTCRtpSender or ``encoder`` not an Encoder.
    """
    if not isinstance(sender, RTCRtpSender):
        raise ValueError(f"sender must be an aiortc RTCRtpSender, not {type(sender).__name__}")
    if not isinstance(encoder, Encoder):
        raise ValueError(f"encoder must be an aiortc Encoder, not {type(encoder).__name__}")
    setattr(sender, _SENDER_ENCODER, encoder)


def installed_encoder(sender: RTCRtpSender) -> Encoder | None:
    """The encoder ``sender`` encodes with (None until it has one)."""
    encoder: Encoder | None = getattr(sender, _SENDER_ENCODER)
    return encoder


# -- key-frame requests ---------------------------------------------------------------


def watch_keyframe_requests(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` (on the event loop) each time ``sender`` is asked for a key frame.

    aiortc (1.14 to 1.16) answers a PLI or FIR about the sender's SSRC by calling
    ``sender._send_keyframe()``, which sets a flag the next ``encode`` reads; a
    pre-encoded packet (``pack``) ignores it. This replaces that method on this sender
    by one that does what aiortc's does and then calls ``callback``. Calling it again
    adds another callback.

    Raises:
        ValueError: If ``sender`` is not an RTCRtpSender.
    """
    if not isinstance(sender, RTCRtpSender):
        raise ValueError(f"sender must be an aiortc RTCRtpSender, not {type(sender).__name__}")
    previous: Callable[[], None] = getattr(sender, _SEND_KEYFRAME)

    def send_keyframe() -> None:
        previous()
        callback()

    setattr(sender, _SEND_KEYFRAME, send_keyframe)


# -- the video encoders' private bitrate ---------------------------------------------


def _bitrate_attribute(encoder: AiortcVideoEncoder) -> str:
    if isinstance(encoder, Vp8Encoder):
        return _VP8_BITRATE
    if isinstance(encoder, H264Encoder):
        return _H264_BITRATE
    raise ValueError(
        f"encoder must be an aiortc Vp8Encoder or H264Encoder, not {type(encoder).__name__}"
    )


def set_aiortc_target_bitrate(encoder: AiortcVideoEncoder, bitrate: int) -> None:
    """Set the bitrate aiortc's own encoding code reads (no clamping to aiortc's bounds).

    Raises:
        ValueError: If ``encoder`` is not one of aiortc's VP8/H.264 encoders.
    """
    setattr(encoder, _bitrate_attribute(encoder), int(bitrate))


def aiortc_target_bitrate(encoder: AiortcVideoEncoder) -> int:
    """The bitrate aiortc's own encoding code uses for ``encoder``."""
    return int(getattr(encoder, _bitrate_attribute(encoder)))


# -- ICE connections and consent ------------------------------------------------------


def ice_connections(pc: RTCPeerConnection) -> list[Connection]:
    """The aioice connections under ``pc`` (one per ICE transport; one with bundling)."""
    dtls_transports = [t.receiver.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        dtls_transports.append(pc.sctp.transport)
    out: list[Connection] = []
    for dtls in dtls_transports:
        gatherer = dtls.transport.iceGatherer
        connection = getattr(gatherer, _GATHERER_CONNECTION)
        if isinstance(connection, Connection) and connection not in out:
            out.append(connection)
    return out


def enlarge_receive_buffers(connection: Connection, size: int) -> list[int]:
    """Ask for a kernel receive buffer of ``size`` bytes on each UDP socket of ``connection``.

    aioice's sockets keep the system default (``net.core.rmem_default``, often
    208 KiB, a few hundred small datagrams), and asyncio reads one datagram per
    event-loop turn: a loop busy for a fraction of a second while a peer sends a
    burst (lossy data at thousands of packets a second) overflows that buffer and
    the kernel drops what does not fit. A buffer already at least ``size`` is left
    alone; the kernel caps the request at ``net.core.rmem_max``. Sockets gathered
    later are not touched: call it again after each gathering.

    Returns:
        The receive buffer size the kernel reports for each UDP socket afterwards.
    """
    sizes: list[int] = []
    for protocol in list(getattr(connection, _ICE_PROTOCOLS)):
        transport = getattr(protocol, "transport", None)
        if transport is None:
            continue
        sock = transport.get_extra_info("socket")
        if sock is None or sock.type != socket.SOCK_DGRAM:
            continue  # a TURN relay over TCP/TLS, or a closed transport
        try:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < size:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
            sizes.append(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
        except OSError:
            continue  # closed meanwhile, or a platform without the option
    return sizes


_draining: weakref.WeakSet[StunProtocol] = weakref.WeakSet()


def read_queued_datagrams(connection: Connection, limit: int) -> int:
    """Hand each UDP socket's queued datagrams to aioice together, up to ``limit`` at once.

    asyncio's datagram transport reads one datagram per event-loop turn, while a
    task that sends in a loop (publish_data at full speed) gets a turn of its own
    for each packet: with the sender and the receiver in one process, the
    receiving socket got more datagrams per turn (a lossy message, a FORWARD-TSN,
    SACKs) than it read, fell behind, and the kernel dropped what overflowed its
    buffer. After the datagram the transport read, ours reads what else is queued
    (without blocking: a duplicate of the socket's descriptor, which shares its
    non-blocking mode) and hands it to aioice in order. Only on selector event
    loops (the default on Linux and macOS), where the transport reads the socket
    itself when the selector says it is readable; a protocol set up before is
    left alone.

    Returns:
        How many sockets were set up by this call.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    if not isinstance(asyncio.get_running_loop(), asyncio.SelectorEventLoop):
        return 0
    count = 0
    for protocol in list(getattr(connection, _ICE_PROTOCOLS)):
        if not isinstance(protocol, StunProtocol) or protocol in _draining:
            continue
        transport = getattr(protocol, "transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if transport is None or sock is None or sock.type != socket.SOCK_DGRAM:
            continue
        reader = socket.socket(sock.family, sock.type, sock.proto, os.dup(sock.fileno()))
        _install_reader(protocol, transport, reader, limit)
        _draining.add(protocol)
        count += 1
    return count


def _install_reader(
    protocol: StunProtocol, transport: asyncio.BaseTransport, reader: socket.socket, limit: int
) -> None:
    handle = protocol.datagram_received
    lost = protocol.connection_lost

    def datagram_received(data: bytes | str, addr: tuple[Any, ...]) -> None:
        handle(data, addr)
        for _ in range(limit - 1):
            if transport.is_closing() or reader.fileno() < 0:
                return
            try:
                more, source = reader.recvfrom(65536)
            except OSError:  # nothing queued (BlockingIOError), or an error the transport sees
                return
            handle(more, source)

    def connection_lost(exc: Exception | None) -> None:
        reader.close()
        lost(exc)

    protocol.datagram_received = datagram_received  # type: ignore[method-assign]
    protocol.connection_lost = connection_lost  # type: ignore[method-assign]
    weakref.finalize(protocol, reader.close)


async def _no_consent_checks() -> None:
    return None


def disable_consent_checks(connection: Connection) -> None:
    """Make sure no consent freshness loop outlives ``connection``; call it just before closing.

    aioice (0.9 to 0.13) starts its consent loop when ICE completes. If the
    completion was queued just before close(), connect() resumes during or
    after close() and starts the loop on a connection whose nominated pairs are
    gone; that loop then never ends. The connection is about to close, so its
    consent checks are replaced by a no-op on this instance; a loop that is
    already running is cancelled by aioice's own close().
    """
    replacement: Callable[[], object] = _no_consent_checks
    setattr(connection, _QUERY_CONSENT, replacement)


# -- prompt nomination by a controlling pion agent -----------------------------------------


def prompt_remote_nomination(connection: Connection) -> None:
    """Make a controlling pion agent nominate as soon as it can, not at its next tick.

    When we are the controlled agent (a subscriber connection: the server offers),
    the controlling agent nominates a pair with USE-CANDIDATE. pion does so either
    on its connectivity-check ticker (every 200 ms) or, at once, when a binding
    request arrives on a pair it already holds as succeeded. Our own check on a
    pair usually reaches it before its check of us has succeeded, so the prompt
    path is missed and the connection waits for the tick. Here, once both
    directions of a pair have succeeded (we answered a check from the remote on
    it and ours was answered) and nothing is nominated yet, one more binding
    request goes out on that pair. It changes no pair state; its answer is
    ignored. Nothing happens while we are controlling. Idempotent per connection;
    the requests still in flight are cancelled when the connection closes.

    Args:
        connection: The aioice connection (see :func:`ice_connections`).
    """
    if getattr(connection, _PROMPTED, None) is not None:
        return
    answered: set[int] = set()
    prompted: set[int] = set()
    tasks: set[asyncio.Task[None]] = set()
    setattr(connection, _PROMPTED, tasks)
    incoming: Callable[..., None] = getattr(connection, _CHECK_INCOMING)
    complete: Callable[[CandidatePair], None] = getattr(connection, _CHECK_COMPLETE)
    close: Callable[[], Awaitable[None]] = connection.close
    build: Callable[..., Any] = getattr(connection, _BUILD_REQUEST)
    nominated: dict[int, CandidatePair] = getattr(connection, _NOMINATED)

    async def request(pair: CandidatePair) -> None:
        password = connection.remote_password
        if password is None:
            return
        try:
            await pair.protocol.request(
                build(pair, nominate=False), pair.remote_addr, integrity_key=password.encode()
            )
        except Exception:  # unanswered or refused: pion's own tick nominates then
            logger.debug("prompting request on %s was not answered", pair)

    def maybe_prompt(pair: CandidatePair) -> None:
        if (
            connection.ice_controlling
            or pair.component in nominated
            or pair.state != CandidatePair.State.SUCCEEDED
            or id(pair) not in answered
            or id(pair) in prompted
        ):
            return
        prompted.add(id(pair))
        task = asyncio.ensure_future(request(pair))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def on_incoming(message: Any, addr: tuple[str, int], protocol: Any) -> None:
        incoming(message, addr, protocol)
        if "USE-CANDIDATE" in message.attributes:
            return
        pairs: list[CandidatePair] = getattr(connection, _CHECK_LIST)
        for pair in pairs:
            if pair.protocol is protocol and pair.remote_addr == addr:
                answered.add(id(pair))
                maybe_prompt(pair)
                break

    def on_complete(pair: CandidatePair) -> None:
        complete(pair)
        maybe_prompt(pair)

    async def on_close() -> None:
        for task in list(tasks):
            task.cancel()
        await close()

    setattr(connection, _CHECK_INCOMING, on_incoming)
    setattr(connection, _CHECK_COMPLETE, on_complete)
    setattr(connection, _CLOSE, on_close)


# -- ICE restarts by the remote side --------------------------------------------------------


async def adopt_remote_ice_restart(connection: Connection, username: str, password: str) -> int:
    """Follow a remote ICE restart on ``connection``: new credentials, pairs nominated again.

    aiortc (1.14 to 1.16) starts an ICE transport once: a later remote
    description with a new ice-ufrag/ice-pwd is accepted, but aioice keeps
    checking (and answering consent) with the old ones, so the remote agent
    drops the connection. This sets the new remote credentials on the aioice
    connection and sends one binding request with USE-CANDIDATE on each
    nominated pair, signed with the new password; an ICE-lite agent (the
    LiveKit server) takes it as the nomination of the restarted session.

    Args:
        connection: The aioice connection (see :func:`ice_connections`).
        username: The remote ice-ufrag of the new description.
        password: The remote ice-pwd of the new description.

    Returns:
        How many pairs were nominated again (0 when the credentials did not
        change or nothing was nominated yet: then aioice's own checks use them).

    Raises:
        ValueError: If ``username`` or ``password`` is empty.
    """
    if not username or not password:
        raise ValueError("the remote ICE credentials must not be empty")
    if connection.remote_username is None:
        return 0  # not started yet: aiortc will start it with this description
    if connection.remote_username == username and connection.remote_password == password:
        return 0
    connection.remote_username = username
    connection.remote_password = password
    nominated: dict[int, CandidatePair] = getattr(connection, _NOMINATED)
    pairs = list(nominated.values())
    build: Callable[..., Any] = getattr(connection, _BUILD_REQUEST)
    key = password.encode("utf8")

    async def once(pair: CandidatePair) -> bool:
        request = build(pair, nominate=True)
        try:
            await pair.protocol.request(request, pair.remote_addr, integrity_key=key)
        except Exception:  # refused, or timed out after aioice's retransmissions
            return False
        return True

    async def nominate(pair: CandidatePair) -> bool:
        # The remote agent may apply its restart a little after our answer went
        # out and silently drop checks with the new credentials until then; so a
        # fresh check starts every NOMINATE_INTERVAL (each retransmitted by aioice)
        # until one is answered.
        tasks: set[asyncio.Task[bool]] = set()
        try:
            for _ in range(NOMINATE_ATTEMPTS):
                tasks.add(asyncio.ensure_future(once(pair)))
                done, tasks = await asyncio.wait(tasks, timeout=NOMINATE_INTERVAL)
                if any(t.result() for t in done):
                    return True
            deadline = asyncio.get_running_loop().time() + NOMINATE_WAIT
            while tasks:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                done, tasks = await asyncio.wait(
                    tasks, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                if any(t.result() for t in done):
                    return True
            return False  # consent checks (with the new credentials) decide from here
        finally:
            for task in tasks:
                task.cancel()

    results = await asyncio.gather(*(nominate(p) for p in pairs))
    return sum(1 for ok in results if ok)


# -- a local ICE restart --------------------------------------------------------------


def restart_local_ice(connection: Connection) -> tuple[str, str]:
    """Give ``connection`` new local ICE credentials, so that the next offer restarts ICE.

    aiortc (1.14 to 1.16) cannot create an ICE-restart offer: ``createOffer()``
    takes no options and its descriptions carry the aioice connection's local
    credentials, which aioice sets once. Replacing them makes the next offer
    carry a new ice-ufrag/ice-pwd, which the remote agent (the LiveKit server)
    takes as an ICE restart; aioice answers and signs checks with the new ones
    from now on. Follow the remote answer's new credentials with
    :func:`adopt_remote_ice_restart`.

    Args:
        connection: The aioice connection (see :func:`ice_connections`).

    Returns:
        The new (ice-ufrag, ice-pwd).
    """
    username = "".join(secrets.choice(_ICE_CHARS) for _ in range(8))
    password = "".join(secrets.choice(_ICE_CHARS) for _ in range(24))
    setattr(connection, _LOCAL_USERNAME, username)
    setattr(connection, _LOCAL_PASSWORD, password)
    return username, password


# -- SCTP after an outage --------------------------------------------------------------


def retransmit_sctp_now(sctp: RTCSctpTransport) -> bool:
    """Retransmit what ``sctp`` has outstanding now, instead of when its timer fires.

    During a media outage aiortc's SCTP (1.14 to 1.16) retransmits on its T3
    timer, one retransmission timeout (at least a second) apart, so data sent
    while the path was down waits up to that long after the path is back.
    Call this once the path is known to work again (a nomination answered after
    an ICE restart): it fires the timer at once, which retransmits every
    outstanding chunk (from a congestion window of one packet, as the timer
    does) and re-arms it.

    Args:
        sctp: The peer connection's SCTP transport.

    Returns:
        Whether anything was outstanding (False: nothing to do).
    """
    handle: asyncio.TimerHandle | None = getattr(sctp, _SCTP_T3_HANDLE)
    if handle is None:
        return False
    handle.cancel()
    fire: Callable[[], None] = getattr(sctp, _SCTP_T3_EXPIRED)
    fire()
    return True


# -- received RTP: the receiver's jitter buffer slot ---------------------------------------


def depayloaded(packet: RtpPacket) -> bytes:
    """The codec data of a received ``packet``, as aiortc's packet handler extracted it.

    aiortc (1.14 to 1.16) depayloads each packet (VP8: payload descriptor
    stripped; H.264: NAL units with Annex-B start codes) before adding it to the
    receiver's jitter buffer, and keeps the result on the packet; a packet with
    no payload (padding only) has ``b""``.

    Raises:
        ValueError: If aiortc did not depayload ``packet`` (it never reached a
            receiver's jitter buffer).
    """
    data = getattr(packet, _PACKET_DATA, None)
    if not isinstance(data, bytes):
        raise ValueError(f"{packet!r} carries no depayloaded data (not from a receiver)")
    return data


class EncodedFrame(JitterFrame):
    """A complete encoded frame as aiortc's decoders take it, with its RTP payload type."""

    def __init__(self, data: bytes, timestamp: int, payload_type: int) -> None:
        super().__init__(data=data, timestamp=timestamp)
        self.payload_type = payload_type


class ReceiveBuffer(Protocol):
    """What a receiver's jitter buffer slot takes: aiortc's ``JitterBuffer.add`` contract."""

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        """Take one received packet; return (send a PLI, a complete frame to decode or None)."""
        ...


@runtime_checkable
class FrameBatchBuffer(Protocol):
    """A jitter buffer that may complete several frames with one packet."""

    def add_frames(self, packet: RtpPacket) -> tuple[bool, Sequence[EncodedFrame]]:
        """Take one received packet; return (send a PLI, the frames it completed, in order)."""
        ...


FrameFilter = Callable[[Sequence[EncodedFrame]], tuple[bool, Sequence[EncodedFrame]]]
"""Sees the complete frames one received packet yielded, in order, before they are decoded;
returns (send a PLI, the frames to decode instead). Called on the event loop."""


class _FrameBatchSlot:
    """Sits in the jitter buffer slot for our buffer, and for a frame filter.

    aiortc's packet handler decodes at most one frame per packet (the one
    ``add`` returns). When a :class:`FrameBatchBuffer` completes several with one
    packet (a retransmission filling a hole ahead of complete frames), the
    earlier ones go to the decoder queue here, exactly as the handler would put
    them (timestamp mapped in order, the codec of their payload type), and the
    last is returned for the handler to put after them: none waits for a later
    packet. A :data:`FrameFilter`, when set, sees the frames first.
    """

    __slots__ = ("_receiver", "buffer", "frame_filter")

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        buffer: ReceiveBuffer | FrameBatchBuffer,
        frame_filter: FrameFilter | None = None,
    ) -> None:
        self._receiver = weakref.ref(receiver)
        self.buffer = buffer
        self.frame_filter = frame_filter

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        buffer = self.buffer
        frames: Sequence[EncodedFrame]
        if isinstance(buffer, FrameBatchBuffer):
            pli, frames = buffer.add_frames(packet)
        else:
            pli, frame = buffer.add(packet)
            if frame is None:
                frames = ()
            elif isinstance(frame, EncodedFrame):
                frames = (frame,)
            else:  # aiortc's own buffer: its frames carry no payload type
                frames = (EncodedFrame(frame.data, frame.timestamp, packet.payload_type),)
        frame_filter = self.frame_filter
        if frame_filter is not None and frames:
            pli_filter, frames = frame_filter(frames)
            pli = pli or pli_filter
        if not frames:
            return pli, None
        receiver = self._receiver()
        if len(frames) > 1 and receiver is not None:
            _decode_now(receiver, frames[:-1])
        return pli, frames[-1]


def _decode_now(receiver: RTCRtpReceiver, frames: Sequence[EncodedFrame]) -> None:
    if getattr(receiver, _RECEIVER_DECODER_THREAD) is None:
        return  # not started or stopped: aiortc decodes nothing either
    codecs: dict[int, Any] = getattr(receiver, _RECEIVER_CODECS)
    mapper = getattr(receiver, _RECEIVER_TIMESTAMP_MAPPER)
    queue = getattr(receiver, _RECEIVER_DECODER_QUEUE)
    for frame in frames:
        codec = codecs.get(frame.payload_type)
        if codec is None:
            continue
        frame.timestamp = mapper.map(frame.timestamp)
        queue.put((codec, frame))


def install_receive_buffer(receiver: RTCRtpReceiver, buffer: ReceiveBuffer) -> None:
    """Make ``receiver`` assemble frames with ``buffer`` instead of aiortc's jitter buffer.

    aiortc (1.14 to 1.16) adds every received packet (after its RTCP
    statistics, RTX unwrapping, NACK generation and depayloading) to the
    receiver's jitter buffer, sends a PLI when ``add`` says so, and decodes the
    frame it returns. ``buffer`` takes that place on this receiver. If it is a
    :class:`FrameBatchBuffer` (has ``add_frames``), every frame one packet
    completes is decoded at once, in order. Call it before packets arrive (when
    the transceiver appears); a buffer installed later only misses the frames
    in progress. A frame filter set on the receiver (:func:`set_frame_filter`)
    stays in place.

    Raises:
        ValueError: If ``receiver`` is not an RTCRtpReceiver or ``buffer`` has no
            ``add`` (nor ``add_frames``).
    """
    if not isinstance(receiver, RTCRtpReceiver):
        raise ValueError(
            f"receiver must be an aiortc RTCRtpReceiver, not {type(receiver).__name__}"
        )
    current = getattr(receiver, _RECEIVER_JITTER_BUFFER)
    frame_filter = current.frame_filter if isinstance(current, _FrameBatchSlot) else None
    slot: object
    if isinstance(buffer, FrameBatchBuffer) or frame_filter is not None:
        if not isinstance(buffer, FrameBatchBuffer) and not callable(getattr(buffer, "add", None)):
            raise ValueError(
                f"buffer must have an add(packet) method, {type(buffer).__name__} has not"
            )
        slot = _FrameBatchSlot(receiver, buffer, frame_filter)
    elif callable(getattr(buffer, "add", None)):
        slot = buffer
    else:
        raise ValueError(f"buffer must have an add(packet) method, {type(buffer).__name__} has not")
    setattr(receiver, _RECEIVER_JITTER_BUFFER, slot)


def set_frame_filter(receiver: RTCRtpReceiver, frame_filter: FrameFilter | None) -> None:
    """Have ``frame_filter`` see every complete frame ``receiver`` assembles before decoding.

    Works over our frame assembler and over aiortc's own jitter buffer alike, and
    stays when a buffer is installed afterwards (:func:`install_receive_buffer`).
    aiortc decodes exactly the frames the filter returns; a PLI it asks for is sent
    like the buffer's. Set it before packets arrive (when the transceiver appears).
    None removes the filter.

    Raises:
        ValueError: If ``receiver`` is not an RTCRtpReceiver.
    """
    if not isinstance(receiver, RTCRtpReceiver):
        raise ValueError(
            f"receiver must be an aiortc RTCRtpReceiver, not {type(receiver).__name__}"
        )
    current = getattr(receiver, _RECEIVER_JITTER_BUFFER)
    if isinstance(current, _FrameBatchSlot):
        current.frame_filter = frame_filter
    elif frame_filter is not None:
        setattr(receiver, _RECEIVER_JITTER_BUFFER, _FrameBatchSlot(receiver, current, frame_filter))


def installed_frame_filter(receiver: RTCRtpReceiver) -> FrameFilter | None:
    """The frame filter of ``receiver`` (:func:`set_frame_filter`), None when it has none."""
    slot = getattr(receiver, _RECEIVER_JITTER_BUFFER)
    return slot.frame_filter if isinstance(slot, _FrameBatchSlot) else None


def received_rtp_timestamp(receiver: RTCRtpReceiver, pts: int | None) -> int | None:
    """The RTP timestamp of the frame ``receiver`` decoded into a picture of ``pts``.

    aiortc (1.14 to 1.16) maps each frame's RTP timestamp before decoding it: the first
    one becomes 0 and the others count from it (across the 32-bit wrap), and the
    decoded picture keeps that ``pts``. None before the receiver mapped any frame, or
    for a picture without ``pts``.
    """
    if pts is None:
        return None
    mapper = getattr(receiver, _RECEIVER_TIMESTAMP_MAPPER, None)
    origin = getattr(mapper, _MAPPER_ORIGIN, None)
    if not isinstance(origin, int):
        return None
    return (int(pts) + origin) & 0xFFFFFFFF


def installed_receive_buffer(receiver: RTCRtpReceiver) -> object:
    """The buffer ``receiver`` assembles frames with: ours if installed, else aiortc's."""
    slot = getattr(receiver, _RECEIVER_JITTER_BUFFER)
    return slot.buffer if isinstance(slot, _FrameBatchSlot) else slot


PacketSink = Callable[[RtpPacket], None]
"""Takes each received RTP packet (payload already depayloaded by aiortc)."""


class _PacketDiversion:
    """Sits where aiortc's jitter buffer was: hands every packet on, completes no frame."""

    __slots__ = ("_sink",)

    def __init__(self, sink: PacketSink) -> None:
        self._sink = sink

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        self._sink(packet)
        return False, None  # no picture loss to report, nothing for aiortc to decode


def divert_received_packets(receiver: RTCRtpReceiver, sink: PacketSink) -> None:
    """Give every RTP packet ``receiver`` accepts to ``sink`` instead of aiortc's jitter buffer.

    aiortc (1.14 to 1.16) puts received audio through a fixed jitter buffer
    (16 packets, 4 prefetched) that stalls at the first missing packet and jumps
    to the newest when full, and decodes what it releases. Replacing that buffer
    on this receiver (:func:`install_receive_buffer`) hands each packet (after
    aiortc's RTCP statistics, RTX unwrapping and depayloading, so receiver
    reports stay right) to ``sink``; aiortc then decodes nothing and its track
    only reports the end. Call it before packets arrive (when the transceiver
    appears).

    Args:
        receiver: An audio receiver of a peer connection.
        sink: Called on the event loop with each packet, in arrival order.

    Raises:
        ValueError: If ``receiver`` is not an audio receiver.
    """
    track = receiver.track
    if track is None or track.kind != "audio":
        raise ValueError("only an audio receiver's packets can be diverted")
    install_receive_buffer(receiver, _PacketDiversion(sink))


# -- the SSRCs of a receiver aiortc already started -------------------------------------


def route_received_ssrc(receiver: RTCRtpReceiver, ssrc: int, rtx_ssrc: int | None = None) -> bool:
    """Make the packets of ``ssrc`` (and its retransmissions on ``rtx_ssrc``) reach ``receiver``.

    aiortc (1.14 to 1.16) tells its RTP router an m-line's SSRCs once, when it starts
    the m-line's receiver; a packet from an SSRC it does not know reaches a receiver
    only if no other receiver has the packet's payload type. An m-line the server
    gives to another track (another SSRC) after its receiver started must therefore
    be told here. Call it once the description naming the SSRCs is applied.

    Returns:
        False (and nothing changed) if aiortc has not started ``receiver`` yet: it
        registers the SSRCs of the description itself when it does.

    Raises:
        ValueError: If ``receiver`` is not an RTCRtpReceiver.
    """
    if not isinstance(receiver, RTCRtpReceiver):
        raise ValueError(
            f"receiver must be an aiortc RTCRtpReceiver, not {type(receiver).__name__}"
        )
    if not getattr(receiver, _RECEIVER_STARTED):
        return False
    table: dict[int, object] = getattr(
        getattr(receiver.transport, _DTLS_ROUTER), _ROUTER_SSRC_TABLE
    )
    table[ssrc] = receiver
    if rtx_ssrc is not None:
        rtx: dict[int, int] = getattr(receiver, _RECEIVER_RTX_SSRC)
        rtx[rtx_ssrc] = ssrc
        table[rtx_ssrc] = receiver
    return True


# -- extra outgoing RTP streams on a DTLS transport (simulcast) ------------------------

RtcpHandler = Callable[[AnyRtcpPacket], Awaitable[None]]
"""Called on the event loop with each RTCP packet about a registered stream's SSRC."""


class _RtcpRecipient:
    """What aiortc's RTP router hands RTCP to: an object with ``_handle_rtcp_packet``."""

    def __init__(self, handler: RtcpHandler) -> None:
        self._handler = handler

    async def _handle_rtcp_packet(self, packet: AnyRtcpPacket) -> None:
        await self._handler(packet)


_registered: weakref.WeakKeyDictionary[RTCDtlsTransport, dict[int, _RtcpRecipient]] = (
    weakref.WeakKeyDictionary()
)


def register_rtp_stream(transport: RTCDtlsTransport, ssrc: int, handler: RtcpHandler) -> None:
    """Send RTCP about ``ssrc`` arriving on ``transport`` to ``handler``.

    Receiver reports, PLI/FIR, NACK and REMB whose media SSRC is ``ssrc`` reach
    ``handler`` (on the event loop), as they reach an ``RTCRtpSender`` for its own SSRC.

    Raises:
        ValueError: If ``transport`` is not an aiortc RTCDtlsTransport.
    """
    if not isinstance(transport, RTCDtlsTransport):
        raise ValueError(
            f"transport must be an aiortc RTCDtlsTransport, not {type(transport).__name__}"
        )
    recipient = _RtcpRecipient(handler)
    _registered.setdefault(transport, {})[ssrc] = recipient
    router: RtpRouter = getattr(transport, _DTLS_ROUTER)
    router.register_sender(recipient, ssrc)  # type: ignore[arg-type]


def unregister_rtp_stream(transport: RTCDtlsTransport, ssrc: int) -> None:
    """Stop routing RTCP about ``ssrc`` (nothing happens if it was not registered)."""
    recipient = _registered.get(transport, {}).pop(ssrc, None)
    if recipient is not None:
        router: RtpRouter = getattr(transport, _DTLS_ROUTER)
        router.unregister_sender(recipient)  # type: ignore[arg-type]


async def send_rtp_bytes(transport: RTCDtlsTransport, data: bytes) -> None:
    """Send one serialized RTP or RTCP packet on ``transport`` (SRTP-protected).

    Raises:
        ConnectionError: If the transport is not connected.
    """
    send: Callable[[bytes], Awaitable[None]] = getattr(transport, _DTLS_SEND_RTP)
    await send(data)


# -- encoded frames before packetization (end-to-end encryption) ------------------------


def _rtp_time(pts: int | None, time_base: Any) -> int:
    if pts is None or time_base is None:
        return 0
    return int(convert_timebase(pts, time_base, VIDEO_TIME_BASE))


class TransformingVp8Encoder(Vp8Encoder):
    """aiortc's VP8 encoder; ``frame_transform``, when set, sees each encoded frame.

    aiortc (1.14 to 1.16) packetizes a whole VP8 frame at once
    (``Vp8Encoder._packetize(frame, picture_id)``, from ``encode`` and ``pack``),
    adding the VP8 payload descriptor to each packet. The transform gets the frame
    before that, so the descriptor stays outside what it does (as libwebrtc's frame
    transformers see VP8 frames); a frame it drops is not sent.
    """

    frame_transform: FrameTransform | None = None
    """Applied to each encoded frame (see :data:`~.frame_transform.FrameTransform`)."""
    _frame_timestamp = 0

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        self._frame_timestamp = _rtp_time(frame.pts, frame.time_base)
        return super().encode(frame, force_keyframe)

    def pack(self, packet: Packet[Stream]) -> tuple[list[bytes], int]:
        self._frame_timestamp = _rtp_time(packet.pts, packet.time_base)
        return super().pack(packet)

    def _packetize(self, buffer: bytes, picture_id: int) -> list[bytes]:  # type: ignore[override]
        transform = self.frame_transform
        if transform is None or not buffer:
            payloads: list[bytes] = getattr(super(), _PACKETIZE)(buffer, picture_id)
            return payloads
        transformed = transform(buffer, self._frame_timestamp)
        if transformed is None:
            return []
        return _vp8_tail_in_last_packet(getattr(super(), _PACKETIZE)(transformed, picture_id))


TRAILER_ROOM = 255
"""Bytes at the end of a transformed frame that its last RTP packet carries whole: the
longest packet trailer (:mod:`livekit_py.media.packet_trailer`), which the server strips
from a frame's last packet only."""


def _vp8_tail_in_last_packet(payloads: list[bytes]) -> list[bytes]:
    """``payloads`` (one VP8 frame) with at least :data:`TRAILER_ROOM` frame bytes in the last.

    aiortc fills each packet but the last, which may keep a few bytes only: those move
    from the end of the one before (its payload descriptor stays as it was).
    """
    if len(payloads) < 2:
        return payloads
    last_descriptor, last = VpxPayloadDescriptor.parse(payloads[-1])
    if len(last) >= TRAILER_ROOM:
        return payloads
    before_descriptor, before = VpxPayloadDescriptor.parse(payloads[-2])
    move = min(TRAILER_ROOM - len(last), len(before) - 1)
    if move <= 0:
        return payloads
    out = list(payloads)
    out[-2] = bytes(before_descriptor) + before[:-move]
    out[-1] = bytes(last_descriptor) + before[-move:] + last
    return out


_START_CODE = b"\x00\x00\x00\x01"


class TransformingH264Encoder(H264Encoder):
    """aiortc's H.264 encoder; ``frame_transform``, when set, sees each access unit.

    aiortc (1.14 to 1.16) splits the encoder's Annex-B output into NAL units and
    packetizes them (``H264Encoder._packetize(nal_units)``, from ``encode`` and
    ``pack``). With a transform, the NAL units are joined back into one access unit
    with 4-byte start codes (what libwebrtc's encoders and depacketizer use, and
    what aiortc's depacketizer produces), transformed, and split again
    (``H264Encoder._split_bitstream``) for packetizing; a frame it drops is not sent.
    """

    frame_transform: FrameTransform | None = None
    """Applied to each access unit (see :data:`~.frame_transform.FrameTransform`)."""
    _frame_timestamp = 0

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        self._frame_timestamp = _rtp_time(frame.pts, frame.time_base)
        return super().encode(frame, force_keyframe)

    def pack(self, packet: Packet[Stream]) -> tuple[list[bytes], int]:
        self._frame_timestamp = _rtp_time(packet.pts, packet.time_base)
        return super().pack(packet)

    def _packetize(self, packages: Any) -> list[bytes]:  # type: ignore[override]
        packetize = getattr(super(), _PACKETIZE)
        transform = self.frame_transform
        if transform is None:
            payloads: list[bytes] = packetize(packages)
            return payloads
        units = [bytes(unit) for unit in packages]
        if not units:
            return []
        transformed = transform(
            b"".join(_START_CODE + unit for unit in units), self._frame_timestamp
        )
        if transformed is None:
            return []
        split = getattr(H264Encoder, _SPLIT_BITSTREAM)
        nal_units = list(split(transformed))
        # the last NAL unit (which ends with a trailer, if any) is packetized on its own,
        # never aggregated: the server strips a trailer from the end of the last packet,
        # which must then be that unit's (a whole one, or its last FU-A fragment)
        payloads = packetize(nal_units[:-1]) + packetize(nal_units[-1:])
        return payloads


# -- statistics: ICE checks, candidate pairs, DTLS ------------------------------------


class StunObserver(Protocol):
    """Told about every STUN transaction :func:`observe_ice_checks` sees."""

    def request_sent(self, local: Candidate, remote: tuple[str, int]) -> None:
        """A check or consent request from ``local`` to the address ``remote`` starts."""
        ...

    def response_received(self, local: Candidate, remote: tuple[str, int], rtt: float) -> None:
        """It was answered with success, ``rtt`` seconds after it started."""
        ...


_observed: weakref.WeakKeyDictionary[Connection, object] = weakref.WeakKeyDictionary()
_timed_protocols: weakref.WeakSet[StunProtocol] = weakref.WeakSet()


def _time_requests(
    protocol: StunProtocol, observer: StunObserver, clock: Callable[[], float]
) -> None:
    if protocol in _timed_protocols:
        return
    _timed_protocols.add(protocol)
    original: Callable[..., Awaitable[Any]] = getattr(protocol, _STUN_REQUEST)

    async def request(
        message: Any,
        addr: tuple[str, int],
        integrity_key: bytes | None = None,
        retransmissions: int | None = None,
    ) -> Any:
        local = protocol.local_candidate
        started = clock()
        observer.request_sent(local, addr)
        result = await original(
            message, addr, integrity_key=integrity_key, retransmissions=retransmissions
        )
        observer.response_received(local, addr, max(0.0, clock() - started))
        return result

    setattr(protocol, _STUN_REQUEST, request)


def observe_ice_checks(
    connection: Connection, observer: StunObserver, *, clock: Callable[[], float] | None = None
) -> None:
    """Tell ``observer`` about every check and consent request ``connection`` makes.

    aioice (0.13) builds each connectivity check, nomination and consent request with
    ``Connection.build_request`` and sends it with the pair protocol's ``request``,
    which returns when a success response arrives (after its own retransmissions, so
    a time includes them) and raises otherwise. The request builder is wrapped on this
    instance, and it wraps each pair's protocol the first time a request is built for
    it, before that request is sent. Call it before ICE starts (a check already under
    way is not seen). A second call for the same connection does nothing.

    Args:
        connection: An aioice connection (see :func:`ice_connections`).
        observer: Told each request and each success response, on the event loop.
        clock: Seconds, for the round-trip times; the running loop's by default.
    """
    if connection in _observed:
        return
    _observed[connection] = observer
    now = clock if clock is not None else asyncio.get_running_loop().time
    build: Callable[..., Any] = getattr(connection, _BUILD_REQUEST)

    def build_request(pair: CandidatePair, nominate: bool) -> Any:
        _time_requests(pair.protocol, observer, now)
        return build(pair, nominate=nominate)

    setattr(connection, _BUILD_REQUEST, build_request)


def ice_check_list(connection: Connection) -> list[CandidatePair]:
    """The candidate pairs of ``connection`` (its check list), in aioice's order."""
    pairs: list[CandidatePair] = getattr(connection, _CHECK_LIST)
    return list(pairs)


def nominated_pairs(connection: Connection) -> list[CandidatePair]:
    """The pairs ``connection`` carries data on (one per component once ICE completed)."""
    nominated: dict[int, CandidatePair] = getattr(connection, _NOMINATED)
    return list(nominated.values())


def ice_connection_of(dtls: RTCDtlsTransport) -> Connection | None:
    """The aioice connection under a DTLS transport, None if aiortc has none there."""
    connection = getattr(dtls.transport.iceGatherer, _GATHERER_CONNECTION)
    return connection if isinstance(connection, Connection) else None


@dataclasses.dataclass(frozen=True)
class DtlsDetails:
    """What :func:`dtls_details` read off one DTLS transport."""

    stats: RTCTransportStats
    """aiortc's own statistics of the transport (its counters, ICE role, DTLS state)."""
    role: str | None
    """``"client"`` or ``"server"`` once decided, else None."""
    local_certificate: bytes | None
    """Our certificate, DER encoded."""
    remote_certificate: bytes | None
    """The peer's certificate, DER encoded, once the handshake gave it."""
    cipher: str | None
    """The negotiated cipher suite, as OpenSSL names it."""
    protocol_version: int | None
    """The negotiated protocol version number (0xFEFD for DTLS 1.2)."""
    srtp_profile: str | None
    """The negotiated SRTP protection profile (``"SRTP_AES128_CM_SHA1_80"``...)."""


def _der(certificate: Any) -> bytes | None:
    public_bytes = getattr(certificate, "public_bytes", None)
    if public_bytes is None:
        return None
    der: bytes = public_bytes(Encoding.DER)
    return der


def dtls_details(dtls: RTCDtlsTransport) -> DtlsDetails:
    """Counters, role, certificates and negotiated parameters of a DTLS transport.

    Raises:
        ValueError: If ``dtls`` is not an aiortc RTCDtlsTransport.
    """
    if not isinstance(dtls, RTCDtlsTransport):
        raise ValueError(f"dtls must be an aiortc RTCDtlsTransport, not {type(dtls).__name__}")
    report = getattr(dtls, _DTLS_GET_STATS)()
    stats_id: str = getattr(dtls, _DTLS_STATS_ID)
    stats = report[stats_id]
    role = getattr(dtls, _DTLS_ROLE)
    local = getattr(getattr(dtls, _DTLS_LOCAL_CERTIFICATE), _CERTIFICATE_X509, None)
    ssl = getattr(dtls, _DTLS_SSL)
    remote: bytes | None = None
    cipher: str | None = None
    version: int | None = None
    profile: str | None = None
    if ssl is not None and dtls.state == "connected":
        remote = _der(ssl.get_peer_certificate(as_cryptography=True))
        cipher = ssl.get_cipher_name()
        version = ssl.get_protocol_version()
        selected = ssl.get_selected_srtp_profile()
        profile = selected.decode() if selected else None
    return DtlsDetails(
        stats=stats,
        role=role if role in ("client", "server") else None,
        local_certificate=_der(local),
        remote_certificate=remote,
        cipher=cipher or None,
        protocol_version=version if isinstance(version, int) else None,
        srtp_profile=profile,
    )
