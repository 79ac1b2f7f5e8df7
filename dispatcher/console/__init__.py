"""The operator console: a small read-mostly web app over the deployment's Redis.

Kept import-light (the configuration model imports ``dispatcher.config.console``); the app
itself is ``dispatcher.console.app``.
"""
