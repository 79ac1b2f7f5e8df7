"""Configuration: the settings models, their errors, and secrets."""
