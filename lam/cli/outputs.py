"""Where ``lam encode`` writes: stdout, or a file that appears whole or not at all.

A file output is written under a temporary name in the same folder and renamed into place
when everything is written (``os.replace`` is atomic on one filesystem): a failure, a Ctrl-C
or a kill leaves no half-written file, and an existing file is replaced only by a complete one.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from types import TracebackType

import click
import numpy as np

SUFFIXES = (".npy", ".jsonl")


def check_output(output: Path | None) -> None:
    """Refuse an output that cannot be written, before any work is done."""
    if output is None:
        return
    if output.suffix not in SUFFIXES:
        raise click.UsageError("--output must end in .npy or .jsonl")
    if not output.parent.is_dir():
        raise click.UsageError(f"cannot write {output}: folder {output.parent} does not exist")
    if not os.access(output.parent, os.W_OK):
        raise click.UsageError(f"cannot write {output}: folder {output.parent} is not writable")
    if output.is_dir():
        raise click.UsageError(f"cannot write {output}: it is a folder")


def _temporary(final: Path) -> Path:
    fd, name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".part")
    os.close(fd)
    return Path(name)


class EmbeddingWriter:
    """Rows of (id, embedding), to JSON Lines on stdout or into ``output`` (.npy or .jsonl).

    ``.npy`` also writes the ids, one per line, to ``output.ids.txt`` (renamed in the same step).
    ``output`` is checked with :func:`check_output` by the caller, before any work is done.
    """

    def __init__(self, output: Path | None, dim: int) -> None:
        self.output, self.dim, self.count = output, dim, 0
        self._ids: list[str] = []
        self._rows: list[np.ndarray] = []
        self._parts: list[Path] = []
        self._handle = None
        if output is None:
            self._handle = sys.stdout
        elif output.suffix == ".jsonl":
            self._parts = [_temporary(output)]
            self._handle = open(self._parts[0], "w", encoding="utf-8")

    def write(self, doc_id: str, row: np.ndarray) -> None:
        self.count += 1
        if self.output is not None and self.output.suffix == ".npy":
            self._ids.append(doc_id)
            self._rows.append(np.asarray(row, dtype=np.float32))
            return
        record = {"id": doc_id, "embedding": [round(float(x), 7) for x in row]}
        self._handle.write(json.dumps(record) + "\n")

    def _commit(self) -> None:
        if self.output is None:
            self._handle.flush()
            return
        if self.output.suffix == ".jsonl":
            self._handle.close()
            os.replace(self._parts[0], self.output)
            return
        ids_path = self.output.with_suffix(".ids.txt")
        self._parts = [_temporary(self.output), _temporary(ids_path)]
        matrix = np.stack(self._rows) if self._rows else np.zeros((0, self.dim), dtype=np.float32)
        with open(self._parts[0], "wb") as f:
            np.save(f, matrix)
        self._parts[1].write_text("".join(f"{i}\n" for i in self._ids), encoding="utf-8")
        os.replace(self._parts[1], ids_path)
        os.replace(self._parts[0], self.output)

    def _discard(self) -> None:
        if self._handle is not None and self._handle is not sys.stdout:
            self._handle.close()
        for part in self._parts:
            part.unlink(missing_ok=True)

    def __enter__(self) -> EmbeddingWriter:
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if kind is None:
            try:
                self._commit()
            except BaseException:
                self._discard()
                raise
        else:
            self._discard()
