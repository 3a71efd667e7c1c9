"""Audio device access for ``MediaDevices``: the backend protocol and the default one.

The default backend is built on the optional ``sounddevice`` package (PortAudio),
installed with ``pip install livekit-py[devices]``; it is imported when first needed, never
by importing this module.  Another backend can be installed with
:func:`set_audio_backend`, e.g. a synthetic one in tests or on machines without sound
cards.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "INSTALL_HINT",
    "AudioBackend",
    "AudioCallback",
    "AudioDeviceStream",
    "Samples",
    "SoundDeviceBackend",
    "close_stream",
    "get_audio_backend",
    "import_sounddevice",
    "set_audio_backend",
    "time_delta",
]

Samples = npt.NDArray[np.int16]

#: signature of a stream callback: ``(data, frames, time_info, status)``, as in sounddevice
AudioCallback = Callable[[Samples, int, Any, Any], None]

INSTALL_HINT = "pip install livekit-py[devices]"


class AudioDeviceStream(Protocol):
    """A device stream made by an :class:`AudioBackend` (a subset of ``sounddevice``'s)."""

    def start(self) -> None:
        """Start calling the callback."""

    def stop(self) -> None:
        """Stop calling the callback; returns once the callback is no longer running."""

    def close(self) -> None:
        """Release the device."""


class AudioBackend(Protocol):
    """Device access used by :class:`MediaDevices`.

    Streams carry ``int16`` samples.  Their ``callback(data, frames, time_info, status)``
    runs on a backend thread with ``data`` shaped ``(frames, channels)``: filled with the
    captured samples for an input stream, to be filled with the samples to play for an
    output stream.  ``time_info`` has the PortAudio attributes ``currentTime``,
    ``inputBufferAdcTime`` and ``outputBufferDacTime`` (seconds, any clock); ``status`` is
    falsy unless something went wrong (an overflow, an underflow).
    """

    def query_devices(self) -> Sequence[Mapping[str, Any]]:
        """Every device, in index order, each with ``name``, ``max_input_channels`` and
        ``max_output_channels`` (and whatever else the backend knows)."""
        ...

    def default_device(self) -> tuple[int | None, int | None]:
        """The indices of the default input and output devices (None when there is none)."""
        ...

    def InputStream(
        self,
        *,
        samplerate: int,
        blocksize: int,
        device: int | None,
        channels: int,
        dtype: str,
        callback: AudioCallback,
    ) -> AudioDeviceStream:
        """An input (capture) stream, not started yet."""
        ...

    def OutputStream(
        self,
        *,
        samplerate: int,
        blocksize: int,
        device: int | None,
        channels: int,
        dtype: str,
        callback: AudioCallback,
    ) -> AudioDeviceStream:
        """An output (playback) stream, not started yet."""
        ...


def import_sounddevice() -> Any:
    """The ``sounddevice`` module, or an ImportError that says how to get it."""
    try:
        import sounddevice
    except ImportError as exc:
        raise ImportError(
            "MediaDevices needs the optional 'sounddevice' package: install it with "
            f"`{INSTALL_HINT}` (or `pip install sounddevice`), or install another audio "
            "backend with livekit_py.rtc.media_devices.set_audio_backend()"
        ) from exc
    except OSError as exc:  # sounddevice is there but the PortAudio library is not
        raise ImportError(
            f"MediaDevices: 'sounddevice' could not load the PortAudio library ({exc}); "
            "install PortAudio (e.g. `apt-get install libportaudio2`) and "
            f"`{INSTALL_HINT}`"
        ) from exc
    return sounddevice


class SoundDeviceBackend:
    """The default :class:`AudioBackend`, on ``sounddevice`` (PortAudio).

    Raises:
        ImportError: On construction, if ``sounddevice`` or PortAudio is not installed.
    """

    def __init__(self) -> None:
        self._sd = import_sounddevice()

    def query_devices(self) -> Sequence[Mapping[str, Any]]:
        return [dict(device) for device in self._sd.query_devices()]

    def default_device(self) -> tuple[int | None, int | None]:
        return self._default_index("input"), self._default_index("output")

    def _default_index(self, kind: str) -> int | None:
        # sd.default.device is an indexable pair (not a tuple); -1 or None there mean
        # "PortAudio's default", which query_devices(kind=...) resolves
        position = 0 if kind == "input" else 1
        value: Any = None
        with contextlib.suppress(Exception):
            value = self._sd.default.device[position]
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        try:
            if isinstance(value, str):
                info = self._sd.query_devices(value, kind=kind)
            else:
                info = self._sd.query_devices(kind=kind)
        except Exception:  # no such device (PortAudioError, ValueError)
            return None
        index = info.get("index") if isinstance(info, Mapping) else None
        if isinstance(index, int) and index >= 0:
            return index
        return None

    def InputStream(
        self,
        *,
        samplerate: int,
        blocksize: int,
        device: int | None,
        channels: int,
        dtype: str,
        callback: AudioCallback,
    ) -> AudioDeviceStream:
        stream: AudioDeviceStream = self._sd.InputStream(
            samplerate=samplerate,
            blocksize=blocksize,
            device=device,
            channels=channels,
            dtype=dtype,
            callback=callback,
        )
        return stream

    def OutputStream(
        self,
        *,
        samplerate: int,
        blocksize: int,
        device: int | None,
        channels: int,
        dtype: str,
        callback: AudioCallback,
    ) -> AudioDeviceStream:
        stream: AudioDeviceStream = self._sd.OutputStream(
            samplerate=samplerate,
            blocksize=blocksize,
            device=device,
            channels=channels,
            dtype=dtype,
            callback=callback,
        )
        return stream


_backend: AudioBackend | None = None
_backend_lock = threading.Lock()


def set_audio_backend(backend: AudioBackend | None) -> AudioBackend | None:
    """Install the audio backend used by :class:`MediaDevices` objects created from now on.

    Args:
        backend: The backend, or None to go back to the default (``sounddevice``), which is
            loaded when next needed.

    Returns:
        The backend installed before (None if the default was not loaded yet).
    """
    global _backend
    with _backend_lock:
        previous, _backend = _backend, backend
    return previous


def get_audio_backend() -> AudioBackend:
    """The installed audio backend; the ``sounddevice`` one is loaded on first use.

    Raises:
        ImportError: If no backend was installed and ``sounddevice`` is not available.
    """
    global _backend
    with _backend_lock:
        if _backend is None:
            _backend = SoundDeviceBackend()
        return _backend


# ---------------------------------------------------------------------------------------
# device stream helpers


def time_delta(time_info: Any, later: str, earlier: str) -> float:
    """``time_info.later - time_info.earlier`` in seconds, 0 when unknown or negative."""
    try:
        delta = float(getattr(time_info, later)) - float(getattr(time_info, earlier))
    except (AttributeError, TypeError, ValueError):
        return 0.0
    return delta if 0.0 < delta < 10.0 else 0.0


def close_stream(stream: AudioDeviceStream) -> None:
    try:
        stream.stop()
    finally:
        stream.close()
