"""``livekit-py``: a command line for what LiveKit's ``lk`` users do from a terminal.

Commands (``livekit-py COMMAND --help`` for each): ``join`` (print a room's events and
data, send data, text or chat), ``publish`` (a media file or a test pattern and tone),
``record`` (tracks, or a mix of the audio, to WAV/Ogg Opus/WebM/MP4), ``load-test``
(N participants in one process with a live table of statistics) and ``token`` (a dev
access token).  ``python -m livekit_py`` is the same program.

Libraries, and why:

- Argument parsing is the standard library's :mod:`argparse`: subcommands, typed
  values with our own parsers (sizes, bitrates, durations), generated ``--help``; it
  costs no dependency and no import time, and the parser can be unit-tested as a plain
  object.  ``click``/``typer`` would add a dependency (typer two) for decorators we
  do not need.
- Progress bars (``publish``, ``record``), the live table of ``load-test`` and the log
  handler are `rich <https://github.com/Textualize/rich>`_: pure Python (one wheel for
  every platform, musl and Windows included), typed, maintained, and it degrades by
  itself when the output is not a terminal (no cursor movement in a pipe or a CI log).
  It is not needed by the SDK, so it is the optional extra ``livekit-py[cli]``;
  without it, commands that need it exit with a message naming the extra.
- Media files are read and written with PyAV, a dependency of the SDK already.
- Tokens are signed with the standard library (HMAC-SHA256 JWTs, see
  :mod:`livekit_py.cli.tokens`), so ``token`` needs no ``livekit-api`` or PyJWT.

The CLI uses only the public API (``livekit_py.rtc``), as a user's program would;
``tests/unit/test_layers.py`` keeps it so.
"""

from .app import main

__all__ = ["main"]
