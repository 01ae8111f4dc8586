"""Where the commands read texts from: files, folders, stdin, JSON Lines (one loop for all).

Everything that can be checked without the model is checked when :class:`Inputs` is built:
every path is a regular file (or a folder with matching files), every file decodes in the
chosen encoding, every JSON Lines record has its text field. A bad input is therefore one clear
error before any text is embedded (or, with ``skip_errors``, a warning and the file or record
left out). Texts are then read one at a time: stdin and ``--lines`` files are streamed, never
read whole, so memory does not grow with the input.
"""

from __future__ import annotations

import codecs
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import click

from lam.tokenization import check_unicode

BIG_FILE = 4 << 20  # files above 4 MB are streamed from disk instead of read whole
BLOCK_BYTES = 1 << 16  # bytes per read when streaming a file or stdin


@dataclass
class TextSource:
    """One text to embed: its id and the text itself, a file, or a stream (stdin) to read."""

    id: str
    text: str | None = None
    path: Path | None = None
    stream: BinaryIO | None = None
    encoding: str = "utf-8"

    @property
    def streamed(self) -> bool:
        """Too big to read whole (a large file, stdin): the command reads it in blocks instead."""
        return self.stream is not None or (self.path is not None and self.path.stat().st_size > BIG_FILE)

    def pieces(self) -> Iterator[str]:
        """The text in blocks of characters."""
        if self.stream is not None:
            yield from decoded_blocks(self.stream, self.encoding, self.id)
        elif self.path is not None:
            with open(self.path, "rb") as f:
                yield from decoded_blocks(f, self.encoding, str(self.path))
        else:
            yield self.text or ""

    def read(self) -> str:
        """The whole text."""
        return self.text if self.path is None and self.stream is None else "".join(self.pieces())


class Undecodable(click.ClickException):
    """Input bytes that are not text in the chosen encoding."""


def decoded_blocks(raw: BinaryIO, encoding: str, name: str) -> Iterator[str]:
    """A binary stream decoded block by block; an error names the byte where decoding failed."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    for block in iter(lambda: raw.read(BLOCK_BYTES), b""):
        try:
            text = decoder.decode(block)
        except UnicodeDecodeError as err:
            raise Undecodable(f"{name}: not {encoding} text ({err.reason} at byte {offset + err.start})") from None
        offset += len(block)
        if text:
            yield text
    try:
        tail = decoder.decode(b"", final=True)
    except UnicodeDecodeError as err:
        raise Undecodable(f"{name}: not {encoding} text ({err.reason} at its end)") from None
    if tail:
        yield tail


def _ascii_compatible(encoding: str) -> bool:
    """Whether a newline is the byte 0x0A and never part of another character (UTF-8, Latin-1,
    cp1252, … but not UTF-16): then lines can be split before decoding."""
    try:
        return "a\n".encode(encoding) == b"a\n" and codecs.lookup(encoding).name not in ("utf-7",)
    except UnicodeError:
        return False


def decoded_lines(raw: BinaryIO, encoding: str, name: str) -> Iterator[tuple[int, str | Undecodable]]:
    """``(line number, line)`` of a binary stream; a line that does not decode comes as an
    :class:`Undecodable` naming it, so the caller can stop or skip it and go on."""
    if _ascii_compatible(encoding):
        for lineno, line in enumerate(raw, 1):
            try:
                yield lineno, line.decode(encoding)
            except UnicodeDecodeError as err:
                yield lineno, Undecodable(f"{name}:{lineno}: not {encoding} text ({err.reason})")
        return
    lineno = 0
    text = io.TextIOWrapper(raw, encoding=encoding, errors="strict")
    try:
        for lineno, line in enumerate(text, 1):
            yield lineno, line
    except UnicodeDecodeError as err:  # a wide encoding cannot resynchronise: the rest is lost
        yield lineno + 1, Undecodable(f"{name}:{lineno + 1}: not {encoding} text ({err.reason}); stopped here")
    finally:
        text.detach()  # the caller closes the stream


class _BadRecord(Exception):
    """A line of input that cannot be a text (bad JSON, no text field, a lone surrogate)."""


def _record(line: str, name: str, lineno: int, jsonl: bool, text_field: str) -> TextSource | None:
    """The text of one input line (None: a blank JSON Lines line, skipped)."""
    where = f"{name}:{lineno}"
    if not jsonl:
        text = line.rstrip("\n").rstrip("\r")
        doc_id = where
    else:
        if not line.strip():
            return None
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise _BadRecord(f"{where} is not valid JSON: {err}") from None
        if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
            raise _BadRecord(f"{where} has no string field {text_field!r}")
        text, doc_id = record[text_field], str(record.get("id", where))
    try:
        check_unicode(text, f"the text at {where}")
        check_unicode(doc_id, f"the id at {where}")
    except ValueError as err:
        raise _BadRecord(str(err)) from None
    return TextSource(doc_id, text=text)


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


class Inputs:
    """Command-line inputs, checked; iterate for their texts (:class:`TextSource`).

    ``-`` is stdin; a folder contributes every file matching ``pattern`` (recursively, sorted);
    a ``.jsonl`` file (or ``jsonl=True``) gives one text per record; ``lines`` one per line;
    otherwise a file is one text. ``encoding`` decodes files and stdin; ``skip_errors`` leaves
    out, with a warning, files that do not decode and records that are not texts.
    """

    def __init__(
        self,
        inputs: tuple[str, ...],
        *,
        lines: bool = False,
        jsonl: bool | None = None,
        text_field: str = "text",
        pattern: str = "*.txt",
        encoding: str = "utf-8",
        skip_errors: bool = False,
    ) -> None:
        try:
            self.encoding = codecs.lookup(encoding).name
        except LookupError:
            raise click.BadParameter(f"unknown encoding {encoding!r}", param_hint="--encoding") from None
        self.jsonl, self.text_field, self.skip_errors = jsonl, text_field, skip_errors
        self.items: list[tuple[str, Path | None, bool]] = []  # (name, file or None for stdin, line by line)
        if list(inputs).count("-") > 1:
            raise click.UsageError("stdin (-) can be read once")
        for item in inputs:
            if item == "-":
                self.items.append(("stdin", None, lines or bool(jsonl)))
                continue
            for path in self._files(Path(item), pattern):
                by_line = lines or self._is_jsonl(path)
                problem = self._check(path, by_line)
                if problem is None:
                    self.items.append((str(path), path, by_line))
                elif skip_errors:
                    warn(f"skipping {problem}")
                else:
                    raise click.ClickException(problem)

    @staticmethod
    def _files(path: Path, pattern: str) -> list[Path]:
        if path.is_dir():
            files = sorted(p for p in path.rglob(pattern) if p.is_file())
            if not files:
                raise click.UsageError(f"folder {path} has no files matching {pattern!r}")
            return files
        if not path.exists():
            raise click.UsageError(f"{path} does not exist")
        if not path.is_file():
            raise click.UsageError(f"{path} is not a regular file (pipe it to '-' to read it as stdin)")
        return [path]

    def _is_jsonl(self, path: Path) -> bool:
        return self.jsonl if self.jsonl is not None else path.suffix == ".jsonl"

    def _check(self, path: Path, by_line: bool) -> str | None:
        """What is wrong with a file (it does not decode), else None; a record that is not a
        text is a usage error here (with ``skip_errors``, it is skipped when read).

        Reads the file once in blocks: disk is far faster than the model, and an error found
        after an hour of embedding would waste the hour.
        """
        try:
            with open(path, "rb") as f:
                if not by_line:
                    for _ in decoded_blocks(f, self.encoding, str(path)):
                        pass
                    return None
                jsonl = self._is_jsonl(path)
                for lineno, line in decoded_lines(f, self.encoding, str(path)):
                    if isinstance(line, Undecodable):
                        return f"{line.message} (try --encoding)"
                    try:
                        _record(line, str(path), lineno, jsonl, self.text_field)
                    except _BadRecord as err:
                        if not self.skip_errors:
                            raise click.UsageError(str(err)) from None
        except Undecodable as err:
            return f"{err.message} (try --encoding)"
        except OSError as err:
            return f"{path}: cannot be read ({err.strerror or err})"
        return None

    @property
    def has_streams(self) -> bool:
        """Whether a text is streamed (stdin read whole, a file over BIG_FILE): progress is then
        counted in tokens, since one text can take minutes."""
        return any(not by_line and (path is None or path.stat().st_size > BIG_FILE) for _, path, by_line in self.items)

    @property
    def count(self) -> int | None:
        """How many texts, when known before reading (no stdin, nothing line by line)."""
        return None if any(path is None or by_line for _, path, by_line in self.items) else len(self.items)

    def __iter__(self) -> Iterator[TextSource]:
        for name, path, by_line in self.items:
            if path is None:
                stdin = sys.stdin.buffer
                if by_line:
                    yield from self._records(stdin, name, bool(self.jsonl))
                else:
                    yield TextSource(name, stream=stdin, encoding=self.encoding)
            elif by_line:
                with open(path, "rb") as handle:
                    yield from self._records(handle, name, self._is_jsonl(path))
            else:
                yield TextSource(name, path=path, encoding=self.encoding)

    def _records(self, raw: BinaryIO, name: str, jsonl: bool) -> Iterator[TextSource]:
        for lineno, line in decoded_lines(raw, self.encoding, name):
            try:
                if isinstance(line, Undecodable):  # stdin: not checked beforehand
                    raise line
                source = _record(line, name, lineno, jsonl, self.text_field)
            except (_BadRecord, Undecodable) as err:
                if not self.skip_errors:
                    raise err if isinstance(err, Undecodable) else click.UsageError(str(err)) from None
                warn(f"skipping {err.message if isinstance(err, Undecodable) else err}")
                continue
            if source is not None:
                yield source
