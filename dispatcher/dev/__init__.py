"""Development tools: the demo and a private redis-server."""
