"""Version of the livekit-py distribution."""

__version__ = "0.1.0"
