"""The aiortc adapter: our encoders, the tracks that feed aiortc, and every use of
aiortc/aioice internals."""
