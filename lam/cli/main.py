"""``lam``: one entry point, one sub-command per job, each loaded only when it runs.

The commands live in one module per group (``encode``, ``search``, ``serve``, ``evaluate``,
``train``, ``corpus``); ``lam --help`` lists them without importing any, so it answers at once
(torch is imported by the command that needs it).
"""

from __future__ import annotations

import importlib

import click

from lam.errors import LAMError

# command name -> (module under lam.cli, function, one-line help shown by `lam --help`)
COMMANDS = {
    "encode": ("encode", "encode", "Embed texts, files, folders or stdin: one vector per input."),
    "index": ("search", "index_command", "Add documents of any length to a persistent index."),
    "search": ("search", "search_command", "Search an index: ranked documents with the answer passage."),
    "serve": ("serve", "serve", "Serve OpenAI-compatible /v1/embeddings and index/search over HTTP."),
    "eval": ("evaluate", "eval_command", "Evaluate against the baselines (STS, long-document retrieval)."),
    "bench": ("evaluate", "bench", "Measure encoding speed on short and long text."),
    "distill": ("train", "distill", "Train the memory against the full-attention teacher."),
    "embed-corpus": ("corpus", "embed_corpus_command", "Embed a corpus on a Ray cluster into Parquet."),
    "import-corpus": ("corpus", "import_corpus_command", "Load an embed-corpus result into an index."),
}


def load_command(name: str) -> click.Command:
    module, function, _ = COMMANDS[name]
    return getattr(importlib.import_module(f"lam.cli.{module}"), function)


class LazyGroup(click.Group):
    """A group whose commands are imported when they run, not when the group is built."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return load_command(name) if name in COMMANDS else None

    def invoke(self, ctx: click.Context):
        """LAM's own errors and the system's (a full disk, a closed pipe) as one line, not a traceback."""
        try:
            return super().invoke(ctx)
        except (LAMError, OSError, UnicodeError) as err:
            raise click.ClickException(str(err) or type(err).__name__) from err

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, _, help_) in COMMANDS.items()])


@click.group(cls=LazyGroup)
@click.version_option(package_name="lam-embed")
def cli() -> None:
    """LAM: text embeddings that never run out of context."""


if __name__ == "__main__":
    cli()
