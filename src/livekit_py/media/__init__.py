"""Media layer: frames, sources, streams and the aiortc track adapters between them."""
