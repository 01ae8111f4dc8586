"""``lam serve``: an OpenAI-compatible embeddings server with a persistent index (``lam[server]``)."""

from lam.server.app import ServerLimits, create_app

__all__ = ["ServerLimits", "create_app"]
