"""livekit-py: a pure-Python LiveKit client SDK with the livekit.rtc API.

Everything is importable from the package top level and from ``livekit_py.rtc``::

    from livekit_py import rtc

    room = rtc.Room()
"""

from .errors import ConnectError
from .event_emitter import EventEmitter
from .room.options import (
    DataPacket,
    E2EEOptions,
    KeyProviderOptions,
    RoomOptions,
    RtcConfiguration,
    SipDTMF,
)
from .room.participant import LocalParticipant, Participant, RemoteParticipant
from .room.room import EventTypes, Room
from .types import *  # noqa: F403
from .types import __all__ as _types_all
from .version import __version__

__all__ = [
    *_types_all,
    "ConnectError",
    "DataPacket",
    "E2EEOptions",
    "EventEmitter",
    "EventTypes",
    "KeyProviderOptions",
    "LocalParticipant",
    "Participant",
    "RemoteParticipant",
    "Room",
    "RoomOptions",
    "RtcConfiguration",
    "SipDTMF",
    "__version__",
]

from . import rtc as rtc
