"""Room model: the room, its participants, their publications, and the events users see."""
