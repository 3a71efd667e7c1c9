"""livekit_py.log: aioice's and aiortc's loggers are turned down only where unset."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from livekit_py import log


@pytest.fixture
def library_loggers() -> Iterator[list[logging.Logger]]:
    loggers = [logging.getLogger(name) for name in log.QUIET_LIBRARY_LOGGERS]
    saved = [lg.level for lg in loggers]
    yield loggers
    for lg, level in zip(loggers, saved, strict=True):
        lg.setLevel(level)


def test_unset_library_loggers_go_to_warning(library_loggers: list[logging.Logger]) -> None:
    assert [lg.name for lg in library_loggers] == ["aioice", "aiortc"]
    for lg in library_loggers:
        lg.setLevel(logging.NOTSET)
    log.quiet_library_loggers()
    assert [lg.level for lg in library_loggers] == [logging.WARNING, logging.WARNING]
    assert not logging.getLogger("aioice.ice").isEnabledFor(logging.INFO)
    assert logging.getLogger("aioice.ice").isEnabledFor(logging.WARNING)


def test_a_level_the_application_chose_is_kept(library_loggers: list[logging.Logger]) -> None:
    library_loggers[0].setLevel(logging.INFO)
    library_loggers[1].setLevel(logging.DEBUG)
    handlers = list(logging.getLogger().handlers)
    log.quiet_library_loggers()
    assert [lg.level for lg in library_loggers] == [logging.INFO, logging.DEBUG]
    assert logging.getLogger().handlers == handlers  # nothing else is touched
