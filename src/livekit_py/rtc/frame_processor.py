"""Plug-in frame processing for streams, and the options naming an external audio filter."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Generic, TypeVar

from .audio_frame import AudioFrame
from .video_frame import VideoFrame

__all__ = ["FrameProcessor"]

T = TypeVar("T", bound=AudioFrame | VideoFrame)


class FrameProcessor(Generic[T], ABC):
    """Transforms the frames a stream yields (for example noise cancellation).

    A stream calls :meth:`_process` on each of its output frames while :attr:`enabled`
    is true. The ``_on_*`` hooks let a processor learn which stream it serves and the
    credentials it may need; they do nothing unless overridden.
    """

    @property
    @abstractmethod
    def enabled(self) -> bool:
        """Whether frames go through :meth:`_process`."""

    @enabled.setter
    @abstractmethod
    def enabled(self, value: bool) -> None: ...

    def _on_stream_info_updated(
        self,
        *,
        room_name: str,
        participant_identity: str,
        publication_sid: str,
    ) -> None:
        """The stream being processed is now this publication of this participant."""

    def _on_stream_info_cleared(self) -> None:
        """The processor no longer serves a known publication."""

    def _on_credentials_updated(self, *, token: str, url: str) -> None:
        """The room's access token or server URL changed."""

    def _on_credentials_cleared(self) -> None:
        """The room's credentials are no longer valid (for example after disconnecting)."""

    @abstractmethod
    def _process(self, frame: T) -> T:
        """Return the processed frame (a new one, or ``frame`` itself changed)."""

    @abstractmethod
    def _close(self) -> None:
        """Release what the processor holds; it is not used afterwards."""
