"""Model files on disk: save, locate (package / local folder / hub), verify and load.

A LAM model folder holds::

    config.json        LAMConfig
    model.safetensors  weights (fp16 by default; loaded as fp32)
    tokenizer.json     the teacher's WordPiece tokenizer (HF tokenizers format)
    checksums.sha256   sha256 of the three files above, in `sha256sum` format

Every way a folder can be broken — a missing file, a truncated or bit-flipped weight file,
a tensor of the wrong shape, a missing or unexpected tensor — raises :class:`WeightsError`
naming the file and the problem; nothing is half-loaded.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

from lam.config import LAMConfig
from lam.errors import WeightsError

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "weights" / "default"
CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE, CHECKSUM_FILE = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "checksums.sha256",
)
REQUIRED_FILES = (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_model_dir(
    name_or_path: str | Path | None,
    *,
    revision: str | None = None,
    cache_folder: str | None = None,
    local_files_only: bool = False,
    token: str | None = None,
) -> Path:
    """None → the weights shipped in the package; a folder → itself; else a Hugging Face hub id."""
    if name_or_path is None:
        return DEFAULT_MODEL_DIR
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_path)
    if path.exists():
        raise WeightsError(f"{name} is a file; pass the folder that holds {', '.join(REQUIRED_FILES)}")
    if name.count("/") != 1 or name.startswith((".", "/", "~")):
        raise WeightsError(f"{name!r} is neither a local model folder nor a hub id like 'org/model'")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:
        raise WeightsError(
            f"{name!r} is not a local folder, and downloading it from the hub needs huggingface_hub "
            "(pip install huggingface_hub)"
        ) from err
    try:
        return Path(
            snapshot_download(
                repo_id=name,
                revision=revision,
                cache_dir=cache_folder,
                local_files_only=local_files_only,
                token=token,
            )
        )
    except Exception as err:  # offline, unknown repo, auth: all end the same way for the user
        raise WeightsError(
            f"could not fetch {name!r} from the hub ({type(err).__name__}: {err}). "
            "Offline? Pass a local model folder, or call LAM() with no argument for the bundled weights."
        ) from err


MAX_CHECKSUM_BYTES = 1 << 16
_CHECKSUM_LINE = re.compile(r"([0-9a-f]{64}) [ *]([^/\\\x00]+)")  # `sha256sum` text or binary mode


def read_checksums(model_dir: Path) -> dict[str, str]:
    """The entries of ``checksums.sha256`` (file name → sha256), parsed strictly.

    The listing is a folder's own claim about itself, and hub folders come from anyone: an
    entry may only name a file directly in the folder (no path, no ``..``), every line must be
    ``<64 hex digits>  <name>``, no name twice, and the model's own files must all be listed.
    """
    listing = model_dir / CHECKSUM_FILE
    if not listing.is_file() or listing.stat().st_size > MAX_CHECKSUM_BYTES:
        raise WeightsError(f"{listing} must be a regular file of at most {MAX_CHECKSUM_BYTES} bytes")
    try:
        text = listing.read_bytes().decode("ascii")
    except UnicodeDecodeError:
        raise WeightsError(f"{listing} is not a sha256sum listing (not ASCII text)") from None
    entries: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _CHECKSUM_LINE.fullmatch(line)
        if match is None:
            raise WeightsError(f"{listing}:{lineno} is not '<sha256>  <file name>'")
        digest, name = match.groups()
        if name in (".", "..") or name != name.strip():
            raise WeightsError(f"{listing}:{lineno} names {name!r}, not a file of the model folder")
        if name in entries:
            raise WeightsError(f"{listing}:{lineno} lists {name} a second time")
        entries[name] = digest
    unlisted = [name for name in REQUIRED_FILES if name not in entries]
    if unlisted:
        raise WeightsError(f"{listing} does not list {', '.join(unlisted)}")
    return entries


def verify_checksums(model_dir: Path) -> None:
    """Compare files with checksums.sha256, when the folder has one; only regular files directly
    in the folder are read (a symlink is followed, as hub caches use them, but must end at a
    regular file: never a device or a folder)."""
    if not (model_dir / CHECKSUM_FILE).exists():
        return
    for name, expected in read_checksums(model_dir).items():
        target = model_dir / name
        if not target.exists():
            raise WeightsError(f"{target} is listed in {CHECKSUM_FILE} but missing")
        if not target.is_file():
            raise WeightsError(f"{target} is listed in {CHECKSUM_FILE} but is not a regular file")
        if sha256_file(target) != expected:
            raise WeightsError(f"{target} is corrupt: its sha256 does not match {CHECKSUM_FILE} ({expected[:12]}…)")


def load_model_files(model_dir: Path) -> tuple[LAMConfig, dict[str, torch.Tensor], Tokenizer]:
    """Read and check a model folder; returns (config, fp32 state dict, tokenizer)."""
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise WeightsError(f"{model_dir} is missing {', '.join(missing)}")
    verify_checksums(model_dir)
    try:
        config = LAMConfig.load(model_dir / CONFIG_FILE)
    except (ValueError, TypeError) as err:
        raise WeightsError(f"{model_dir / CONFIG_FILE}: {err}") from err
    try:
        state = load_file(str(model_dir / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(f"{model_dir / WEIGHTS_FILE} cannot be read: {err}") from err
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise WeightsError(f"{model_dir / WEIGHTS_FILE} has non-finite values in {bad[:5]}")
    try:
        tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
    except Exception as err:  # tokenizers raises a bare Exception on bad JSON
        raise WeightsError(f"{model_dir / TOKENIZER_FILE} cannot be read: {err}") from err
    return config, state, tokenizer


def load_state_into(model: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Strict load with errors that name the offending tensors."""
    if not model.config.memory:  # a memory-off model ignores trained memory parameters
        state = {k: v for k, v in state.items() if ".memory." not in k}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise WeightsError(f"{source}: missing tensors {missing[:8]}, unexpected tensors {unexpected[:8]}")
    wrong = [f"{k} {tuple(state[k].shape)}≠{tuple(v.shape)}" for k, v in expected.items() if state[k].shape != v.shape]
    if wrong:
        raise WeightsError(f"{source}: tensors of the wrong shape: {wrong[:5]}")
    model.load_state_dict(state)


def save_model_files(
    model: torch.nn.Module, tokenizer: Tokenizer, path: str | Path, dtype: torch.dtype = torch.float16
) -> Path:
    """Write config, weights (``dtype``), tokenizer and checksums into ``path``."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model.config.save(out / CONFIG_FILE)
    state = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt", "producer": "lam"})
    tokenizer.save(str(out / TOKENIZER_FILE))
    write_checksums(out)
    return out


def write_checksums(model_dir: Path) -> None:
    lines = [f"{sha256_file(model_dir / name)}  {name}" for name in REQUIRED_FILES]
    (model_dir / CHECKSUM_FILE).write_text("\n".join(lines) + "\n")


def configure_model(model_dir: str | Path, **changes: object) -> Path:
    """Change config fields of a model folder in place (config.json and checksums only; weights
    untouched), e.g. ``configure_model(folder, name="lam-v1")``.

    The folder is checked first, so a corrupt model is never re-checksummed into a valid one; an
    unknown field is refused as :meth:`LAMConfig.from_dict` refuses it.
    """
    folder = Path(model_dir)
    config, _, _ = load_model_files(folder)
    LAMConfig.from_dict({**config.to_dict(), **changes}).save(folder / CONFIG_FILE)
    write_checksums(folder)
    return folder
