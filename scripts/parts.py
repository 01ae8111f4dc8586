"""Evaluations run in parts that survive an interruption, each part a record keyed on what it measured.

A long evaluation (hours on this 2-core CPU) is cut into parts. Each part writes its own run
record (:func:`lam.evaluation.report.write_report`) to ``<folder>/<part>.json``; a later run
skips a part only when its record measured the same thing: the same weights (sha256 of
``model.safetensors``) with the memory on or off as before (``LAMConfig.memory``) and pooled the
same way (``LAMConfig.pooling``), plus whatever else the caller's ``matches`` asks for: one
weights file is two models when its config turns the memory off. Training is bit-for-bit
deterministic on one machine type but not across them, so parts of another rebuild are never
mixed in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path


def model_key(model_path: str | None) -> tuple[str, bool, str]:
    """(sha256 of the weights, memory on, pooling) of a model folder, without loading the model."""
    from lam.config import LAMConfig
    from lam.persistence import CONFIG_FILE, WEIGHTS_FILE, resolve_model_dir, sha256_file

    folder = resolve_model_dir(model_path)
    config = LAMConfig.load(folder / CONFIG_FILE)
    return sha256_file(folder / WEIGHTS_FILE), config.memory, config.pooling


def same_model(info: dict, key: tuple[str, bool, str]) -> bool:
    """Whether an encoder's record info (``record["encoders"][name]``) measured the model of this
    :func:`model_key`: its weights, memory setting and pooling."""
    weights_sha256, memory, pooling = key
    return (
        info.get("weights_sha256") == weights_sha256 and info.get("memory") == memory and info.get("pooling") == pooling
    )


def key_folder(out: str | Path, key: tuple[str, bool, str]) -> Path:
    """The folder of one model's parts under ``out``, named after its :func:`model_key`."""
    weights_sha256, memory, pooling = key
    return Path(out) / f"acceptance-{weights_sha256[:8]}-{'memory' if memory else 'memory-off'}-{pooling}"


def missing_parts(folder: Path, parts: Sequence[str], matches: Callable[[dict], bool]) -> list[str]:
    """The parts with no record in ``folder`` that ``matches``."""
    missing = []
    for part in parts:
        path = Path(folder) / f"{part}.json"
        if not (path.exists() and matches(json.loads(path.read_text()))):
            missing.append(part)
    return missing


def parts_to_run(missing: list[str], only: list[str] | None, limit: int, parts: Sequence[str]) -> list[str]:
    """The missing parts this run measures: those named in ``only`` (all when None), at most ``limit``.

    ``only`` lets several processes split the parts, e.g. one thread each on a 2-core machine.
    """
    unknown = sorted(set(only or ()) - set(parts))
    if unknown:
        raise ValueError(f"unknown parts {unknown}; the parts are {list(parts)}")
    return [part for part in missing if only is None or part in only][:limit]


def load_parts(folder: Path, parts: Sequence[str]) -> dict[str, dict]:
    return {part: json.loads((Path(folder) / f"{part}.json").read_text()) for part in parts}
