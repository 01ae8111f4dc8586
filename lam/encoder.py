"""``LAM``: the user-facing encoder, following sentence-transformers' ``encode`` contract."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from lam.embedding_precision import PRECISIONS, quantize_embeddings
from lam.model import LAMModel
from lam.persistence import load_model_files, load_state_into, resolve_model_dir, save_model_files
from lam.runner import DocumentStream, check_output_dim, pooled_sums, to_embeddings
from lam.threads import set_threads
from lam.tokenization import TextSegmenter, check_unicode

if TYPE_CHECKING:
    from lam.retrieval import Hit, Index

logger = logging.getLogger(__name__)

Embeddings = np.ndarray | torch.Tensor | list[torch.Tensor]
_PROGRESS_MIN_CHARS = 1_000_000  # show_progress_bar=None: show a bar for work this large


def _check_texts(sentences: Any) -> tuple[list[str], bool]:
    """Validate the input; returns (texts, was_single_string)."""
    if isinstance(sentences, str):
        return [check_unicode(sentences, "the text")], True
    if sentences is None:
        raise TypeError("sentences must be a str or a list of str, got None")
    if isinstance(sentences, (bytes, dict)) or not isinstance(sentences, Iterable):
        raise TypeError(f"sentences must be a str or a list of str, got {type(sentences).__name__}")
    texts = list(sentences)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"sentences[{i}] is {type(text).__name__}, expected str")
        check_unicode(text, f"sentences[{i}]")
    return texts, False


class LAM:
    """A LAM text encoder: embeddings of texts of any length in O(n) time and O(1) memory.

    :param model_name_or_path: None for the weights shipped in the package (no network), a
        local model folder, or a Hugging Face hub id (needs ``huggingface_hub`` and a network).
    :param device: "cpu" (default), "cuda", … .
    :param max_tokens: optional cap on text tokens per input (None: unlimited, the default).
    :param prompts: optional {"query": "...", "document": "..."} prefixes.
    :param quantize: "int8" runs the attention's Linears on int8 kernels (CPU; faster, STS-B
        unchanged); "bf16" runs every Linear and the attention in bfloat16 with the memory kept
        in float32 (fastest for long text on CPUs with AVX-512 BF16 or AMX; also GPUs).
        :mod:`lam.quantization` says which Linears and why.
    :param backend: "onnx" runs texts of one segment (≤ W − 2 tokens) on ONNX Runtime, faster
        on short text with the same embeddings (the ``onnx`` extra; CPU). With ``quantize="int8"``
        the ONNX graph's MatMuls run on int8 too: the fastest mode for short text.
    :param threads: CPU threads, process-wide (torch has one pool per process). None: the CPUs
        this process may use (affinity and cgroup quota; :mod:`lam.threads`). On a machine
        where other processes compete for the cores, 1 is often faster.

    >>> model = LAM()
    >>> model.encode(["A cat sits.", "A dog runs."]).shape
    (2, 384)
    """

    def __init__(
        self,
        model_name_or_path: str | Path | None = None,
        device: str | torch.device | None = None,
        *,
        max_tokens: int | None = None,
        prompts: dict[str, str] | None = None,
        quantize: str | None = None,
        backend: str = "torch",
        threads: int | None = None,
        revision: str | None = None,
        cache_folder: str | None = None,
        local_files_only: bool = False,
        token: str | None = None,
    ) -> None:
        set_threads(threads)
        model_dir = resolve_model_dir(
            model_name_or_path,
            revision=revision,
            cache_folder=cache_folder,
            local_files_only=local_files_only,
            token=token,
        )
        config, state, tokenizer = load_model_files(model_dir)
        model = LAMModel(config)
        load_state_into(model, state, model_dir)
        self.model_dir: Path | None = model_dir  # where the weights came from (None: built in memory)
        self._init(model, tokenizer, str(model_name_or_path or model_dir), device, max_tokens, prompts)
        self.quantize = quantize
        self.set_backend(backend)  # exported from the float weights, before torch's Linears are quantised
        self._quantize_torch()

    def _init(self, model, tokenizer, source, device, max_tokens, prompts, quantize=None) -> None:
        self.model = model.eval()
        self.config = model.config
        self.tokenizer = tokenizer
        self.source = source
        self.segmenter = TextSegmenter(
            tokenizer,
            self.config.segment_len,
            self.config.cls_token_id,
            self.config.sep_token_id,
            self.config.pad_token_id,
        )
        self.max_tokens = self._check_max_tokens(max_tokens)
        self.prompts = dict(prompts or {})
        self.similarity_fn_name = "cosine"
        self._device = self._check_device(device or "cpu")
        self.model.to(self._device)
        self.quantize = quantize
        self._quantize_torch()
        self._stats = {"texts": 0, "tokens": 0, "segments": 0, "seconds": 0.0}
        self._index: Index | None = None  # made on first use (in memory) or by open_index
        self.backend, self._onnx = "torch", None

    def _quantize_torch(self) -> None:
        """Put the Linears on int8 or bf16 when ``quantize`` asks for it (once)."""
        from lam.quantization import is_quantized, quantize_model

        if self.quantize is not None and not is_quantized(self.model):
            quantize_model(self.model, self.quantize)

    def set_backend(self, backend: str) -> LAM:
        """ "torch" (default) or "onnx": one-segment texts on ONNX Runtime (:mod:`lam.onnx_segment`).

        The exported graph holds the weights as they are now: call this again after changing them.
        """
        if backend not in ("torch", "onnx"):
            raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
        if backend == "onnx":
            from lam.quantization import is_quantized

            if self._device.type != "cpu":
                raise ValueError("backend='onnx' runs on CPU (no device)")
            if self.quantize == "bf16":
                raise ValueError("backend='onnx' runs float32 or int8, not bf16: use quantize='int8' or None")
            if is_quantized(self.model):
                raise ValueError(
                    "the ONNX graph is exported from the float weights: "
                    "create the model with LAM(..., backend='onnx', quantize='int8') instead"
                )
            from lam.onnx_segment import OnnxSegment

            self._onnx = OnnxSegment(self.model, self._weights_file_sha256(), int8=self.quantize == "int8")
        else:
            self._onnx = None
        self.backend = backend
        return self

    @classmethod
    def from_model(
        cls,
        model: LAMModel,
        tokenizer,
        *,
        device: str | torch.device | None = None,
        max_tokens: int | None = None,
        source: str = "<in memory>",
    ) -> LAM:
        """Wrap an in-memory :class:`LAMModel` and tokenizer (e.g. fresh from training)."""
        self = cls.__new__(cls)
        self.model_dir = None
        self._init(model, tokenizer, source, device, max_tokens, None)
        return self

    @classmethod
    def from_pretrained(cls, model_name_or_path: str | Path | None = None, **kwargs: Any) -> LAM:
        return cls(model_name_or_path, **kwargs)

    @classmethod
    def from_teacher(cls, device: str | torch.device | None = None) -> LAM:
        """The teacher as a LAM with a closed memory, built now from the packaged teacher (needs the
        ``teacher`` extra): the windowed teacher, pooled as every LAM is."""
        from lam.teacher import build_from_teacher

        model, tokenizer = build_from_teacher()
        return cls.from_model(model, tokenizer, device=device, source="teacher:all-MiniLM-L6-v2")

    def save_pretrained(self, path: str | Path, dtype: torch.dtype = torch.float16) -> Path:
        """Write config.json, model.safetensors (fp16 by default), tokenizer.json, checksums."""
        if self.quantize is not None:
            raise ValueError(
                f"a {self.quantize}-quantised model is not saved; save the float model and quantise on load"
            )
        return save_model_files(self.model, self.tokenizer, path, dtype=dtype)

    save = save_pretrained

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return self._device

    @staticmethod
    def _check_device(device: str | torch.device) -> torch.device:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"invalid device {device!r}: {err}") from err
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available here; use 'cpu'")
        return dev

    def to(self, device: str | torch.device) -> LAM:
        if self.backend == "onnx" and torch.device(device).type != "cpu":
            raise ValueError("backend='onnx' runs on CPU; set_backend('torch') first")
        self._device = self._check_device(device)
        self.model.to(self._device)
        return self

    @property
    def max_seq_length(self) -> int | None:
        """Token cap per text (None: unlimited). Settable, as in sentence-transformers."""
        return self.max_tokens

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        self.max_tokens = self._check_max_tokens(value)

    @staticmethod
    def _check_max_tokens(value: int | None) -> int | None:
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"max_tokens must be a positive int or None, got {value!r}")
        return value

    def get_sentence_embedding_dimension(self) -> int:
        return self.config.hidden_size

    get_embedding_dimension = get_sentence_embedding_dimension

    def count_tokens(self, text: str) -> int:
        """WordPiece tokens in ``text`` (without the [CLS]/[SEP] framing)."""
        return self.segmenter.count_tokens(_check_texts(text)[0][0])

    # ------------------------------------------------------------------ encoding
    def _output_dim(self, output_dim: int | None, truncate_dim: int | None) -> int | None:
        if output_dim is not None and truncate_dim is not None and output_dim != truncate_dim:
            raise ValueError(f"output_dim={output_dim} and truncate_dim={truncate_dim} disagree")
        dim = output_dim if output_dim is not None else truncate_dim
        return check_output_dim(dim, self.get_sentence_embedding_dimension())

    def _document_iterator(self, text: str, body: list[int] | None, max_tokens: int | None) -> Iterator[list[int]]:
        if body is not None:
            return self.segmenter.segments([body], max_tokens)
        return self.segmenter.text_segments(text, max_tokens)

    @torch.inference_mode()
    def encode(
        self,
        sentences: str | Sequence[str],
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        precision: Literal["float32", "int8", "uint8", "binary", "ubinary"] = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | torch.device | None = None,
        normalize_embeddings: bool = True,
        output_dim: int | None = None,
        truncate_dim: int | None = None,
        max_tokens: int | None = None,
    ) -> Embeddings:
        """Embed texts of any length.

        :param sentences: a str (→ array ``[D]``) or a list of str (→ ``[N, D]``, one row per
            input, always). Empty strings are valid (embedded as ``[CLS] [SEP]``).
        :param prompt_name: key of ``self.prompts`` whose text is prepended; ``prompt``: the text.
        :param batch_size: texts per forward batch (longest first, then restored to input order).
        :param show_progress_bar: None shows one only for large jobs (> 1M characters).
        :param precision: "float32" or an output quantisation (see :mod:`lam.embedding_precision`).
        :param convert_to_tensor: return a torch tensor; ``convert_to_numpy=False``: list of tensors.
        :param normalize_embeddings: L2-normalise (after the Matryoshka truncation).
        :param output_dim: keep the first ``output_dim`` dimensions (alias ``truncate_dim``).
        :param max_tokens: cap on text tokens per input for this call (default: the model's).
        """
        texts, single = _check_texts(sentences)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        dim = self._output_dim(output_dim, truncate_dim)
        max_tokens = self._check_max_tokens(max_tokens) if max_tokens is not None else self.max_tokens
        if prompt is None and prompt_name is not None:
            if prompt_name not in self.prompts:
                raise ValueError(f"prompt_name {prompt_name!r} not in prompts {sorted(self.prompts)}")
            prompt = self.prompts[prompt_name]
        if prompt:
            texts = [prompt + t for t in texts]
        if device is not None and self._check_device(device) != self._device:
            self.to(device)

        out_dim = dim or self.get_sentence_embedding_dimension()
        embeddings = torch.zeros(len(texts), out_dim)
        total_chars = sum(len(t) for t in texts)
        if show_progress_bar is None:
            show_progress_bar = total_chars > _PROGRESS_MIN_CHARS and sys.stderr.isatty()
        started = time.perf_counter()
        # a text too long to tokenise at once: the bar counts tokens as segments finish (the
        # total is unknown until the text is read); otherwise it counts texts
        by_tokens = any(len(t) > self.segmenter.piece_chars for t in texts)
        bar = tqdm(
            total=None if by_tokens else len(texts),
            unit="tok" if by_tokens else "text",
            unit_scale=by_tokens,
            disable=not show_progress_bar,
            desc="Encoding",
        )
        tokens_before = self._stats["tokens"]
        for idx, batch, bodies in self._length_batches(texts, batch_size):
            one = self._one_segment_bodies(bodies, max_tokens) if self._onnx is not None else None
            if one is not None:
                before = self._stats["tokens"]
                sums, counts = self._onnx_pooled(one)  # one segment each: no memory to read
                bar.update(self._stats["tokens"] - before if by_tokens else 0)
            else:
                docs = [self._document_iterator(t, b, max_tokens) for t, b in zip(batch, bodies)]
                sums, counts = self._pooled(docs, bar if by_tokens else None)
            embeddings[idx] = to_embeddings(sums, counts, dim, normalize_embeddings).float().cpu()
            if not by_tokens:
                bar.update(len(batch))
        bar.close()
        self._stats["texts"] += len(texts)
        self._stats["seconds"] += time.perf_counter() - started
        logger.debug("encoded %d texts, %d tokens", len(texts), self._stats["tokens"] - tokens_before)

        if precision != "float32":
            quantized = quantize_embeddings(embeddings.numpy(), precision)
            return quantized[0] if single else quantized
        if convert_to_tensor:
            return embeddings[0] if single else embeddings
        if not convert_to_numpy:
            return embeddings[0] if single else list(embeddings)
        array = embeddings.numpy()
        return array[0] if single else array

    def _length_batches(
        self, texts: list[str], batch_size: int, window_batches: int = 16, window_chars: int = 1 << 21
    ) -> Iterator[tuple[list[int], list[str], list[list[int] | None]]]:
        """(input positions, texts, token ids or None) per batch, batches of similar token length.

        Texts go longest (in characters) first, in windows of up to ``window_batches`` batches
        or ``window_chars`` characters; a window's short texts are tokenised in one call and
        re-sorted by token count, so a batch pads little: on the STS-B test sentences at batch 32,
        sorting by characters alone ran 32% more positions than there are tokens, this 4%.
        Texts over ``piece_chars`` are left to the streaming tokeniser (None) and come first in
        their window.
        """
        order = np.argsort([-len(t) for t in texts], kind="stable").tolist()
        piece = self.segmenter.piece_chars
        start = 0
        while start < len(order):
            end, chars = start, 0
            while end < len(order) and end - start < batch_size * window_batches and chars < window_chars:
                chars += len(texts[order[end]])
                end += 1
            window = order[start:end]
            short = [i for i in window if len(texts[i]) <= piece]
            bodies = dict(zip(short, self.segmenter.body_ids_batch([texts[i] for i in short]))) if short else {}
            window.sort(key=lambda i: -len(bodies[i]) if i in bodies else -len(texts[i]))  # stable
            for b in range(0, len(window), batch_size):
                idx = window[b : b + batch_size]
                yield idx, [texts[i] for i in idx], [bodies.get(i) for i in idx]
            start = end

    def _pooled(self, docs: list[Iterator[list[int]]], token_bar=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled sums of documents run segment by segment; ``token_bar`` counts their tokens."""

        def on_segment(n_tokens: int) -> None:
            self._stats["tokens"] += n_tokens
            self._stats["segments"] += 1
            if token_bar is not None:
                token_bar.update(n_tokens)

        return pooled_sums(self.model, self.segmenter, docs, on_segment=on_segment)

    def _one_segment_bodies(self, bodies: list[list[int] | None], max_tokens: int | None) -> list[list[int]] | None:
        """The batch's bodies when every text is one segment (after ``max_tokens``), else None."""
        if any(b is None for b in bodies):
            return None
        cut = [b[:max_tokens] if max_tokens is not None else b for b in bodies]
        return cut if all(len(b) <= self.segmenter.body_len for b in cut) else None

    def _onnx_pooled(self, bodies: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.segmenter.frame(bodies)
        self._stats["tokens"] += int(mask.sum()) - 2 * mask.shape[0]  # text tokens, as count_tokens
        self._stats["segments"] += 1
        return self._onnx.pooled_sums(ids, mask)

    def encode_query(self, sentences: str | Sequence[str], **kwargs: Any) -> Embeddings:
        """``encode`` with the "query" prompt when one is configured."""
        if "prompt" not in kwargs and "prompt_name" not in kwargs and "query" in self.prompts:
            kwargs["prompt_name"] = "query"
        return self.encode(sentences, **kwargs)

    def encode_document(self, sentences: str | Sequence[str], **kwargs: Any) -> Embeddings:
        """``encode`` with the "document" (or "passage"/"corpus") prompt when one is configured."""
        if "prompt" not in kwargs and "prompt_name" not in kwargs:
            name = next((n for n in ("document", "passage", "corpus") if n in self.prompts), None)
            if name:
                kwargs["prompt_name"] = name
        return self.encode(sentences, **kwargs)

    def stream(self, max_tokens: int | None = None) -> DocumentStream:
        """A :class:`~lam.runner.DocumentStream`: feed text piece by piece, read the embedding."""
        max_tokens = self._check_max_tokens(max_tokens) if max_tokens is not None else self.max_tokens
        return DocumentStream(self.model, self.segmenter, max_tokens)

    def encode_file(self, path: str | Path, encoding: str = "utf-8", **kwargs: Any) -> np.ndarray:
        """Embed one file of any size, streamed from disk in blocks (constant memory)."""
        stream = self.stream()
        stream.feed_file(path, encoding=encoding)
        return stream.embedding(**kwargs)

    # ------------------------------------------------------------------ similarity
    @staticmethod
    def _as_tensor(x: Any) -> torch.Tensor:
        if isinstance(x, list):
            x = torch.stack([torch.as_tensor(np.asarray(e)) for e in x]) if x else torch.zeros(0, 0)
        t = torch.as_tensor(x, dtype=torch.float32)
        return t.unsqueeze(0) if t.dim() == 1 else t

    def similarity(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        """Cosine similarity matrix ``[N1, N2]`` of two sets of embeddings."""
        a, b = self._as_tensor(embeddings1), self._as_tensor(embeddings2)
        return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        """Cosine similarity of row i with row i: ``[N]``."""
        a, b = self._as_tensor(embeddings1), self._as_tensor(embeddings2)
        if a.shape != b.shape:
            raise ValueError(f"pairwise similarity needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
        return (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1)

    @staticmethod
    def truncate_embeddings(embeddings: Any, dim: int, normalize: bool = True) -> Any:
        """Matryoshka: keep the first ``dim`` dimensions (and re-normalise)."""
        array = np.asarray(embeddings, dtype=np.float32)
        if check_output_dim(dim, array.shape[-1], "dim") is None:
            raise ValueError(f"dim must be an int in [1, {array.shape[-1]}], got None")
        out = array[..., :dim]
        if normalize:
            out = out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)
        return out

    @property
    def weights_sha256(self) -> str | None:
        """sha256 of the weights file this model was loaded from (None: built in memory).

        A quantised model's vectors differ slightly from the float model's, so its hash carries
        the mode (``…:int8``, ``…:int8-onnx`` when short texts run on int8 ONNX): an index never
        mixes them.
        """
        digest = self._weights_file_sha256()
        if digest is None or self.quantize is None:
            return digest
        return f"{digest}:{self.quantize}" + ("-onnx" if self.backend == "onnx" else "")

    def _weights_file_sha256(self) -> str | None:
        from lam.persistence import WEIGHTS_FILE, sha256_file

        if self.model_dir is None or not (Path(self.model_dir) / WEIGHTS_FILE).exists():
            return None
        return sha256_file(Path(self.model_dir) / WEIGHTS_FILE)

    # ------------------------------------------------------------------ retrieval
    def open_index(self, path: str | Path = ":memory:", **kwargs: Any) -> Index:
        """Open (or create) a persistent index on this model; ``index``/``search`` then use it."""
        from lam.retrieval import Index

        if self._index is not None:
            self._index.close()
        self._index = Index(path, self, **kwargs)
        return self._index

    @property
    def current_index(self) -> Index:
        """The index ``index``/``search`` use: the one opened last, else a fresh in-memory one."""
        if self._index is None:
            self.open_index(":memory:")
        return self._index

    def index(self, doc_id: str, text: str, metadata: dict[str, Any] | None = None) -> None:
        """Index a document of any length (see :class:`lam.retrieval.Index`); an id indexed again is replaced."""
        self.current_index.index(doc_id, text, metadata)

    def index_many(self, documents: Any, metadata: Any = None, **kwargs: Any) -> int:
        """Index ``{doc_id: text}`` or ``(doc_id, text)`` pairs; returns how many were indexed."""
        return self.current_index.index_many(documents, metadata, **kwargs)

    def index_file(self, doc_id: str, path: str | Path, metadata: dict[str, Any] | None = None) -> None:
        """Index a text file of any size in constant memory."""
        self.current_index.index_file(doc_id, path, metadata)

    def search(self, query: str | list[str], top_k: int = 10) -> list[Hit] | list[list[Hit]]:
        """Ranked hits with the best-matching passage (text and character offsets) of each."""
        return self.current_index.search(query, top_k)

    def remove(self, doc_id: str) -> bool:
        """Remove an indexed document; True if it was there."""
        return self.current_index.remove(doc_id)

    def clear(self) -> None:
        """Remove every indexed document."""
        self.current_index.clear()

    def __len__(self) -> int:
        """Number of indexed documents."""
        return 0 if self._index is None else len(self._index)

    def __bool__(self) -> bool:  # a model with nothing indexed is still a model
        return True

    # ------------------------------------------------------------------ introspection
    def stats(self) -> dict[str, Any]:
        """Model facts and running counters (texts, tokens, segments, seconds, tokens/s)."""
        params = sum(p.numel() for p in self.model.parameters())
        memory_params = sum(p.numel() for n, p in self.model.named_parameters() if ".memory." in n)
        s = dict(self._stats)
        s["tokens_per_second"] = s["tokens"] / s["seconds"] if s["seconds"] else 0.0
        return {
            "name": self.config.name,
            "source": self.source,
            "device": str(self._device),
            "embedding_dim": self.config.hidden_size,
            "layers": self.config.num_layers,
            "segment_len": self.config.segment_len,
            "memory": self.config.memory,
            "max_tokens": self.max_tokens,
            "parameters": params,
            "memory_parameters": memory_params,
            **s,
            "index": None if self._index is None else self._index.stats(),
        }

    def __repr__(self) -> str:
        c = self.config
        return (
            f"LAM(name={c.name!r}, source={self.source!r}, dim={c.hidden_size}, layers={c.num_layers}, "
            f"segment_len={c.segment_len}, memory={'on' if c.memory else 'off'}, "
            f"max_tokens={self.max_tokens}, device={str(self._device)!r})"
        )
