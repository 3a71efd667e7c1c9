"""Session layer: the connection lifecycle, the pure room model, and the seams the public
objects use to reach them."""
