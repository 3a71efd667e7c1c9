"""What the commands share: the server and credentials, and the parsers of option values.

Everything here is pure (no I/O but reading the environment mapping it is given), so it
is unit-tested on its own.
"""

from __future__ import annotations

import argparse
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from .tokens import Grants, TokenRequest, make_token

__all__ = [
    "DEV_API_KEY",
    "DEV_API_SECRET",
    "DEV_URL",
    "Connection",
    "UsageError",
    "connection_from_args",
    "default_identity",
    "identity_from_args",
    "parse_attribute",
    "parse_bitrate",
    "parse_duration",
    "parse_size",
    "resolve_connection",
]

DEV_URL = "ws://127.0.0.1:7880"
DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"
"""What ``livekit-server --dev`` listens on and accepts (``--dev`` selects them)."""


class UsageError(ValueError):
    """A command line that cannot work (a missing URL, key or room...); exit status 2."""


@dataclass(frozen=True)
class Connection:
    """Where to connect and how to get tokens."""

    url: str
    api_key: str = ""
    api_secret: str = ""
    token: str = ""

    def token_for(
        self,
        identity: str,
        room: str,
        *,
        name: str = "",
        metadata: str = "",
        attributes: Mapping[str, str] | None = None,
        hidden: bool | None = None,
    ) -> str:
        """A token to join ``room`` as ``identity``: the given ``--token``, or a new one.

        Raises:
            UsageError: If neither a token nor a key and secret were given.
        """
        if self.token:
            return self.token
        if not self.api_key or not self.api_secret:
            raise UsageError(
                "no credentials: pass --api-key and --api-secret (or set LIVEKIT_API_KEY"
                " and LIVEKIT_API_SECRET), --token, or --dev for a local dev server"
            )
        return make_token(
            TokenRequest(
                api_key=self.api_key,
                api_secret=self.api_secret,
                identity=identity,
                name=name,
                metadata=metadata,
                attributes=dict(attributes or {}),
                grants=Grants(room=room, can_update_own_metadata=True, hidden=hidden),
            )
        )


def resolve_connection(
    *,
    url: str | None,
    api_key: str | None,
    api_secret: str | None,
    token: str | None = None,
    dev: bool = False,
    env: Mapping[str, str],
    need_url: bool = True,
) -> Connection:
    """The server and credentials from the flags, else the environment, else ``--dev``'s.

    Flags win over ``LIVEKIT_URL``, ``LIVEKIT_API_KEY``, ``LIVEKIT_API_SECRET`` (and
    ``LIVEKIT_TOKEN``), which win over the dev server's defaults that ``dev`` selects.

    Raises:
        UsageError: If no URL is known (and ``need_url``), or the URL's scheme is not one
            of ws, wss, http, https.
    """
    chosen_url = url or env.get("LIVEKIT_URL") or (DEV_URL if dev else "")
    key = api_key or env.get("LIVEKIT_API_KEY") or (DEV_API_KEY if dev else "")
    secret = api_secret or env.get("LIVEKIT_API_SECRET") or (DEV_API_SECRET if dev else "")
    chosen_token = token or env.get("LIVEKIT_TOKEN") or ""
    if need_url:
        if not chosen_url:
            raise UsageError(
                "no server URL: pass --url or set LIVEKIT_URL (or --dev for ws://127.0.0.1:7880)"
            )
        if not re.match(r"^(wss?|https?)://[^/\s]+", chosen_url, re.IGNORECASE):
            raise UsageError(
                f"server URL must look like ws://host:port or wss://host, got {chosen_url!r}"
            )
    return Connection(url=chosen_url, api_key=key, api_secret=secret, token=chosen_token)


def connection_from_args(
    args: argparse.Namespace,
    env: Mapping[str, str],
    *,
    with_token: bool = True,
    need_url: bool = True,
) -> Connection:
    """:func:`resolve_connection` from the common options of a parsed command line.

    Args:
        args: Holds ``api_key``, ``api_secret`` and ``dev``, and ``url`` and ``token``
            where the command has them.
        env: The environment.
        with_token: Whether to read ``--token``; commands that make tokens of their
            own say False.
        need_url: Whether a server URL is required.
    """
    return resolve_connection(
        url=getattr(args, "url", None),
        api_key=args.api_key,
        api_secret=args.api_secret,
        token=getattr(args, "token", None) if with_token else None,
        dev=args.dev,
        env=env,
        need_url=need_url,
    )


def default_identity(prefix: str) -> str:
    """``<prefix>-<4 random hex digits>``: an identity unlikely to collide in a room."""
    return f"{prefix}-{secrets.token_hex(2)}"


def identity_from_args(args: argparse.Namespace) -> str:
    """The ``--identity`` given, else a new one from ``--identity-prefix``."""
    identity: str = args.identity or default_identity(args.identity_prefix)
    return identity


_SIZE = re.compile(r"^\s*(\d+)\s*[xX:\u00d7]\s*(\d+)\s*$")
_NAMED_SIZES = {
    "180p": (320, 180),
    "360p": (640, 360),
    "480p": (854, 480),
    "540p": (960, 540),
    "720p": (1280, 720),
    "1080p": (1920, 1080),
}


def parse_size(text: str) -> tuple[int, int]:
    """``640x360`` (or ``360p``, ``720p``...) as (width, height), both even and at least 16.

    Raises:
        ValueError: If ``text`` is not a size of that form.
    """
    named = _NAMED_SIZES.get(text.strip().lower())
    if named is not None:
        return named
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"size must be WIDTHxHEIGHT such as 640x360 (or 720p), got {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    for what, value in (("width", width), ("height", height)):
        if value < 16 or value > 7680:
            raise ValueError(f"{what} must be between 16 and 7680, got {value}")
        if value % 2:
            raise ValueError(f"{what} must be even (4:2:0 video), got {value}")
    return width, height


_BITRATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)(?:bps|b/s|b)?\s*$")
_BITRATE_UNITS = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


def parse_bitrate(text: str) -> int:
    """``800000``, ``800k``, ``1.5M`` or ``2Mbps`` as bits per second (a positive int).

    Raises:
        ValueError: If ``text`` is not such a bitrate.
    """
    match = _BITRATE.match(text)
    if match is None:
        raise ValueError(f"bitrate must be a number with an optional k/M/G, got {text!r}")
    value = float(match.group(1)) * _BITRATE_UNITS[match.group(2).lower()]
    if not value >= 1:
        raise ValueError(f"bitrate must be at least 1 bps, got {text!r}")
    return int(value)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """``30`` (seconds), ``1.5s``, ``500ms``, ``2m``, ``1h30m`` as seconds (positive).

    Raises:
        ValueError: If ``text`` is not such a duration.
    """
    raw = text.strip().lower()
    try:
        seconds = float(raw)
    except ValueError:
        pos = 0
        seconds = 0.0
        for match in _DURATION_PART.finditer(raw):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            pos = match.end()
        if pos != len(raw) or not raw:
            raise ValueError(
                f"duration must be seconds or like 1.5s, 500ms, 2m, 1h30m; got {text!r}"
            ) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"duration must be positive, got {text!r}")
    return seconds


def parse_attribute(text: str) -> tuple[str, str]:
    """``key=value`` as (key, value); the value may contain ``=``.

    Raises:
        ValueError: If there is no ``=`` or the key is empty.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"attribute must be key=value, got {text!r}")
    return key.strip(), value
