"""A ctypes binding of libopus: the Opus encoder and decoder, their controls, packet facts.

The library is the one PyAV ships in its wheel (``<site-packages>/av.libs/libopus*.so*``
on Linux, ``av/.dylibs/libopus*.dylib`` on macOS, ``av.libs/opus*.dll`` or
``av.libs/libopus*.dll`` on Windows), else whatever ``ctypes.util.find_library("opus")``
finds. It is loaded once, at import; every function is declared with its argument and
result types and checked to exist, and ``opus_get_version_string()`` must answer.

When no library can be loaded, importing this module still works: :data:`available` is
False, :data:`reason` says why, and creating an :class:`OpusEncoder` or
:class:`OpusDecoder` raises :class:`RuntimeError` with that reason. Callers check
:data:`available` and fall back.

Decoding, for a receiver (a jitter buffer hands packets in order)::

    decoder = OpusDecoder(48000, 1)
    pcm = decoder.decode(packet)                  # packet k arrived: (samples, channels) int16
    pcm = decoder.decode_fec(next_packet, 960)    # k lost, k+1 here: k rebuilt from k+1's FEC,
    pcm = decoder.decode(next_packet)             # ... then k+1 decoded as usual
    pcm = decoder.conceal(960)                    # k lost, nothing to rebuild it from: PLC

Encoding::

    encoder = OpusEncoder(48000, 2, APPLICATION_VOIP)
    encoder.bitrate = 32_000
    encoder.inband_fec = 1
    encoder.packet_loss_percent = 10
    packet = encoder.encode(pcm, 960)             # pcm: 960 x 2 int16, interleaved

Both objects serialize their calls with a lock, so a control may be changed from one
thread while another encodes or decodes (aiortc encodes in an executor thread). Neither
loops over samples in Python: PCM goes to and from libopus as numpy buffers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import importlib.util
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt

from ..log import get_logger

__all__ = [
    "APPLICATION_AUDIO",
    "APPLICATION_RESTRICTED_LOWDELAY",
    "APPLICATION_VOIP",
    "AUTO",
    "BITRATE_MAX",
    "MAX_FRAME_MS",
    "MAX_PACKET_BYTES",
    "SAMPLE_RATES",
    "SIGNAL_MUSIC",
    "SIGNAL_VOICE",
    "LibOpus",
    "OpusDecoder",
    "OpusEncoder",
    "OpusError",
    "available",
    "candidate_paths",
    "library_path",
    "load",
    "packet_has_fec",
    "packet_samples",
    "reason",
    "version",
]

logger = get_logger("media.libopus")

Pcm = npt.NDArray[np.int16]
"""Interleaved 16-bit PCM, shape (samples per channel, channels)."""

# -- constants of opus_defines.h --------------------------------------------------------

OPUS_OK: Final = 0
OPUS_UNIMPLEMENTED: Final = -5
AUTO: Final = -1000
"""``OPUS_AUTO``: let libopus choose (bitrate, signal)."""
BITRATE_MAX: Final = -1
"""``OPUS_BITRATE_MAX``: as many bits as the frame can carry."""
APPLICATION_VOIP: Final = 2048
APPLICATION_AUDIO: Final = 2049
APPLICATION_RESTRICTED_LOWDELAY: Final = 2051
SIGNAL_VOICE: Final = 3001
SIGNAL_MUSIC: Final = 3002

_SET_BITRATE: Final = 4002
_GET_BITRATE: Final = 4003
_SET_VBR: Final = 4006
_GET_VBR: Final = 4007
_SET_COMPLEXITY: Final = 4010
_GET_COMPLEXITY: Final = 4011
_SET_INBAND_FEC: Final = 4012
_GET_INBAND_FEC: Final = 4013
_SET_PACKET_LOSS_PERC: Final = 4014
_GET_PACKET_LOSS_PERC: Final = 4015
_SET_DTX: Final = 4016
_GET_DTX: Final = 4017
_SET_SIGNAL: Final = 4024
_GET_SIGNAL: Final = 4025
_GET_LOOKAHEAD: Final = 4027
_RESET_STATE: Final = 4028
_GET_SAMPLE_RATE: Final = 4029
_GET_LAST_PACKET_DURATION: Final = 4039
_GET_IN_DTX: Final = 4049

SAMPLE_RATES: Final = (8000, 12000, 16000, 24000, 48000)
"""The sample rates libopus encodes and decodes at."""
MAX_FRAME_MS: Final = 120
"""The longest packet Opus carries, in milliseconds."""
MAX_PACKET_BYTES: Final = 4000
"""The output buffer of one encode call (libopus' recommended maximum packet size)."""
_ENCODE_FRAME_TENTHS_MS: Final = (25, 50, 100, 200, 400, 600, 800, 1000, 1200)
_APPLICATIONS: Final = (APPLICATION_VOIP, APPLICATION_AUDIO, APPLICATION_RESTRICTED_LOWDELAY)

_c_int16_p = ctypes.POINTER(ctypes.c_int16)


class OpusError(ValueError):
    """libopus refused a call (a bad argument, a corrupt packet...); ``code`` is its error."""

    def __init__(self, what: str, code: int, message: str) -> None:
        super().__init__(f"{what}: {message} (libopus error {code})")
        self.code = code


# -- finding and loading the library -----------------------------------------------------


def _av_directory() -> str | None:
    """The directory of the installed ``av`` package, without importing it."""
    try:
        spec = importlib.util.find_spec("av")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.fspath(next(iter(spec.submodule_search_locations)))


def candidate_paths() -> list[str]:
    """The libopus files the PyAV wheel ships, best first (may be empty).

    Linux wheels keep their libraries in ``<site-packages>/av.libs`` (auditwheel), macOS
    wheels in ``av/.dylibs`` (delocate), Windows wheels in ``av.libs`` (delvewheel).
    """
    av_dir = _av_directory()
    if av_dir is None:
        return []
    site = os.path.dirname(av_dir)
    patterns = [
        os.path.join(site, "av.libs", "libopus*.so*"),
        os.path.join(av_dir, ".dylibs", "libopus*.dylib"),
        os.path.join(site, "av.libs", "opus*.dll"),
        os.path.join(site, "av.libs", "libopus*.dll"),
    ]
    found: list[str] = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            if path not in found and os.path.isfile(path):
                found.append(path)
    return found


class LibOpus:
    """One loaded libopus, its functions declared with their C types.

    Raises:
        OSError: If ``path`` cannot be loaded.
        AttributeError: If a required function is missing.
        RuntimeError: If ``opus_get_version_string()`` does not answer like libopus.
    """

    path: str
    """The file the library was loaded from."""
    version: str
    """What ``opus_get_version_string()`` answered."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        self.path = path
        c_int, c_int32, c_void_p, c_char_p = (
            ctypes.c_int,
            ctypes.c_int32,
            ctypes.c_void_p,
            ctypes.c_char_p,
        )
        c_int_p = ctypes.POINTER(ctypes.c_int)

        def declare(name: str, restype: object, argtypes: Sequence[object]) -> Callable[..., int]:
            func = getattr(lib, name)  # AttributeError names the missing symbol
            func.restype = restype
            func.argtypes = list(argtypes)
            declared: Callable[..., int] = func
            return declared

        self.get_version_string = declare("opus_get_version_string", c_char_p, [])
        self.strerror = declare("opus_strerror", c_char_p, [c_int])
        self.encoder_create = declare(
            "opus_encoder_create", c_void_p, [c_int32, c_int, c_int, c_int_p]
        )
        self.encoder_destroy = declare("opus_encoder_destroy", None, [c_void_p])
        self.encode = declare(
            "opus_encode", c_int32, [c_void_p, c_void_p, c_int, c_void_p, c_int32]
        )
        # opus_encoder_ctl(st, request, ...): only the fixed arguments are declared, the
        # value (an opus_int32, or a pointer to one for a GET) is passed as a typed
        # variadic argument, which is what ctypes needs on every ABI (Apple arm64 too).
        self.encoder_ctl = declare("opus_encoder_ctl", c_int, [c_void_p, c_int])
        self.decoder_create = declare("opus_decoder_create", c_void_p, [c_int32, c_int, c_int_p])
        self.decoder_destroy = declare("opus_decoder_destroy", None, [c_void_p])
        self.decode = declare(
            "opus_decode", c_int, [c_void_p, c_char_p, c_int32, c_void_p, c_int, c_int]
        )
        self.decoder_ctl = declare("opus_decoder_ctl", c_int, [c_void_p, c_int])
        self.packet_get_nb_samples = declare(
            "opus_packet_get_nb_samples", c_int, [c_char_p, c_int32, c_int32]
        )
        self.packet_get_samples_per_frame = declare(
            "opus_packet_get_samples_per_frame", c_int, [c_char_p, c_int32]
        )
        self.packet_get_nb_channels = declare("opus_packet_get_nb_channels", c_int, [c_char_p])
        self.packet_parse = declare(
            "opus_packet_parse",
            c_int,
            [
                c_void_p,
                c_int32,
                c_void_p,
                ctypes.POINTER(c_void_p),
                ctypes.POINTER(ctypes.c_int16),
                c_int_p,
            ],
        )
        # libopus 1.5 and later; older ones get the same answer from opus_packet_parse
        self.packet_has_lbrr: Callable[..., int] | None = None
        if hasattr(lib, "opus_packet_has_lbrr"):
            self.packet_has_lbrr = declare("opus_packet_has_lbrr", c_int, [c_char_p, c_int32])
        raw = self.get_version_string()
        if not isinstance(raw, bytes) or not raw.startswith(b"libopus"):
            raise RuntimeError(f"{path}: opus_get_version_string() answered {raw!r}")
        self.version = raw.decode("ascii", "replace")

    def error_text(self, code: int) -> str:
        """libopus' description of error ``code``."""
        text = self.strerror(code)
        return text.decode("ascii", "replace") if isinstance(text, bytes) else str(code)


def load(candidates: Iterable[str] | None = None) -> tuple[LibOpus | None, str]:
    """Load libopus from ``candidates`` (default: PyAV's copy, then the system's).

    Returns:
        The library and "", or None and why nothing could be loaded.
    """
    if candidates is None:
        paths = candidate_paths()
        system = ctypes.util.find_library("opus")
        if system is not None:
            paths.append(system)
    else:
        paths = list(candidates)
    if not paths:
        return None, (
            "no libopus found (none in the PyAV wheel next to the av package, none on the "
            "system library path)"
        )
    failures: list[str] = []
    for path in paths:
        try:
            return LibOpus(path), ""
        except (OSError, AttributeError, RuntimeError) as e:
            failures.append(f"{path}: {e}")
    return None, "no usable libopus: " + "; ".join(failures)


_lib: LibOpus | None
reason: str
"""Why libopus is not available ("" when it is)."""
_lib, reason = load()
available: bool = _lib is not None
"""Whether a libopus was loaded (then the classes below work)."""
version: str = _lib.version if _lib is not None else ""
"""libopus' version string, e.g. "libopus 1.5.2" ("" when not available)."""
library_path: str | None = _lib.path if _lib is not None else None
"""The file libopus was loaded from."""
if _lib is None:
    logger.debug("libopus is not available: %s", reason)


def _library() -> LibOpus:
    if not available or _lib is None:
        raise RuntimeError(f"libopus is not available: {reason or 'not loaded'}")
    return _lib


# -- validation -------------------------------------------------------------------------


def _check_format(sample_rate: int, channels: int) -> None:
    if sample_rate not in SAMPLE_RATES:
        raise ValueError(f"sample_rate must be one of {SAMPLE_RATES}, not {sample_rate!r}")
    if channels not in (1, 2):
        raise ValueError(f"channels must be 1 or 2, not {channels!r}")


def _check_frame_size(frame_size: int, sample_rate: int, what: str) -> int:
    """``frame_size`` as an int if it is a positive multiple of 2.5 ms up to 120 ms."""
    if isinstance(frame_size, bool) or not isinstance(frame_size, (int, np.integer)):
        raise ValueError(f"{what} must be an int (samples per channel), not {frame_size!r}")
    size = int(frame_size)
    step = sample_rate // 400
    if size <= 0 or size % step or size > sample_rate * MAX_FRAME_MS // 1000:
        raise ValueError(
            f"{what} must be a multiple of 2.5 ms ({step} samples at {sample_rate} Hz) "
            f"up to {MAX_FRAME_MS} ms, not {frame_size!r}"
        )
    return size


def _packet_bytes(packet: bytes | bytearray | memoryview, what: str = "packet") -> bytes:
    if isinstance(packet, (bytearray, memoryview)):
        packet = bytes(packet)
    if not isinstance(packet, bytes):
        raise ValueError(f"{what} must be bytes, not {type(packet).__name__}")
    if not packet:
        raise ValueError(f"{what} is empty (an Opus packet has at least its TOC byte)")
    return packet


def _check_int(value: int, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{what} must be an int, not {value!r}")
    if not low <= int(value) <= high:
        raise ValueError(f"{what} must be in {low}..{high}, not {value!r}")
    return int(value)


# -- packet facts -----------------------------------------------------------------------


def packet_samples(packet: bytes | bytearray | memoryview, sample_rate: int = 48000) -> int:
    """How many samples per channel ``packet`` decodes to at ``sample_rate``.

    Raises:
        ValueError: For an empty packet or an unsupported sample rate.
        OpusError: For a packet libopus cannot read.
    """
    lib = _library()
    data = _packet_bytes(packet)
    if sample_rate not in SAMPLE_RATES:
        raise ValueError(f"sample_rate must be one of {SAMPLE_RATES}, not {sample_rate!r}")
    count = lib.packet_get_nb_samples(data, len(data), sample_rate)
    if count < 0:
        raise OpusError("opus_packet_get_nb_samples", count, lib.error_text(count))
    return int(count)


def _has_lbrr_by_parsing(lib: LibOpus, data: bytes) -> bool:
    """Whether ``data`` carries FEC (LBRR), read from its first SILK frame's header bits.

    For a libopus older than 1.5 (no ``opus_packet_has_lbrr``). A CELT-only packet has no
    SILK layer and so no FEC. A SILK or hybrid frame starts with one voice-activity bit
    per 20 ms SILK frame it holds (one for 10 or 20 ms, two for 40, three for 60), then
    the LBRR bit; a stereo packet follows with the same flags for its side channel.
    """
    toc = data[0]
    if toc >> 3 >= 16:  # configurations 16..31: CELT only
        return False
    buffer = (ctypes.c_ubyte * len(data)).from_buffer_copy(data)
    frames = (ctypes.c_void_p * 48)()
    sizes = (ctypes.c_int16 * 48)()
    count = lib.packet_parse(buffer, len(data), None, frames, sizes, None)
    if count <= 0 or sizes[0] <= 0 or frames[0] is None:
        return False
    first = data[frames[0] - ctypes.addressof(buffer)]
    silk_frames = max(1, lib.packet_get_samples_per_frame(data, 48000) // 960)
    lbrr = (first >> (7 - silk_frames)) & 1
    if lib.packet_get_nb_channels(data) == 2:
        lbrr |= (first >> (6 - 2 * silk_frames)) & 1
    return bool(lbrr)


def packet_has_fec(packet: bytes | bytearray | memoryview) -> bool:
    """Whether ``packet`` carries in-band FEC (LBRR) for the packet before it.

    Uses ``opus_packet_has_lbrr`` (libopus 1.5+), else reads the SILK header bits.

    Raises:
        ValueError: For an empty packet.
        OpusError: For a packet libopus cannot parse.
    """
    lib = _library()
    data = _packet_bytes(packet)
    if lib.packet_has_lbrr is None:
        return _has_lbrr_by_parsing(lib, data)
    result = lib.packet_has_lbrr(data, len(data))
    if result < 0:
        raise OpusError("opus_packet_has_lbrr", result, lib.error_text(result))
    return bool(result)


# -- the native objects ---------------------------------------------------------------


_N = TypeVar("_N", bound="_Native")


class _Native:
    """A libopus state with its lock, freed exactly once (close() or garbage collection)."""

    _destroy: Callable[[int], object] | None = None
    _state: int | None = None

    def __init__(self, lib: LibOpus, state: int, destroy: Callable[[int], object]) -> None:
        self._lib = lib
        self._lock = threading.Lock()
        self._state = state
        self._destroy = destroy

    def _handle(self) -> int:
        state = self._state
        if state is None:
            raise RuntimeError(f"this {type(self).__name__} is closed")
        return state

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._state is None

    def close(self) -> None:
        """Free the native state; using the object afterwards raises RuntimeError."""
        with self._lock:
            state, self._state = self._state, None
            if state is not None and self._destroy is not None:
                self._destroy(state)

    def __del__(self) -> None:
        state, self._state = self._state, None
        destroy = self._destroy
        if state is not None and destroy is not None:
            destroy(state)

    def __enter__(self: _N) -> _N:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OpusEncoder(_Native):
    """One libopus encoder (``opus_encoder_create``) with its controls as properties.

    Args:
        sample_rate: The rate of the PCM given to :meth:`encode` (8, 12, 16, 24 or 48 kHz).
        channels: 1 or 2.
        application: :data:`APPLICATION_VOIP` (default), :data:`APPLICATION_AUDIO` or
            :data:`APPLICATION_RESTRICTED_LOWDELAY`.

    Raises:
        RuntimeError: If libopus is not available.
        ValueError: For an unsupported rate, channel count or application.
    """

    def __init__(
        self, sample_rate: int = 48000, channels: int = 1, application: int = APPLICATION_VOIP
    ) -> None:
        lib = _library()
        _check_format(sample_rate, channels)
        if application not in _APPLICATIONS:
            raise ValueError(f"application must be one of {_APPLICATIONS}, not {application!r}")
        error = ctypes.c_int(0)
        state = lib.encoder_create(sample_rate, channels, application, ctypes.byref(error))
        if error.value != OPUS_OK or not state:
            raise OpusError("opus_encoder_create", error.value, lib.error_text(error.value))
        super().__init__(lib, state, lib.encoder_destroy)
        self.sample_rate = sample_rate
        self.channels = channels
        self.application = application
        self._out = ctypes.create_string_buffer(MAX_PACKET_BYTES)

    # -- encoding ---------------------------------------------------------------------

    def encode(self, pcm: Pcm, frame_size: int) -> bytes:
        """Encode one frame of ``frame_size`` samples per channel into one Opus packet.

        Args:
            pcm: ``int16`` samples, interleaved: shape (frame_size, channels), or flat
                with ``frame_size * channels`` values.
            frame_size: 2.5, 5, 10, 20, 40, 60, 80, 100 or 120 ms of samples.

        Returns:
            The packet. With DTX on, a silent frame gives a packet of 1 or 2 bytes
            (its TOC only), which a sender may skip (see :attr:`in_dtx`).

        Raises:
            ValueError: For a frame size Opus has no packet for, or PCM that is not
                ``int16`` or not ``frame_size * channels`` values.
            OpusError: If libopus fails.
        """
        size = _check_frame_size(frame_size, self.sample_rate, "frame_size")
        if size * 10_000 // self.sample_rate not in _ENCODE_FRAME_TENTHS_MS:
            raise ValueError(
                f"frame_size must be 2.5, 5, 10, 20, 40, 60, 80, 100 or 120 ms of samples, "
                f"not {frame_size}"
            )
        if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16:
            raise ValueError(
                f"pcm must be an int16 numpy array, not {getattr(pcm, 'dtype', type(pcm))}"
            )
        if pcm.size != size * self.channels:
            raise ValueError(
                f"pcm holds {pcm.size} samples; {size} x {self.channels} channel(s) expected"
            )
        data = np.ascontiguousarray(pcm)
        with self._lock:
            state = self._handle()
            n = self._lib.encode(state, data.ctypes.data, size, self._out, MAX_PACKET_BYTES)
            if n < 0:
                raise OpusError("opus_encode", n, self._lib.error_text(n))
            return ctypes.string_at(self._out, n)

    def reset(self) -> None:
        """Back to a freshly initialized state (``OPUS_RESET_STATE``); the controls stay."""
        with self._lock:
            ret = self._lib.encoder_ctl(self._handle(), _RESET_STATE)
        self._check(ret, "OPUS_RESET_STATE")

    # -- controls ---------------------------------------------------------------------

    def _check(self, ret: int, what: str) -> None:
        if ret != OPUS_OK:
            raise OpusError(what, ret, self._lib.error_text(ret))

    def _set(self, request: int, value: int, what: str) -> None:
        with self._lock:
            ret = self._lib.encoder_ctl(self._handle(), request, ctypes.c_int32(value))
        self._check(ret, what)

    def _get(self, request: int, what: str) -> int:
        out = ctypes.c_int32(0)
        with self._lock:
            ret = self._lib.encoder_ctl(self._handle(), request, ctypes.byref(out))
        self._check(ret, what)
        return int(out.value)

    @property
    def bitrate(self) -> int:
        """The target bitrate in bits/s (the value libopus resolved ``AUTO`` to)."""
        return self._get(_GET_BITRATE, "OPUS_GET_BITRATE")

    @bitrate.setter
    def bitrate(self, value: int) -> None:
        """500..512000 bits/s, or :data:`AUTO` / :data:`BITRATE_MAX`."""
        if value not in (AUTO, BITRATE_MAX):
            _check_int(value, 500, 512_000, "bitrate")
        self._set(_SET_BITRATE, int(value), "OPUS_SET_BITRATE")

    @property
    def complexity(self) -> int:
        """0 (fastest) to 10 (best quality)."""
        return self._get(_GET_COMPLEXITY, "OPUS_GET_COMPLEXITY")

    @complexity.setter
    def complexity(self, value: int) -> None:
        self._set(_SET_COMPLEXITY, _check_int(value, 0, 10, "complexity"), "OPUS_SET_COMPLEXITY")

    @property
    def vbr(self) -> bool:
        """Variable bitrate (libopus' default) or constant."""
        return bool(self._get(_GET_VBR, "OPUS_GET_VBR"))

    @vbr.setter
    def vbr(self, value: bool) -> None:
        self._set(_SET_VBR, int(bool(value)), "OPUS_SET_VBR")

    @property
    def inband_fec(self) -> int:
        """In-band FEC (LBRR): 0 off, 1 on, 2 on without switching to SILK for it (1.5+).

        FEC is only sent when :attr:`packet_loss_percent` is above zero, in SILK and
        hybrid frames.
        """
        return self._get(_GET_INBAND_FEC, "OPUS_GET_INBAND_FEC")

    @inband_fec.setter
    def inband_fec(self, value: int | bool) -> None:
        fec = _check_int(int(value) if isinstance(value, bool) else value, 0, 2, "inband_fec")
        self._set(_SET_INBAND_FEC, fec, "OPUS_SET_INBAND_FEC")

    @property
    def packet_loss_percent(self) -> int:
        """The loss the encoder expects (0..100 %); FEC and robustness follow it."""
        return self._get(_GET_PACKET_LOSS_PERC, "OPUS_GET_PACKET_LOSS_PERC")

    @packet_loss_percent.setter
    def packet_loss_percent(self, value: int) -> None:
        self._set(
            _SET_PACKET_LOSS_PERC,
            _check_int(value, 0, 100, "packet_loss_percent"),
            "OPUS_SET_PACKET_LOSS_PERC",
        )

    @property
    def dtx(self) -> bool:
        """Discontinuous transmission: silence is coded as 1-2 byte packets."""
        return bool(self._get(_GET_DTX, "OPUS_GET_DTX"))

    @dtx.setter
    def dtx(self, value: bool) -> None:
        self._set(_SET_DTX, int(bool(value)), "OPUS_SET_DTX")

    @property
    def signal(self) -> int:
        """A hint: :data:`SIGNAL_VOICE`, :data:`SIGNAL_MUSIC` or :data:`AUTO` (default)."""
        return self._get(_GET_SIGNAL, "OPUS_GET_SIGNAL")

    @signal.setter
    def signal(self, value: int) -> None:
        if value not in (AUTO, SIGNAL_VOICE, SIGNAL_MUSIC):
            raise ValueError(f"signal must be AUTO, SIGNAL_VOICE or SIGNAL_MUSIC, not {value!r}")
        self._set(_SET_SIGNAL, int(value), "OPUS_SET_SIGNAL")

    @property
    def in_dtx(self) -> bool:
        """Whether the last packet was a DTX one (``OPUS_GET_IN_DTX``).

        False on a libopus that does not know the request (it is not in the oldest ones).
        """
        out = ctypes.c_int32(0)
        with self._lock:
            ret = self._lib.encoder_ctl(self._handle(), _GET_IN_DTX, ctypes.byref(out))
        if ret == OPUS_UNIMPLEMENTED or ret == -1:  # an older libopus: unknown request
            return False
        self._check(ret, "OPUS_GET_IN_DTX")
        return bool(out.value)

    @property
    def lookahead(self) -> int:
        """The codec delay, in samples at :attr:`sample_rate` (the decoder's pre-skip)."""
        return self._get(_GET_LOOKAHEAD, "OPUS_GET_LOOKAHEAD")


class OpusDecoder(_Native):
    """One libopus decoder (``opus_decoder_create``).

    Give it packets in order. For each 20 ms (say) of a stream it produces one of:

    * :meth:`decode` of the packet that arrived;
    * when a packet is lost and the next one is already here, :meth:`decode_fec` of the
      next one rebuilds the lost one from the in-band FEC the next one carries (the
      decoder's own loss concealment where it carries none), then :meth:`decode` the next;
    * when a packet is lost and nothing follows yet, :meth:`conceal` (libopus' PLC).

    Every call returns ``int16`` PCM of shape (samples per channel, :attr:`channels`),
    interleaved, at :attr:`sample_rate` (an Opus stream decodes at any of the Opus
    rates, and to mono or stereo, whatever it was encoded with).

    A sender using DTX stops sending during silence after one 1-2 byte packet: its RTP
    timestamps jump over the packets it did not send. Those are not losses; fill the
    gap with :meth:`conceal` (after a DTX packet libopus continues the comfort noise,
    silence for digital silence) or with silence.

    Args:
        sample_rate: The rate to decode at (8, 12, 16, 24 or 48 kHz).
        channels: 1 or 2.

    Raises:
        RuntimeError: If libopus is not available.
        ValueError: For an unsupported rate or channel count.
    """

    def __init__(self, sample_rate: int = 48000, channels: int = 1) -> None:
        lib = _library()
        _check_format(sample_rate, channels)
        error = ctypes.c_int(0)
        state = lib.decoder_create(sample_rate, channels, ctypes.byref(error))
        if error.value != OPUS_OK or not state:
            raise OpusError("opus_decoder_create", error.value, lib.error_text(error.value))
        super().__init__(lib, state, lib.decoder_destroy)
        self.sample_rate = sample_rate
        self.channels = channels

    def _run(self, packet: bytes | None, frame_size: int, fec: int, what: str) -> Pcm:
        out = np.empty((frame_size, self.channels), dtype=np.int16)
        length = len(packet) if packet is not None else 0
        with self._lock:
            n = self._lib.decode(self._handle(), packet, length, out.ctypes.data, frame_size, fec)
        if n < 0:
            raise OpusError(what, n, self._lib.error_text(n))
        return out if n == frame_size else out[:n]

    def decode(self, packet: bytes | bytearray | memoryview, frame_size: int | None = None) -> Pcm:
        """Decode one packet.

        Args:
            packet: The Opus packet (an RTP payload).
            frame_size: Room for this many samples per channel; default: exactly the
                packet's duration (:func:`packet_samples`). Must be a multiple of 2.5 ms.

        Returns:
            The packet's audio: (samples per channel, channels) ``int16``.

        Raises:
            ValueError: For an empty packet or a bad ``frame_size``.
            OpusError: For a corrupt packet or one longer than ``frame_size``.
        """
        data = _packet_bytes(packet)
        if frame_size is None:
            frame_size = packet_samples(data, self.sample_rate)
        size = _check_frame_size(frame_size, self.sample_rate, "frame_size")
        return self._run(data, size, 0, "opus_decode")

    def decode_fec(self, next_packet: bytes | bytearray | memoryview, frame_size: int) -> Pcm:
        """Rebuild the lost packet just before ``next_packet`` from its in-band FEC.

        Where ``next_packet`` carries no FEC (:func:`packet_has_fec`), libopus conceals
        the loss instead, as :meth:`conceal` does. Decode ``next_packet`` itself with
        :meth:`decode` afterwards.

        Args:
            next_packet: The packet that follows the lost one.
            frame_size: The duration of the lost packet in samples per channel (the
                packet's duration: :func:`packet_samples` of a neighbour, 20 ms usually).

        Raises:
            ValueError: For an empty packet or a bad ``frame_size``.
            OpusError: For a corrupt packet.
        """
        data = _packet_bytes(next_packet, "next_packet")
        size = _check_frame_size(frame_size, self.sample_rate, "frame_size")
        return self._run(data, size, 1, "opus_decode (FEC)")

    def conceal(self, frame_size: int) -> Pcm:
        """Audio for a lost packet, made up by libopus' loss concealment (PLC).

        Args:
            frame_size: How much to make up, in samples per channel (a multiple of
                2.5 ms; the lost packet's duration).

        Raises:
            ValueError: For a bad ``frame_size``.
        """
        size = _check_frame_size(frame_size, self.sample_rate, "frame_size")
        return self._run(None, size, 0, "opus_decode (PLC)")

    def reset(self) -> None:
        """Forget the stream so far (``OPUS_RESET_STATE``), e.g. for a new one."""
        with self._lock:
            ret = self._lib.decoder_ctl(self._handle(), _RESET_STATE)
        if ret != OPUS_OK:
            raise OpusError("OPUS_RESET_STATE", ret, self._lib.error_text(ret))

    def _get(self, request: int, what: str) -> int:
        out = ctypes.c_int32(0)
        with self._lock:
            ret = self._lib.decoder_ctl(self._handle(), request, ctypes.byref(out))
        if ret != OPUS_OK:
            raise OpusError(what, ret, self._lib.error_text(ret))
        return int(out.value)

    @property
    def last_packet_duration(self) -> int:
        """Samples per channel of the last decode, FEC or concealment call (0 at first)."""
        return self._get(_GET_LAST_PACKET_DURATION, "OPUS_GET_LAST_PACKET_DURATION")

    @staticmethod
    def packet_has_fec(packet: bytes | bytearray | memoryview) -> bool:
        """Whether ``packet`` carries FEC for the packet before it (:func:`packet_has_fec`)."""
        return packet_has_fec(packet)

    @staticmethod
    def packet_samples(packet: bytes | bytearray | memoryview, sample_rate: int = 48000) -> int:
        """Samples per channel ``packet`` decodes to at ``sample_rate`` (:func:`packet_samples`)."""
        return packet_samples(packet, sample_rate)
