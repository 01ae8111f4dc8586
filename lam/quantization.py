"""Reduced-precision Linears: ``LAM(..., quantize="int8")`` or ``quantize="bf16"``.

**int8** (CPU). The attention's Linears (query, key, value, output) become
``torch.ao.nn.quantized.dynamic.Linear``: weights stored as int8 with one scale per output
channel, activations quantised per call with one scale per tensor, the product on int8 kernels
(VNNI on this CPU). Everything else (the FFN, the memory's projections, norms) stays float32.
Why only the attention: one activation scale per tensor cannot cover the FFN's outlier channels.
Each set of Linears was quantised and the largest whose STS-B *train* loss is at most 0.1
points was kept (docs/research/records/benchmarks/int8-variants.md): all six Linears ran 3.2×
float32 but lost 0.47 on train and 1.30 on test; the attention alone loses 0.07 on train and
nothing on test. Dynamic activation scales depend on the whole batch, so an int8 embedding can
differ slightly (not bitwise equal) with the other texts in its batch; the float32 model is
batch-invariant.

**bf16**. All six Linears of every block (attention and FFN) hold bfloat16 weights and get
bfloat16 inputs; the attention runs in bf16 too. The residual stream, the norms, the
embeddings, the pooling and the whole memory (its state, reads and writes: a recurrence over
thousands of segments must not accumulate bf16 rounding) stay float32. On CPUs with AVX-512
BF16 or AMX the Linears run several times faster than float32; elsewhere bf16 is emulated and
slower, and a warning says so. bf16 keeps 8 bits of mantissa, not int8's per-tensor range, so
every Linear can take it (``lam eval --encoder lam-bf16`` reports the cost). Like int8, a bf16
vector can differ slightly (about 1e-4) with the shape of the batch it ran in.

``lam eval --encoder lam-int8`` / ``lam-bf16`` report the STS cost, ``bench_core.py`` the speed.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

QUANTIZE_MODES = ("int8", "bf16")
QUANTIZED_LINEARS = ("query", "key", "value", "output")  # int8: chosen on STS-B train (see above)
BF16_LINEARS = ("query", "key", "value", "output", "ffn_in", "ffn_out")  # every Linear of a block


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX)."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def quantize_model(model: nn.Module, mode: str, names: tuple[str, ...] = QUANTIZED_LINEARS) -> nn.Module:
    """Quantise the Linears in place (``mode``: one of ``QUANTIZE_MODES``); ``names`` picks the
    int8 ones (bf16 always takes :data:`BF16_LINEARS`)."""
    if mode not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {QUANTIZE_MODES} or None, got {mode!r}")
    device = next(model.parameters()).device
    if mode == "bf16":
        if device.type == "cpu" and not cpu_has_fast_bf16():
            warnings.warn(
                "this CPU has neither AVX-512 BF16 nor AMX: bf16 Linears are emulated and slower than float32",
                stacklevel=3,
            )
        for parent in model.modules():
            for name, child in parent.named_children():
                if name in BF16_LINEARS and type(child) is nn.Linear:
                    child.to(torch.bfloat16)
        return model
    if device.type != "cpu":
        raise ValueError("int8 quantisation runs on CPU only; load with device='cpu'")
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    from torch.ao.quantization import per_channel_dynamic_qconfig

    targets = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if name in names and type(child) is nn.Linear
    ]
    with warnings.catch_warnings():  # torch 2.13 flags its own quantised-tensor constructors as deprecated
        warnings.filterwarnings("ignore", message=".*quantize_per_.*deprecated", category=UserWarning)
        for parent, name, child in targets:
            child.qconfig = per_channel_dynamic_qconfig
            setattr(parent, name, DynamicLinear.from_float(child))
    return model


def is_quantized(model: nn.Module) -> bool:
    """Whether any Linear runs on int8 or bf16."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return any(
        isinstance(m, DynamicLinear) or (type(m) is nn.Linear and m.weight.dtype == torch.bfloat16)
        for m in model.modules()
    )
