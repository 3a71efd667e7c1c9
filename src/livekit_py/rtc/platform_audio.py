"""``PlatformAudio``: the machine's microphones and speakers, as the official SDK's.

The official SDK drives the devices through WebRTC's audio device module: it lists and
selects them, captures the selected microphone into a source (with echo cancellation,
noise suppression and gain control) and plays every subscribed remote audio track on the
selected speaker.  livekit_py does the same on :class:`~livekit_py.rtc.media_devices.MediaDevices`
and its audio backend (``sounddevice`` by default, the optional dependency
``pip install livekit-py[devices]``):

* ``recording_devices()`` / ``playout_devices()`` list the backend's input and output
  devices; ``index`` counts within each list, ``id`` names the device and stays the same
  while it is plugged in (the backend's host API and device name).
* ``create_audio_source()`` opens the selected (else the default) microphone; publish it
  with ``LocalAudioTrack.create_audio_track(name, source)``.
* While a ``PlatformAudio`` is open, every remote audio track any room subscribes to is
  played, mixed, on the selected (else the default) speaker, and what is played is the
  echo canceller's reference for the sources of this ``PlatformAudio``.

As in the official SDK, ``PlatformAudio()`` raises :class:`PlatformAudioError` when there
is no audio device to use (here: no backend, as when ``sounddevice`` or PortAudio is not
installed, or a backend that lists no device), and selecting an unknown device id raises
it too.  Instances share one set of devices and one selection, as they share the official
SDK's audio device module.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..log import get_logger
from ..media.devices import remote_audio
from ..media.devices.backend import get_audio_backend
from .audio_source import AudioSource
from .media_devices import InputCapture, MediaDevices, OutputPlayer

__all__ = [
    "AudioDeviceInfo",
    "PlatformAudio",
    "PlatformAudioError",
    "PlatformAudioOptions",
    "PlatformAudioSource",
]

logger = get_logger("media.platform_audio")


class PlatformAudioError(Exception):
    """A PlatformAudio operation failed: no audio devices, an unknown device id, a device
    that cannot be opened."""


@dataclass
class AudioDeviceInfo:
    """An audio device.

    Attributes:
        index: Position in the list of recording (or playout) devices, from 0; it changes
            when devices come and go, so select devices by ``id``.
        name: The device name the system reports.
        id: The device's identifier, stable while the device is plugged in.
    """

    index: int
    name: str
    id: str


@dataclass
class PlatformAudioOptions:
    """Processing of the microphone audio of a :class:`PlatformAudioSource`.

    Attributes:
        echo_cancellation: Remove the echo of what the speaker plays.
        noise_suppression: Reduce stationary background noise.
        auto_gain_control: Level the voice.
        prefer_hardware: Use the platform's own voice processing where there is one
            (iOS); livekit_py always processes in software, so this has no effect.
    """

    echo_cancellation: bool = True
    noise_suppression: bool = True
    auto_gain_control: bool = True
    prefer_hardware: bool = False


class PlatformAudioSource:
    """The selected microphone's audio, processed, as a source for a local track.

    Made by :meth:`PlatformAudio.create_audio_source`; there is no ``capture_frame``: the
    device feeds it.  Pass it to ``LocalAudioTrack.create_audio_track``.  :meth:`close`
    stops the capture (tracks made from it go silent and end).
    """

    def __init__(self, capture: InputCapture, device: AudioDeviceInfo) -> None:
        self._capture = capture
        self._device = device
        self._closing: asyncio.Task[None] | None = None

    @property
    def device(self) -> AudioDeviceInfo:
        """The microphone being captured."""
        return self._device

    @property
    def sample_rate(self) -> int:
        return self._capture.source.sample_rate

    @property
    def num_channels(self) -> int:
        return self._capture.source.num_channels

    @property
    def audio_source(self) -> AudioSource:
        """The :class:`AudioSource` the captured frames go to (what a track reads)."""
        return self._capture.source

    def close(self) -> None:
        """Stop capturing; the device is released shortly after, on the event loop.

        Calling it again does nothing.  ``await aclose()`` waits until it is released.
        """
        if self._closing is None:
            self._closing = self._capture._loop.create_task(
                self._capture.aclose(), name="PlatformAudioSource close"
            )

    async def aclose(self) -> None:
        """Stop capturing and wait until the device is released."""
        self.close()
        assert self._closing is not None
        await asyncio.shield(self._closing)

    def __repr__(self) -> str:
        return f"rtc.PlatformAudioSource(device={self._device.name!r})"


# ------------------------------------------------------------------------------ devices


def _device_ids(devices: Sequence[Mapping[str, Any]]) -> list[str]:
    """A stable identifier per device: the backend's own (an ``id`` field) if it gives one,
    else its host API and name (with ``#2``, ``#3``... for identical ones)."""
    ids: list[str] = []
    seen: dict[str, int] = {}
    for device in devices:
        own = device.get("id")
        if isinstance(own, str) and own:
            base = own
        else:
            base = f"{device.get('hostapi', 0)}:{device.get('name', '')}"
        count = seen.get(base, 0) + 1
        seen[base] = count
        ids.append(base if count == 1 else f"{base}#{count}")
    return ids


def _channels(device: Mapping[str, Any], key: str) -> int:
    value = device.get(key, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class _Shared:
    """What every open PlatformAudio shares: the devices, the selection, the playout."""

    def __init__(self) -> None:
        try:
            self.backend = get_audio_backend()
            self.devices = MediaDevices()
            count = len(self.backend.query_devices())
        except ImportError as exc:
            raise PlatformAudioError(f"Failed to initialize PlatformAudio: {exc}") from exc
        except Exception as exc:  # the backend cannot list devices (PortAudioError...)
            raise PlatformAudioError(
                f"Failed to initialize PlatformAudio: cannot list the audio devices: {exc}"
            ) from exc
        if count == 0:
            raise PlatformAudioError(
                "Failed to initialize PlatformAudio: the audio backend reports no devices"
            )
        self.users = 0
        self.recording_id: str | None = None
        self.playout_id: str | None = None
        self.player: OutputPlayer | None = None
        self.player_device: int | None = None
        self.playing: list[object] = []  # the tracks given to the player
        self.sources: list[PlatformAudioSource] = []

    # -- enumeration

    def list(self, kind: str) -> list[tuple[AudioDeviceInfo, int]]:
        """(info, backend index) of the input (``kind="input"``) or output devices."""
        try:
            devices = self.backend.query_devices()
        except Exception as exc:
            raise PlatformAudioError(f"Failed to enumerate {kind} devices: {exc}") from exc
        key = "max_input_channels" if kind == "input" else "max_output_channels"
        out: list[tuple[AudioDeviceInfo, int]] = []
        for backend_index, (device, device_id) in enumerate(
            zip(devices, _device_ids(devices), strict=True)
        ):
            if _channels(device, key) > 0:
                name = str(device.get("name", ""))
                out.append((AudioDeviceInfo(len(out), name, device_id), backend_index))
        return out

    def resolve(self, kind: str, device_id: str | None) -> tuple[AudioDeviceInfo, int] | None:
        """The selected device (None: the default one, else the first), or None if none."""
        listed = self.list(kind)
        if device_id is not None:
            for entry in listed:
                if entry[0].id == device_id:
                    return entry
            what = "recording" if kind == "input" else "playout"
            raise PlatformAudioError(f"the selected {what} device {device_id!r} is gone")
        if not listed:
            return None
        default = self.backend.default_device()[0 if kind == "input" else 1]
        for entry in listed:
            if entry[1] == default:
                return entry
        return listed[0]

    # -- playout of the subscribed remote audio

    def remote_audio_added(self, track: object) -> None:
        if track in self.playing:
            return
        self.playing.append(track)
        asyncio.get_running_loop().create_task(self._play(track), name="PlatformAudio playout")

    def remote_audio_removed(self, track: object) -> None:
        if track not in self.playing:
            return
        self.playing.remove(track)
        player = self.player
        if player is not None:
            asyncio.get_running_loop().create_task(
                player.remove_track(track),  # type: ignore[arg-type]
                name="PlatformAudio playout",
            )

    async def _play(self, track: object) -> None:
        try:
            player = await self._ensure_player()
            if player is not None and track in self.playing:
                await player.add_track(track)  # type: ignore[arg-type]
        except Exception:
            logger.exception("PlatformAudio: cannot play a subscribed audio track")

    async def _ensure_player(self) -> OutputPlayer | None:
        if self.player is not None:
            return self.player
        entry = self.resolve("output", self.playout_id)
        if entry is None:
            logger.warning("PlatformAudio: no playout device, remote audio is not played")
            return None
        player = self.devices.open_output(output_device=entry[1])
        self.player, self.player_device = player, entry[1]
        await player.start()
        logger.debug("PlatformAudio: playing remote audio on %r", entry[0].name)
        return player

    async def switch_player(self) -> None:
        """Move the playout to the newly selected device (if it is playing)."""
        old, self.player = self.player, None
        if old is None:
            return
        await old.aclose()
        tracks, self.playing = self.playing, []
        for track in tracks:
            self.remote_audio_added(track)

    async def aclose(self) -> None:
        remote_audio.remove_sink(self)
        self.playing = []
        player, self.player = self.player, None
        if player is not None:
            await player.aclose()


_shared: _Shared | None = None


class PlatformAudio:
    """The platform's audio devices: list and select microphones and speakers, capture
    the microphone into a :class:`PlatformAudioSource`, and play every subscribed remote
    audio track while it is open.

    Example::

        platform_audio = rtc.PlatformAudio()
        mics = platform_audio.recording_devices()
        platform_audio.set_recording_device(mics[0].id)
        source = platform_audio.create_audio_source()
        track = rtc.LocalAudioTrack.create_audio_track("mic", source)
        await room.local_participant.publish_track(track)
        ...
        source.close()
        platform_audio.close()
    """

    def __init__(self) -> None:
        """Open the audio devices (shared with the other open ``PlatformAudio`` objects).

        Raises:
            PlatformAudioError: If there are no audio devices to use: no audio backend
                (``sounddevice`` or PortAudio missing), or none listed.
        """
        global _shared
        if _shared is None:
            _shared = _Shared()
        self._shared: _Shared | None = _shared
        self._shared.users += 1
        already = remote_audio.add_sink(self._shared)
        with contextlib.suppress(RuntimeError):  # tracks subscribed before, on the loop
            asyncio.get_running_loop()
            for track in already:
                self._shared.remote_audio_added(track)

    def _state(self) -> _Shared:
        if self._shared is None:
            raise PlatformAudioError("this PlatformAudio is closed")
        return self._shared

    def recording_devices(self) -> list[AudioDeviceInfo]:
        """The microphones (input devices).

        Raises:
            PlatformAudioError: If the devices cannot be listed.
        """
        return [info for info, _ in self._state().list("input")]

    def playout_devices(self) -> list[AudioDeviceInfo]:
        """The speakers and headphones (output devices).

        Raises:
            PlatformAudioError: If the devices cannot be listed.
        """
        return [info for info, _ in self._state().list("output")]

    def set_recording_device(self, device_id: str) -> None:
        """Select the microphone that sources created from now on capture.

        Args:
            device_id: An :attr:`AudioDeviceInfo.id` from :meth:`recording_devices`.

        Raises:
            PlatformAudioError: If no recording device has that id.
        """
        state = self._state()
        if not any(info.id == device_id for info, _ in state.list("input")):
            raise PlatformAudioError(
                f"Failed to set recording device: no recording device has the id {device_id!r}"
            )
        state.recording_id = device_id

    def set_playout_device(self, device_id: str) -> None:
        """Select the speaker remote audio is played on (playout moves to it).

        Args:
            device_id: An :attr:`AudioDeviceInfo.id` from :meth:`playout_devices`.

        Raises:
            PlatformAudioError: If no playout device has that id.
        """
        state = self._state()
        if not any(info.id == device_id for info, _ in state.list("output")):
            raise PlatformAudioError(
                f"Failed to set playout device: no playout device has the id {device_id!r}"
            )
        changed = state.playout_id != device_id
        state.playout_id = device_id
        if changed and state.player is not None:
            asyncio.get_running_loop().create_task(
                state.switch_player(), name="PlatformAudio playout"
            )

    def create_audio_source(
        self, options: PlatformAudioOptions | None = None
    ) -> PlatformAudioSource:
        """Start capturing the selected (else the default) microphone.

        Args:
            options: The processing of the captured audio; all of it when None.

        Returns:
            The source; publish it with ``LocalAudioTrack.create_audio_track``.

        Raises:
            PlatformAudioError: If there is no recording device or it cannot be opened.
            RuntimeError: If no event loop is running (capture delivers to one).
        """
        state = self._state()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "PlatformAudio.create_audio_source() needs a running event loop (the "
                "captured audio is delivered on it)"
            ) from None
        options = options if options is not None else PlatformAudioOptions()
        entry = state.resolve("input", state.recording_id)
        if entry is None:
            raise PlatformAudioError("Failed to create the audio source: no recording device")
        info, backend_index = entry
        processing = options.echo_cancellation or options.noise_suppression
        processing = processing or options.auto_gain_control
        try:
            capture = state.devices.open_input(
                enable_aec=options.echo_cancellation,
                noise_suppression=options.noise_suppression,
                auto_gain_control=options.auto_gain_control,
                # WebRTC's capture processing always high-passes when it processes
                high_pass_filter=processing,
                input_device=backend_index,
            )
        except Exception as exc:  # the backend's error (PortAudioError...)
            raise PlatformAudioError(
                f"Failed to open the recording device {info.name!r}: {exc}"
            ) from exc
        source = PlatformAudioSource(capture, info)
        state.sources.append(source)
        return source

    def _release(self) -> _Shared | None:
        """Drop this object's share; the shared state if this was the last one."""
        global _shared
        state, self._shared = self._shared, None
        if state is None:
            return None
        state.users -= 1
        if state.users > 0:
            return None
        if _shared is state:
            _shared = None
        remote_audio.remove_sink(state)
        for source in state.sources:
            with contextlib.suppress(RuntimeError):  # no loop: nothing is capturing
                source.close()
        return state

    def close(self) -> None:
        """Release this object; the devices are released with the last open one (on the
        event loop, shortly after).

        Calling it again does nothing.  Close the sources first (as in the official SDK);
        those still open are closed here.
        """
        state = self._release()
        if state is None:
            return
        with contextlib.suppress(RuntimeError):  # no running loop: nothing is playing
            asyncio.get_running_loop().create_task(state.aclose(), name="PlatformAudio close")

    async def aclose(self) -> None:
        """:meth:`close`, waiting until the devices are released."""
        state = self._release()
        if state is not None:
            await state.aclose()
            for source in state.sources:
                await source.aclose()

    def __repr__(self) -> str:
        return "rtc.PlatformAudio()"
