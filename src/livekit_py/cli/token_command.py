"""``livekit-py token``: sign an access token and print it (standard library only)."""

from __future__ import annotations

import argparse
import json
import sys

from .settings import UsageError, resolve_connection
from .tokens import Grants, TokenRequest, decode_unverified, make_token

__all__ = ["request_from_args", "run"]


def request_from_args(args: argparse.Namespace, env: dict[str, str]) -> TokenRequest:
    """The token the command line asks for.

    Raises:
        UsageError: If the key or secret is missing, or a join names no room.
    """
    conn = resolve_connection(
        url=None,
        api_key=args.api_key,
        api_secret=args.api_secret,
        dev=args.dev,
        env=env,
        need_url=False,
    )
    if not conn.api_key or not conn.api_secret:
        raise UsageError(
            "no key and secret: pass --api-key and --api-secret, set LIVEKIT_API_KEY and"
            " LIVEKIT_API_SECRET, or --dev for the dev server's devkey/secret"
        )
    join = not args.no_join
    if join and not args.room:
        raise UsageError("a token that joins a room needs --room (or --no-join)")
    grants = Grants(
        room_join=join,
        room=args.room,
        can_publish=not args.no_publish,
        can_subscribe=not args.no_subscribe,
        can_publish_data=not args.no_publish_data,
        can_publish_sources=args.sources,
        can_update_own_metadata=True if args.update_own_metadata else None,
        hidden=True if args.hidden else None,
        room_admin=True if args.admin else None,
        room_create=True if args.create else None,
        room_list=True if args.list else None,
        room_record=True if args.record else None,
        agent=True if args.agent else None,
    )
    return TokenRequest(
        api_key=conn.api_key,
        api_secret=conn.api_secret,
        identity=args.identity,
        grants=grants,
        name=args.name,
        metadata=args.metadata,
        attributes=dict(args.attribute),
        ttl=args.valid_for,
    )


def run(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Print the token (or, with ``--json``, the token and its claims)."""
    try:
        token = make_token(request_from_args(args, env))
    except UsageError:
        raise
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps({"token": token, "claims": decode_unverified(token)}, indent=2))
    else:
        print(token)
    sys.stdout.flush()
    return 0
