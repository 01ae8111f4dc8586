"""int8 dynamic quantisation of the encoder's Linear layers: ``LAM(..., quantize="int8")``.

The attention's Linears (query, key, value, output) become ``torch.ao.nn.quantized.dynamic.Linear``:
weights stored as int8 with one scale per output channel, activations quantised per call with
one scale per tensor, the product on int8 kernels (VNNI on this CPU). Everything else (the FFN,
the memory's projections, norms) stays float32, so the recurrence itself is unchanged.

Why only the attention: one activation scale per tensor cannot cover the FFN's outlier channels.
``benchmarks/int8_variants.py`` quantises each set of Linears and keeps the largest whose STS-B
*train* loss is at most 0.1 points. Measured here: all six Linears run 3.2× float32 but lose
0.47 on train and 1.30 on test; the attention alone loses 0.07 on train and nothing on test. ``lam eval --encoder
lam-int8`` reports the STS cost (the bound: 0.5 points on STS-B test), ``bench_core.py`` the speed.

Dynamic activation scales depend on the whole batch, so an int8 embedding can differ slightly
(not bitwise equal) with the other texts in its batch; the float32 model is batch-invariant.
CPU only.
"""

from __future__ import annotations

import warnings

from torch import nn

QUANTIZE_MODES = ("int8",)
QUANTIZED_LINEARS = ("query", "key", "value", "output")  # chosen on STS-B train (see above)


def quantize_model(model: nn.Module, mode: str, names: tuple[str, ...] = QUANTIZED_LINEARS) -> nn.Module:
    """Quantise the Linears called ``names`` in place (``mode``: one of ``QUANTIZE_MODES``)."""
    if mode not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {QUANTIZE_MODES} or None, got {mode!r}")
    if next(model.parameters()).device.type != "cpu":
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
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return any(isinstance(m, DynamicLinear) for m in model.modules())
