"""The server side of signaling: installing and running a real livekit-server locally."""
