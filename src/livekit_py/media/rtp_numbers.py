"""RTP sequence numbers and timestamps wrap: the signed distance between two of them."""

from __future__ import annotations

__all__ = ["wrapped_delta"]


def wrapped_delta(value: int, reference: int, bits: int) -> int:
    """How far ``value`` is ahead of ``reference`` (negative: behind), modulo ``2**bits``.

    The result is in ``[-2**(bits - 1), 2**(bits - 1))``: the nearer way round the
    circle, half way counting as behind. 16 bits for sequence numbers, 32 for timestamps.
    """
    half = 1 << (bits - 1)
    return ((value - reference + half) & ((1 << bits) - 1)) - half
