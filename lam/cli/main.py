import click


@click.group()
def cli() -> None:
    """LAM: text embeddings that never run out of context."""
