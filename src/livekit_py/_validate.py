"""Argument checks shared by the public objects: one wording for every ValueError."""

from __future__ import annotations

__all__ = ["check_int", "copy_buffer"]


def check_int(name: str, value: object, *, minimum: int = 1) -> int:
    """``value`` as an int, or ValueError naming ``name`` (bools are not ints here).

    Args:
        name: The argument's name, for the message.
        value: What the caller passed.
        minimum: The smallest accepted value (1: positive; 0: not negative).
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        if minimum == 1:
            raise ValueError(f"{name} must be positive, got {value}")
        if minimum == 0:
            raise ValueError(f"{name} must not be negative, got {value}")
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def copy_buffer(data: bytes | bytearray | memoryview) -> bytearray:
    """A copy of ``data``'s bytes in logical order (also for strided or typed memoryviews).

    Raises:
        TypeError: If ``data`` is not bytes, a bytearray or a memoryview.
    """
    try:
        return bytearray(memoryview(data))
    except TypeError:
        raise TypeError(
            f"data must be bytes, bytearray or memoryview, got {type(data).__name__}"
        ) from None
