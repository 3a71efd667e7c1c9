"""EventEmitter: on/once/off/emit, decorators, argument trimming, errors."""

from __future__ import annotations

from typing import Any

import pytest

from livekit_py import EventEmitter, Room


def test_on_emit_off_and_decorator() -> None:
    em: EventEmitter[str] = EventEmitter()
    got: list[Any] = []

    def handler(a: int, b: int) -> None:
        got.append((a, b))

    assert em.on("x", handler) is handler

    @em.on("x")
    def deco(a: int) -> None:  # takes fewer arguments than emitted
        got.append(a)

    em.emit("x", 1, 2, 3)
    assert got == [(1, 2), 1]
    em.off("x", handler)
    em.emit("x", 5, 6)
    assert got == [(1, 2), 1, 5]
    em.off("x", handler)  # removing twice is harmless
    em.emit("never-registered")


def test_once_fires_once_and_can_be_removed() -> None:
    em: EventEmitter[str] = EventEmitter()
    got: list[int] = []

    @em.once("y")
    def first(v: int) -> None:
        got.append(v)

    em.emit("y", 1)
    em.emit("y", 2)
    assert got == [1]

    def second(v: int) -> None:
        got.append(v)

    em.once("y", second)
    em.off("y", second)
    em.emit("y", 3)
    assert got == [1]


def test_handler_exceptions_are_isolated(caplog: pytest.LogCaptureFixture) -> None:
    em: EventEmitter[str] = EventEmitter()
    got: list[str] = []

    def bad() -> None:
        raise RuntimeError("handler failed")

    em.on("z", bad)
    em.on("z", lambda: got.append("ok"))
    em.emit("z")
    assert got == ["ok"]
    assert "handler failed" in caplog.text


def test_async_callbacks_are_rejected() -> None:
    em: EventEmitter[str] = EventEmitter()

    async def handler() -> None:
        return None

    with pytest.raises(ValueError, match="async"):
        em.on("a", handler)


def test_room_rejects_unknown_event_names() -> None:
    room = Room()
    with pytest.raises(ValueError, match="unknown event 'participant_joined'"):
        room.on("participant_joined", lambda: None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown event"):
        room.once("conected", lambda: None)  # type: ignore[arg-type]
    room.on("connected", lambda: None)
