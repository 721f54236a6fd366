"""Where array work runs: ``--device auto|cpu|cuda|mps`` resolved once, the same way for every stage; and at which
floating-point precision a local model encodes (``--precision float32|float16|bfloat16``).

``auto`` picks CUDA when a GPU is visible, then Apple's MPS, else the CPU. Torch is imported only when a device must
be probed, so numpy-only callers (applying an adapter) never pay for it.
"""

from __future__ import annotations

import os

from qadapter.errors import QadapterError

#: every accepted ``--device`` value (the CLI's choices and the error messages read this)
DEVICES = ("auto", "cpu", "cuda", "mps")
#: every accepted ``--precision`` value: the dtype a local model computes in (vectors are always returned as float32)
PRECISIONS = ("float32", "float16", "bfloat16")
#: the precision every model runs at unless asked otherwise (its cache identity is the one without a precision)
DEFAULT_PRECISION = "float32"


def is_device_name(value: str) -> bool:
    """Whether ``value`` names a device (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``), without probing any."""
    kind, _, index = value.strip().lower().partition(":")
    return kind in DEVICES and (not index or (kind == "cuda" and index.isdigit()))


def check_precision(precision: str | None) -> str:
    """``precision`` normalised (``None`` is the default, float32), or an error naming the valid values."""
    value = DEFAULT_PRECISION if precision is None else str(precision).strip().lower()
    if value not in PRECISIONS:
        raise QadapterError(f"unknown precision {precision!r}; valid precisions: {', '.join(PRECISIONS)}")
    return value


def resolve_device(device: str | None = "auto") -> str:
    """Turn a ``--device`` value into a concrete torch device string (``cpu``, ``cuda``, ``cuda:1``, ``mps``).

    An explicit ``cuda``/``mps`` that is not available is an error that says so, never a silent CPU fallback.
    """
    spec = (device or "auto").strip().lower()
    kind = spec.split(":", 1)[0]
    if kind not in DEVICES:
        raise QadapterError(f"unknown device '{device}'; valid devices: {', '.join(DEVICES)} (or cuda:N)")
    if kind == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        if kind == "auto":
            return "cpu"
        raise QadapterError(
            f"device '{device}' needs PyTorch; install it with: pip install 'qadapter[train]'"
        ) from None
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if kind == "auto":
        return "cuda" if cuda else ("mps" if mps else "cpu")
    if kind == "cuda" and not cuda:
        raise QadapterError(
            "device 'cuda' was asked for but PyTorch sees no CUDA GPU; use --device cpu or auto"
        )
    if kind == "mps" and not mps:
        raise QadapterError(
            "device 'mps' was asked for but this PyTorch has no MPS backend; use --device cpu or auto"
        )
    return spec


def cpu_threads() -> int:
    """Threads for CPU array work: the cores this process may use (respecting affinity and ``QADAPTER_THREADS``)."""
    env = os.environ.get("QADAPTER_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise QadapterError(f"QADAPTER_THREADS must be a whole number, got {env!r}") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
