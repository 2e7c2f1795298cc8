"""Convolution arithmetic and shape tables: the sizes a layer produces, computed by formula and read off real modules."""

from __future__ import annotations

import torch
from torch import nn


def conv_output_size(n: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Side of a Conv2d output: floor((n + 2p - d(k - 1) - 1) / s) + 1."""
    return (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_transpose_output_size(n: int, kernel: int, stride: int = 1, padding: int = 0, output_padding: int = 0,
                               dilation: int = 1) -> int:
    """Side of a ConvTranspose2d output: (n - 1)s - 2p + d(k - 1) + output_padding + 1."""
    return (n - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def predicted_size(layer: nn.Module, n: int) -> int:
    """The output side a conv or transposed-conv layer should give for input side n, from its settings."""
    k, s, p, d = layer.kernel_size[0], layer.stride[0], layer.padding[0], layer.dilation[0]
    if isinstance(layer, nn.ConvTranspose2d):
        return conv_transpose_output_size(n, k, s, p, layer.output_padding[0], d)
    return conv_output_size(n, k, s, p, d)


def shape_table(model: nn.Module, x: torch.Tensor) -> list[dict]:
    """Run x through model and record, from forward hooks, every leaf layer's input and output shapes and parameters."""
    rows, hooks = [], []
    for name, module in model.named_modules():
        if not list(module.children()):
            def hook(mod, inputs, output, name=name):
                rows.append({"layer": name, "type": type(mod).__name__, "in": tuple(inputs[0].shape),
                             "out": tuple(output.shape), "params": sum(p.numel() for p in mod.parameters()),
                             "module": mod})
            hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return rows


def transposed_conv_by_hand(x: torch.Tensor, w: torch.Tensor, stride: int, padding: int = 0) -> torch.Tensor:
    """One-channel transposed convolution the long way: every input pixel stamps w * pixel onto the output at
    stride-spaced positions, overlapping stamps add up, then `padding` is cropped from each border."""
    n, k = x.shape[0], w.shape[0]
    full = torch.zeros((n - 1) * stride + k, (n - 1) * stride + k, dtype=x.dtype)
    for i in range(n):
        for j in range(n):
            full[i * stride : i * stride + k, j * stride : j * stride + k] += x[i, j] * w
    return full[padding : full.shape[0] - padding, padding : full.shape[1] - padding]
