"""Signal layer: the WebSocket protocol with the LiveKit server (protobuf messages, no media)."""
