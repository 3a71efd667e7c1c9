"""RTC engine: the publisher and subscriber peer connections, negotiation and data channels."""
