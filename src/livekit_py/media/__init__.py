"""Media plumbing under the public media objects: frame fan-out from aiortc tracks to
streams."""
