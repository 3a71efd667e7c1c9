"""livekit-py: a pure-Python LiveKit client SDK with the livekit.rtc API.

Everything is importable from the package top level and from ``livekit_py.rtc``::

    from livekit_py import rtc

    room = rtc.Room()

Importing the package is cheap: the public names load their modules (and aiortc,
PyAV, numpy...) on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import rtc as rtc
from .rtc import __all__ as __all__

if TYPE_CHECKING:
    from .rtc import *  # noqa: F403
    from .rtc import stats as stats


def __getattr__(name: str) -> Any:
    if name in __all__ or name == "stats":
        value = getattr(rtc, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | {"stats"})
