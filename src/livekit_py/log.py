"""Loggers of livekit-py: everything logs under the ``livekit_py`` hierarchy.

At INFO a healthy connection prints nothing: joins, publications and the session's
routine transitions are at DEBUG; INFO is for what is worth knowing (a reconnect or
resume, a disconnect the application did not ask for, a degraded feature).

aioice and aiortc log every ICE check at INFO (about 16 lines per connection).  Their
loggers (``aioice``, ``aiortc``) are set to WARNING by :func:`quiet_library_loggers`, at
import and at each connect, but only while their level is unset (``NOTSET``): a level the
application gave them (``logging.getLogger("aioice").setLevel(logging.INFO)``, before or
after importing livekit_py) is never changed, and no handler or other logger is touched.
"""

from __future__ import annotations

import logging

__all__ = ["QUIET_LIBRARY_LOGGERS", "get_logger", "logger", "quiet_library_loggers"]

logger = logging.getLogger("livekit_py")

#: The libraries' loggers that :func:`quiet_library_loggers` turns down to WARNING.
QUIET_LIBRARY_LOGGERS = ("aioice", "aiortc")


def get_logger(name: str) -> logging.Logger:
    """The logger ``livekit_py.<name>``."""
    return logger.getChild(name)


def quiet_library_loggers() -> None:
    """Set the ``aioice`` and ``aiortc`` loggers to WARNING where their level is unset."""
    for name in QUIET_LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        if library.level == logging.NOTSET:
            library.setLevel(logging.WARNING)


quiet_library_loggers()
