"""Access tokens: a LiveKit JWT (HS256) signed with an API key's secret.

LiveKit tokens are JSON Web Tokens signed with HMAC-SHA256; the claims are those of
``livekit.api.AccessToken`` (``iss`` the API key, ``sub`` the identity, ``nbf``/``exp``,
``name``, ``metadata``, ``attributes`` and the ``video`` grants in lower camel case).
Signing one is a few lines of the standard library (``hmac``, ``hashlib``, ``base64``,
``json``), so the CLI needs neither ``livekit-api`` nor PyJWT for it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field

__all__ = ["TRACK_SOURCES", "Grants", "TokenRequest", "decode_unverified", "make_token"]

TRACK_SOURCES = ("camera", "microphone", "screen_share", "screen_share_audio")
"""The names LiveKit's ``canPublishSources`` grant accepts."""

DEFAULT_TTL = 6 * 3600.0


@dataclass
class Grants:
    """The ``video`` grants of a token (those a client needs; None leaves a grant out)."""

    room_join: bool = True
    room: str = ""
    can_publish: bool = True
    can_subscribe: bool = True
    can_publish_data: bool = True
    can_publish_sources: list[str] | None = None
    can_update_own_metadata: bool | None = None
    hidden: bool | None = None
    room_admin: bool | None = None
    room_create: bool | None = None
    room_list: bool | None = None
    room_record: bool | None = None
    agent: bool | None = None

    def claims(self) -> dict[str, object]:
        """The grants as the ``video`` claim: lower camel case, unset ones left out."""
        out: dict[str, object] = {}
        for name, value in vars(self).items():
            if value is None or value == "":
                continue
            head, *rest = name.split("_")
            out[head + "".join(part.capitalize() for part in rest)] = value
        return out


@dataclass
class TokenRequest:
    """Everything a token says: who, for how long, with which grants."""

    api_key: str
    api_secret: str
    identity: str
    grants: Grants = field(default_factory=Grants)
    name: str = ""
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    ttl: float = DEFAULT_TTL
    kind: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_token(request: TokenRequest, *, now: float | None = None) -> str:
    """Sign ``request`` into a LiveKit access token.

    Args:
        request: The identity, grants and lifetime.
        now: The issue time (Unix seconds); the current time when omitted.

    Returns:
        The JWT, ``header.claims.signature``.

    Raises:
        ValueError: If the key, secret or identity is empty, a room join names no room,
            the lifetime is not positive or a publish source is unknown.
    """
    if not request.api_key:
        raise ValueError("api key is empty: pass --api-key or set LIVEKIT_API_KEY")
    if not request.api_secret:
        raise ValueError("api secret is empty: pass --api-secret or set LIVEKIT_API_SECRET")
    if not request.identity:
        raise ValueError("identity is empty: pass --identity")
    if request.grants.room_join and not request.grants.room:
        raise ValueError("a token that joins a room needs the room's name: pass --room")
    if not request.ttl > 0:
        raise ValueError(f"token lifetime must be positive, got {request.ttl!r} s")
    for source in request.grants.can_publish_sources or ():
        if source not in TRACK_SOURCES:
            raise ValueError(
                f"unknown track source {source!r}: expected one of {', '.join(TRACK_SOURCES)}"
            )
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "iss": request.api_key,
        "sub": request.identity,
        "nbf": issued,
        "exp": issued + int(request.ttl),
        "video": request.grants.claims(),
    }
    if request.name:
        claims["name"] = request.name
    if request.metadata:
        claims["metadata"] = request.metadata
    if request.attributes:
        claims["attributes"] = dict(request.attributes)
    if request.kind:
        claims["kind"] = request.kind
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = (
        _b64(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64(json.dumps(claims, separators=(",", ":")).encode())
    )
    signature = hmac.new(
        request.api_secret.encode(), signing_input.encode("ascii"), hashlib.sha256
    ).digest()
    return signing_input + "." + _b64(signature)


def decode_unverified(token: str) -> dict[str, object]:
    """The claims of a JWT, without checking its signature (for display only).

    Raises:
        ValueError: If ``token`` is not a JWT with a JSON object as its claims.
    """
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise ValueError("a token has three dot-separated parts")
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"the token's claims are not base64 JSON: {exc}") from exc
    if not isinstance(claims, dict):
        raise ValueError("the token's claims are not a JSON object")
    return claims
