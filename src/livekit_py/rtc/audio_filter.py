"""``AudioFilter``: registers a native audio filter plugin, as the official SDK's.

The official SDK hands the plugin's shared library to its Rust core, which loads it and
runs it on the audio streams that ask for its module id (``AudioStream(...,
noise_cancellation=NoiseCancellationOptions(module_id, options))``); LiveKit's
noise-cancellation package does this when it is imported.  livekit_py is pure Python and
does not load native filter plugins: ``AudioFilter`` checks that the files exist and
records the module, and streams that ask for a recorded (or any other) module get
livekit_py's own noise suppression instead, with a warning that names the module.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from ..log import get_logger

__all__ = ["AudioFilter"]

logger = get_logger("media.audio_filter")


@dataclass(frozen=True)
class _Registered:
    module_id: str
    path: str
    dependencies: tuple[str, ...]


_registry: dict[str, _Registered] = {}
_registry_lock = threading.Lock()


def registered_filter(module_id: str) -> _Registered | None:
    """What :class:`AudioFilter` recorded for ``module_id``, if anything."""
    with _registry_lock:
        return _registry.get(module_id)


class AudioFilter:
    """Records a native audio filter plugin under ``module_id``.

    The plugin itself is not loaded (see the module documentation): what it would do to
    a stream is done by livekit_py's own noise suppression.

    Raises:
        RuntimeError: If ``path`` or one of ``dependencies`` is not an existing file
            (the official SDK raises when it cannot load the library); the message says
            which.
        ValueError: If ``module_id`` or ``path`` is not a non-empty string.
    """

    def __init__(self, module_id: str, path: str, dependencies: list[str] | None = None) -> None:
        if not isinstance(module_id, str) or not module_id:
            raise ValueError(f"module_id must be a non-empty string, got {module_id!r}")
        if not isinstance(path, str) or not path:
            raise ValueError(f"path must be a non-empty string, got {path!r}")
        deps = tuple(dependencies or ())
        for file in (path, *deps):
            if not os.path.isfile(file):
                raise RuntimeError(
                    f"failed to initialize audio filter {module_id!r}: {file!r} is not a file"
                )
        self._path = path
        self._module_id = module_id
        with _registry_lock:
            _registry[module_id] = _Registered(module_id, path, deps)
        logger.info(
            "audio filter %r (%s) recorded; livekit_py does not load native filter plugins, "
            "streams asking for it use livekit_py's own noise suppression",
            module_id,
            os.path.basename(path),
        )
