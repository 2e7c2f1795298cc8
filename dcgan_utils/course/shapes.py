"""Convolution arithmetic and shape tables: the sizes a layer produces, computed by formula and read off real modules,
and a shape check that says where a network goes wrong."""

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


def conv_input_sides(m: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> range:
    """Every input side n that a Conv2d maps to output side m: the floor in its formula folds `stride` sides onto one,
    from (m - 1)s - 2p + d(k - 1) + 1 (what the transposed formula returns) upwards."""
    low = (m - 1) * stride - 2 * padding + dilation * (kernel - 1) + 1
    return range(max(low, 1), low + stride)


def output_padding_for(n: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """The output_padding a ConvTranspose2d needs to give back side n from a Conv2d's output with the same settings:
    (n + 2p - d(k - 1) - 1) mod s, zero exactly when the stride divides what the convolution's floor discards."""
    return (n + 2 * padding - dilation * (kernel - 1) - 1) % stride


def predicted_size(layer: nn.Module, n: int) -> int:
    """The output side a conv or transposed-conv layer should give for input side n, from its settings."""
    k, s, p, d = layer.kernel_size[0], layer.stride[0], layer.padding[0], layer.dilation[0]
    if isinstance(layer, nn.ConvTranspose2d):
        return conv_transpose_output_size(n, k, s, p, layer.output_padding[0], d)
    return conv_output_size(n, k, s, p, d)


def _traced(model: nn.Module, x: torch.Tensor) -> tuple[list[dict], torch.Tensor | None, str | None, Exception | None]:
    """Forward x with hooks on every leaf layer: the rows recorded, the output, and when a layer raised, its name (None
    when the error came from outside the leaf layers) and the error."""
    rows, hooks, entered = [], [], []
    for name, module in model.named_modules():
        if not list(module.children()):
            def hook(mod, inputs, output, name=name):
                rows.append({"layer": name, "type": type(mod).__name__, "in": tuple(inputs[0].shape),
                             "out": tuple(output.shape), "params": sum(p.numel() for p in mod.parameters()),
                             "module": mod})
            hooks.append(module.register_forward_pre_hook(lambda mod, inputs, name=name: entered.append(name)))
            hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as err:  # report which layer raised; the caller decides whether to re-raise
        return rows, None, (entered[-1] if len(entered) > len(rows) else None), err
    finally:
        for h in hooks:
            h.remove()
    return rows, out, None, None


def shape_table(model: nn.Module, x: torch.Tensor) -> list[dict]:
    """Run x through model and record, from forward hooks, every leaf layer's input and output shapes and parameters."""
    rows, _, _, err = _traced(model, x)
    if err is not None:
        raise err
    return rows


def check_output_shape(model: nn.Module, x: torch.Tensor, expected: tuple[int, ...]) -> list[dict]:
    """Run x through model and assert that its output, batch dimension aside, has shape `expected`; the
    AssertionError lists the shapes the layers produced and, when a layer raises, names it with PyTorch's message.
    Returns the shape table when the check passes."""
    rows, out, failed, err = _traced(model, x)
    trace = [tuple(x.shape[1:])]
    for row in rows:
        if row["out"][1:] != trace[-1]:
            trace.append(row["out"][1:])
    path = " -> ".join(str(t) for t in trace)
    if err is not None:
        where = f"layer {failed!r} ({type(model.get_submodule(failed)).__name__})" if failed is not None else "the model"
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AssertionError(f"{where} raised {type(err).__name__}: {message}. Shapes until then: {path}") from err
    got = tuple(out.shape[1:])
    if got != trace[-1]:
        path += f" -> {got}"
    if got != tuple(expected):
        raise AssertionError(f"output {got}, expected {tuple(expected)}. Shapes along the way: {path}")
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
