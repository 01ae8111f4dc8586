"""``lam serve``: an OpenAI-compatible embeddings server with a persistent index (the ``server`` extra)."""

from lam.server.app import ServerLimits, create_app

__all__ = ["ServerLimits", "create_app"]
