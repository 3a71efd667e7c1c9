"""Loggers of livekit-py: everything logs under the ``livekit_py`` hierarchy."""

from __future__ import annotations

import logging

logger = logging.getLogger("livekit_py")


def get_logger(name: str) -> logging.Logger:
    """The logger ``livekit_py.<name>``."""
    return logger.getChild(name)
