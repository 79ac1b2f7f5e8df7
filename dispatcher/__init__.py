"""Outbound-call dispatcher: jobs from a Redis stream, paced through a voice-AI provider."""

__version__ = "0.1.0"
