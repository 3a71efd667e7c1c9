"""The livekit.rtc API under its familiar name: ``from livekit_py import rtc``."""

from livekit_py import *  # noqa: F403
from livekit_py import __all__ as __all__
from livekit_py import stats as stats
