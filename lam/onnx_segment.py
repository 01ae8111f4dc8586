"""ONNX Runtime for one-segment texts: ``LAM(..., backend="onnx")``.

A text of at most W − 2 tokens is one segment, and one segment never reads the memory (there
is nothing before it), so its forward is a plain transformer whatever the weights. That
forward, with the masked sum that pooling needs, is exported once with ``torch.onnx.export``
and run by ONNX Runtime with every graph optimisation (fused attention, LayerNorm and GELU).
On the STS-B test sentences it runs faster than torch in float32 with the same embeddings;
``int8=True`` (``LAM(backend="onnx", quantize="int8")``) puts every MatMul on int8, faster again
at a small cost (``benchmarks/results/peers.md``). Longer texts still go through torch, segment
by segment.

The exported file is cached under ``$LAM_CACHE`` (default ``~/.cache/lam``), keyed by the
weights' sha256, the segment length and the torch and LAM versions; a model built in memory
(no weights file) is exported to a temporary file instead.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import torch

from lam.model import LAMModel

INSTALL_HINT = "backend='onnx' needs onnxruntime and onnx: pip install onnxruntime onnx (the [onnx] extra)"


class _SegmentSums(torch.nn.Module):
    """ids, mask ``[B, T]`` → Σ hidden ``[B, D]`` and token counts ``[B]`` of one segment."""

    def __init__(self, model: LAMModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, _ = self.model.forward_segment(ids, mask, None, False)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1), weights.sum((1, 2))


def cache_dir() -> Path:
    return Path(os.environ.get("LAM_CACHE", Path.home() / ".cache" / "lam"))


class OnnxSegment:
    """One-segment forward on ONNX Runtime; :meth:`pooled_sums` matches ``pooled_sums`` for one segment."""

    def __init__(
        self, model: LAMModel, weights_sha256: str | None, threads: int | None = None, int8: bool = False
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ImportError(INSTALL_HINT) from err
        from lam import __version__

        if weights_sha256 is None:
            path = Path(tempfile.mkdtemp(prefix="lam-onnx-")) / "segment.onnx"
            self._export(model, path)
        else:
            key = f"{weights_sha256}|{model.config.segment_len}|{torch.__version__}|{__version__}"
            path = cache_dir() / "onnx" / f"segment-{hashlib.sha256(key.encode()).hexdigest()[:20]}.onnx"
            if not path.exists():
                self._export(model, path)
        if int8:
            path = self._quantized(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no busy-waiting between runs: the tokenizer and torch need those cores (+20% measured here)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    @staticmethod
    def _export(model: LAMModel, path: Path) -> None:
        try:
            import onnx  # noqa: F401 - torch's exporter writes through it
        except ImportError as err:
            raise ImportError(INSTALL_HINT) from err
        path.parent.mkdir(parents=True, exist_ok=True)
        example = (torch.randint(1000, 2000, (2, 16)), torch.ones(2, 16, dtype=torch.bool))
        axes = {"ids": {0: "batch", 1: "tokens"}, "mask": {0: "batch", 1: "tokens"}}
        axes.update({"sums": {0: "batch"}, "counts": {0: "batch"}})
        partial = path.with_suffix(f".{os.getpid()}.part")  # written whole, then renamed: never half a file
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks traced as constants: fine here
            torch.onnx.export(
                _SegmentSums(model).eval(), example, str(partial), input_names=["ids", "mask"],
                output_names=["sums", "counts"], dynamic_axes=axes, opset_version=17, dynamo=False,
            )  # fmt: skip
        partial.replace(path)

    @staticmethod
    def _quantized(path: Path) -> Path:
        """The graph with every MatMul on int8 (dynamic: weights per output channel, activations
        per batch, VNNI kernels where the CPU has them), made once beside the float graph."""
        from onnxruntime.quantization import QuantType, quantize_dynamic

        target = path.with_name(path.stem + "-int8.onnx")
        if not target.exists():
            partial = target.with_suffix(f".{os.getpid()}.part")
            quantize_dynamic(str(path), str(partial), weight_type=QuantType.QInt8, per_channel=True)
            partial.replace(target)
        return target

    def pooled_sums(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sums, counts = self.session.run(None, {"ids": ids.numpy(), "mask": mask.numpy()})
        return torch.from_numpy(sums), torch.from_numpy(counts)
