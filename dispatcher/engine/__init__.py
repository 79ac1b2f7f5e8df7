"""The worker process: carries the core's decisions out against Redis and the providers."""
