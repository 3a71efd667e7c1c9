"""livekit-py: a pure-Python LiveKit client SDK with the livekit.rtc API.

Everything is importable from the package top level and from ``livekit_py.rtc``::

    from livekit_py import rtc

    room = rtc.Room()
"""

from . import rtc as rtc
from .rtc import *  # noqa: F403
from .rtc import __all__ as __all__
from .rtc import stats as stats
