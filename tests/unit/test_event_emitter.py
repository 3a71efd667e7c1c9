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


def test_callback_gets_only_the_arguments_it_takes() -> None:
    em: EventEmitter[str] = EventEmitter()
    got: list[Any] = []
    em.on("e", lambda: got.append("none"))
    em.on("e", lambda a: got.append(("one", a)))
    em.on("e", lambda a, b=7: got.append(("two", a, b)))
    em.on("e", lambda *args: got.append(("all", args)))
    em.on("e", lambda a, *rest: got.append(("varargs", a, rest)))
    em.on("e", lambda a, *, key="k": got.append(("kwonly", a, key)))
    em.emit("e", 1, 2, 3)
    assert got == [
        "none",
        ("one", 1),
        ("two", 1, 2),
        ("all", (1, 2, 3)),
        ("varargs", 1, (2, 3)),
        ("kwonly", 1, "k"),
    ]


def test_bound_methods_count_without_self() -> None:
    em: EventEmitter[str] = EventEmitter()
    got: list[Any] = []

    class Listener:
        def on_event(self, a: int) -> None:
            got.append(a)

    em.on("m", Listener().on_event)
    em.emit("m", 4, 5)
    assert got == [4]


def test_type_error_of_a_callback_needing_more_arguments_is_raised() -> None:
    em: EventEmitter[str] = EventEmitter()
    got: list[str] = []

    def needs_two(a: int, b: int) -> None:
        got.append("called")

    em.on("t", needs_two)
    em.on("t", lambda *_: got.append("after"))
    with pytest.raises(TypeError):
        em.emit("t", 1)  # one argument for a callback that needs two
    assert got == []  # as the official SDK: the callbacks after it do not run


def test_type_error_raised_inside_a_callback_propagates() -> None:
    em: EventEmitter[str] = EventEmitter()

    def broken(value: int) -> None:
        raise TypeError("inside the callback")

    em.on("t", broken)
    with pytest.raises(TypeError, match="inside the callback"):
        em.emit("t", 1)


def test_other_exceptions_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    em: EventEmitter[str] = EventEmitter()
    got: list[str] = []

    def bad(value: int) -> None:
        raise KeyError("missing")

    em.on("k", bad)
    em.on("k", lambda v: got.append(f"after {v}"))
    em.emit("k", 3)
    assert got == ["after 3"]
    assert "missing" in caplog.text and "'k'" in caplog.text


def test_room_logs_a_type_error_of_a_user_callback(caplog: pytest.LogCaptureFixture) -> None:
    # The official Room's event loop logs what its emit raises ("error running user
    # callback"); ours does the same so that a wrong callback cannot break the session.
    room = Room()
    got: list[str] = []

    def wrong(a: Any, b: Any, c: Any) -> None:
        got.append("called")

    room.on("reconnecting", wrong)
    room.emit("reconnecting")
    assert got == []
    assert "error running user callback" in caplog.text
    assert "reconnecting" in caplog.text
