"""Where the commands read texts from: files, folders, stdin, JSON Lines (one loop for all)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click

BIG_FILE = 4 << 20  # files above 4 MB are streamed from disk instead of read whole


@dataclass
class TextSource:
    """One text to embed: its id and either the text itself or a file to stream."""

    id: str
    text: str | None = None
    path: Path | None = None

    @property
    def streamed(self) -> bool:
        """A file too big to read whole: the command streams it from disk instead."""
        return self.path is not None and self.path.stat().st_size > BIG_FILE

    def read(self) -> str:
        """The text, read from the file if it is one (a file that is not UTF-8 is one clear error)."""
        if self.path is None:
            return self.text or ""
        try:
            return self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise click.ClickException(f"{self.path} is not UTF-8 text ({err.reason})") from err


def _lines(handle, name: str, jsonl: bool, text_field: str) -> Iterator[TextSource]:
    for lineno, line in enumerate(handle, 1):
        if jsonl:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise click.UsageError(f"{name}:{lineno} is not valid JSON: {err}") from err
            if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
                raise click.UsageError(f"{name}:{lineno} has no string field {text_field!r}")
            yield TextSource(str(record.get("id", f"{name}:{lineno}")), text=record[text_field])
        else:
            yield TextSource(f"{name}:{lineno}", text=line.rstrip("\n").rstrip("\r"))


def iter_sources(
    inputs: tuple[str, ...], lines: bool, jsonl: bool | None, text_field: str, pattern: str
) -> Iterator[TextSource]:
    """Expand command-line inputs into texts.

    ``-`` is stdin; a folder contributes every file matching ``pattern`` (recursively, sorted);
    a ``.jsonl`` file (or ``--jsonl``) yields one text per record; ``--lines`` one per line;
    otherwise a file is one text, streamed from disk.
    """
    for item in inputs:
        if item == "-":
            is_jsonl = bool(jsonl)
            if lines or is_jsonl:
                yield from _lines(sys.stdin, "stdin", is_jsonl, text_field)
            else:
                yield TextSource("stdin", text=sys.stdin.read())
            continue
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob(pattern) if p.is_file())
            if not files:
                raise click.UsageError(f"folder {path} has no files matching {pattern!r}")
        elif path.is_file():
            files = [path]
        else:
            raise click.UsageError(f"{path} does not exist")
        for f in files:
            is_jsonl = jsonl if jsonl is not None else f.suffix == ".jsonl"
            if lines or is_jsonl:
                with open(f, encoding="utf-8") as handle:
                    yield from _lines(handle, str(f), is_jsonl, text_field)
            else:
                yield TextSource(str(f), path=f)
