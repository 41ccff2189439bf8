"""Training: data resident on the device, batches drawn on the device, plain SGD.

The loop follows airbench's habits: the whole dataset is one tensor on the training
device, a batch is an index tensor drawn there, uint8 images are converted per batch, and
metrics stay on the device until the end (no host-device synchronisation per step).

Precision (``precision``): "fp32" is exact float32 throughout; "tf32" lets CUDA matmuls use
TF32 tensor cores (10-bit mantissa products, float32 accumulation; the same as fp32 on the
CPU); "bf16" runs the forward pass under bfloat16 autocast with float32 master weights and
float32 gradients (the SGD update is float32). Both trade bits for the GPU's matmul rate.

Batch order is a pure function of ``(batch_seed, step)``: indices are drawn in blocks of
``BLOCK`` steps, each block from a generator seeded by ``(batch_seed, block)``. A retrain
that starts at ``rewind_step`` therefore sees exactly the batches the dense run saw from
that step on, and an interrupted run repeats itself bit for bit.

Several datasets (`DeviceData.concat`): S datasets of n_s rows, concatenated to (N, D), set s
from row start_s, and one set index per replica (``replica_sets``). Replica r on set s reads
rows ``batch_indices(batch_seeds[r], ..., n_s) + start_s`` and is scored on its own test set
(the test sets are of one size), so replicas of one batch seed on sets of one size (data and
its Gaussian clone) see the same batch positions in different images. Each replica gets the
bits it gets when trained alone on its set.

The step on a GPU (``capture``): at the default width a step's time goes to launching its ~100
kernels, not to arithmetic. So on CUDA the step (batch gather, forward, backward, masked
gradient, fused SGD, loss sum) is captured once per `train` call as a CUDA graph and replayed:
one copy of the batch's row indices and one graph launch a step. The graph replays the eager
step's kernels on the same tensors, so it gives the eager step's bits (tests/test_train.py,
on a GPU). The CPU has no graphs and runs the step eagerly, as it always has.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from imprf_utils.training.config import PRECISIONS
from imprf_utils.training.device_data import DeviceData
from imprf_utils.training.models import MaskedFCN

BLOCK = 100  # steps of batch indices drawn at once
CAPTURE_WARMUP = 3  # eager steps (on a side stream) before the step is captured, as torch.cuda.graphs asks


@contextmanager
def matmul_precision(precision: str, device: torch.device) -> Iterator[None]:
    """TF32 matmuls for "tf32", float32 ("highest") otherwise; restored on exit."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: valid ones are {', '.join(PRECISIONS)}")
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if precision == "tf32" and device.type == "cuda" else "highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def autocast(precision: str, device: torch.device, cache: bool = True) -> torch.autocast:
    """bfloat16 autocast of the forward pass for "bf16" (disabled otherwise); the backward runs outside it.

    ``cache=False`` for a step captured as a CUDA graph: autocast's cast cache must not outlive a capture.
    """
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16", cache_enabled=cache)


def progress_enabled() -> bool:
    """Progress bars show in interactive use; off under CI, nbval, or IMPRF_PROGRESS=0."""
    if os.environ.get("CI") or os.environ.get("IMPRF_PROGRESS", "1") == "0":
        return False
    return "ipykernel" in sys.modules or sys.stderr.isatty()


PROGRESS_LOG = "IMPRF_PROGRESS_LOG"


def report_progress(line: str) -> None:
    """Append ``line`` to the file that $IMPRF_PROGRESS_LOG names, if it is set.

    A notebook's kernel has no terminal: ``imprf_utils.report.reproduce`` sets it to a file it
    follows, so ``make reproduce`` prints each training as it finishes.
    """
    path = os.environ.get(PROGRESS_LOG)
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(line.rstrip("\n") + "\n")


def batch_indices(batch_seed: int, block: int, n: int, batch_size: int, device: torch.device) -> torch.Tensor:
    """Indices (BLOCK, batch_size) of block ``block``, drawn with replacement (P&B)."""
    seed = int(np.random.SeedSequence([batch_seed, block]).generate_state(1, dtype=np.uint64)[0] >> 1)
    gen = torch.Generator(device=device).manual_seed(seed)
    return torch.randint(n, (BLOCK, batch_size), generator=gen, device=device)


@torch.no_grad()
def accuracy(
    model: MaskedFCN,
    data: DeviceData,
    batch_size: int = 4096,
    precision: str = "fp32",
    replica_sets: Sequence[int] | None = None,
) -> torch.Tensor:
    """Test accuracy of each replica, (K,), left on the device.

    One set: every replica on all of it. S sets: replica r on set ``replica_sets[r]`` only.
    """
    was_training = model.training
    model.eval()
    correct = torch.zeros(model.replicas, device=data.x.device)
    for index in _test_batches(data, batch_size, replica_sets):
        with autocast(precision, data.x.device):
            logits = model(data.inputs(index))  # (K, b, C)
        correct += (logits.argmax(-1) == data.y[index]).sum(-1)
    model.train(was_training)
    return correct / data.set_size


def _test_batches(
    data: DeviceData, batch_size: int, replica_sets: Sequence[int] | None
) -> Iterator[torch.Tensor | slice]:
    """Rows of each test batch: a slice shared by all replicas for one set, else (K, b) rows
    ``start + i + starts[replica_sets[r]]`` (i < b), each replica's batch in its own set."""
    if data.sets == 1:
        yield from (slice(start, start + batch_size) for start in range(0, len(data), batch_size))
        return
    if replica_sets is None:
        raise ValueError(f"the test data holds {data.sets} sets: pass replica_sets")
    n = data.set_size
    offsets = torch.tensor([data.starts[s] for s in replica_sets], device=data.x.device)[:, None]  # (K, 1)
    for start in range(0, n, batch_size):
        yield torch.arange(start, min(start + batch_size, n), device=data.x.device) + offsets


@torch.no_grad()
def sgd_step(params: Sequence[torch.Tensor], lr: float) -> None:
    """Plain SGD on every parameter at once: p <- p - lr * p.grad (one fused ``_foreach_add_``).

    The same arithmetic as ``torch.optim.SGD`` without momentum or weight decay; the grads
    are then dropped (None), so the next backward writes them instead of adding to them.
    """
    torch._foreach_add_(params, [p.grad for p in params], alpha=-lr)
    for p in params:
        p.grad = None


@dataclass
class TrainResult:
    steps: list[int]  # evaluation steps
    train_loss: torch.Tensor  # (evals, K) mean training loss since the previous evaluation
    test_accuracy: torch.Tensor  # (evals, K)
    rewind_state: dict[str, torch.Tensor] | None  # state at rewind_step (dense run only)


def train(
    model: MaskedFCN,
    train_data: DeviceData,
    test_data: DeviceData,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    batch_seeds: Sequence[int],
    eval_every: int,
    replica_sets: Sequence[int] | None = None,
    start_step: int = 0,
    rewind_step: int | None = None,
    precision: str = "fp32",
    description: str = "train",
    capture: bool | None = None,
) -> TrainResult:
    """Plain SGD (no momentum, no weight decay) from ``start_step`` to ``steps``.

    Replica k draws its batches from ``batch_seeds[k]`` in set ``replica_sets[k]`` of
    ``train_data`` (`DeviceData.concat`; default: all in set 0, the only one): rows
    ``batch_indices(batch_seeds[k], block, n_s, B) + start_s`` of set s = ``replica_sets[k]``
    (sets may differ in size). A ``test_data`` of one set scores every replica; one of as many
    sets (of one size) as ``train_data`` scores replica k on set ``replica_sets[k]``. Replicas with one (seed, set) share the batch (one gather; with
    a single one the input is (B, D) for all). The summed loss gives each replica the
    gradient of its own mean loss, and each replica gets the bits it gets when trained alone
    on its set. Masked weights get zero gradient (`models.masked_linear`), so pruned weights
    stay exactly zero; the update is `sgd_step`. If ``rewind_step`` lies in
    ``[start_step, steps)`` the state at that step (before its update) is returned as
    ``rewind_state``. ``precision``: see the module docstring.

    ``capture``: replay the step as a CUDA graph after `CAPTURE_WARMUP` eager steps (same bits,
    no launch overhead; see the module docstring). None: on CUDA, not elsewhere; True on a
    device without CUDA graphs is a ValueError; False: eager everywhere.
    """
    device = train_data.x.device
    if capture and device.type != "cuda":
        raise ValueError(f"capture=True: the data are on {device}, and only CUDA replays a captured step; "
                         "pass capture=None (capture on CUDA, eager elsewhere) or False")
    capture = device.type == "cuda" if capture is None else capture
    model.train()
    params = list(model.parameters())
    for p in params:
        p.grad = None
    k = model.replicas
    if len(batch_seeds) != k:
        raise ValueError(f"{len(batch_seeds)} batch seeds for {k} replicas")
    replica_sets = _checked_sets(replica_sets, k, train_data, test_data)
    sources = list(zip(batch_seeds, replica_sets))  # (seed, set) of each replica
    distinct = sorted(set(sources))
    which = torch.tensor([distinct.index(source) for source in sources], device=device)
    loss_sum = torch.zeros(k, device=device)
    seen = 0
    eval_steps, losses, accuracies = [], [], []
    rewind_state = None
    block_id, block = -1, None

    def sgd_step_on(index: torch.Tensor) -> None:
        """One step on the rows ``index``: forward, backward (masked weight gradients), `sgd_step`, loss summed."""
        with autocast(precision, device, cache=not capture):
            logits = model(train_data.inputs(index))  # (K, B, C)
        target = train_data.y[index].expand(k, -1)
        loss = F.cross_entropy(logits.float().flatten(0, 1), target.flatten(), reduction="none").view(k, -1).mean(1)
        loss.sum().backward()
        sgd_step(params, lr)
        loss_sum.add_(loss.detach())

    graph = static_index = side_stream = None
    if capture:
        side_stream = torch.cuda.Stream(device)
    started = time.perf_counter()
    bar = tqdm(total=steps - start_step, desc=description, disable=not progress_enabled(), leave=False)
    with matmul_precision(precision, device):
        for step in range(start_step, steps):
            if step == rewind_step:
                rewind_state = {name: t.detach().clone() for name, t in model.state_dict().items()}
            if step // BLOCK != block_id:
                block_id = step // BLOCK
                block = torch.stack([
                    batch_indices(seed, block_id, train_data.sizes[s], batch_size, device) + train_data.starts[s]
                    for seed, s in distinct
                ])  # (sources, BLOCK, B)
            index = block[0, step % BLOCK] if len(distinct) == 1 else block[which, step % BLOCK]  # (B,) or (K, B)
            if graph is not None:
                static_index.copy_(index)
                graph.replay()
            elif capture and step - start_step == CAPTURE_WARMUP:
                graph, static_index = _captured(sgd_step_on, index)
                graph.replay()
            elif capture:
                _on_side_stream(side_stream, sgd_step_on, index)
            else:
                sgd_step_on(index)
            seen += 1
            if (step + 1) % eval_every == 0 or step + 1 == steps:
                eval_steps.append(step + 1)
                losses.append(loss_sum / seen)
                accuracies.append(accuracy(model, test_data, precision=precision, replica_sets=replica_sets))
                loss_sum.zero_()  # in place: a captured step adds to this tensor
                seen = 0
            bar.update()
    bar.close()
    result = TrainResult(
        steps=eval_steps,
        train_loss=torch.stack(losses).cpu(),
        test_accuracy=torch.stack(accuracies).cpu(),  # waits for the device: the time below is the training's
        rewind_state=rewind_state,
    )
    report_progress(f"{description}: {steps - start_step} steps, {k} networks, {time.perf_counter() - started:.0f} s")
    return result


def _captured(step_on: Callable[[torch.Tensor], None], index: torch.Tensor) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
    """``step_on(static_index)`` captured as a CUDA graph (nothing runs yet): a step is
    ``static_index.copy_(rows)`` then ``graph.replay()``. The gradients must be None (`sgd_step`
    leaves them so): the captured backward allocates them from the graph's own memory. Other
    threads may use the GPU meanwhile (a sweep's threaded workers): only this thread's calls
    that a capture forbids are errors."""
    static_index = index.clone()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, capture_error_mode="thread_local"):
        step_on(static_index)
    return graph, static_index


def _on_side_stream(stream: torch.cuda.Stream, step_on: Callable[[torch.Tensor], None], index: torch.Tensor) -> None:
    """An eager warm-up step before a capture, on a side stream (torch.cuda.graphs: "warmup must
    occur on a side stream"), ordered after and before the current stream's work."""
    stream.wait_stream(torch.cuda.current_stream(stream.device))
    with torch.cuda.stream(stream):
        step_on(index)
    torch.cuda.current_stream(stream.device).wait_stream(stream)


def _checked_sets(
    replica_sets: Sequence[int] | None, k: int, train_data: DeviceData, test_data: DeviceData
) -> list[int]:
    """Each replica's set index, [0] * K by default; ValueError unless they fit the data."""
    sets = train_data.sets
    if replica_sets is None and sets > 1:
        raise ValueError(f"train_data holds {sets} sets: pass replica_sets, one set index per replica")
    chosen = [0] * k if replica_sets is None else [int(s) for s in replica_sets]
    if len(chosen) != k:
        raise ValueError(f"{len(chosen)} replica sets for {k} replicas")
    if not all(0 <= s < sets for s in chosen):
        raise ValueError(f"replica_sets {chosen}: train_data holds sets 0..{sets - 1}")
    if test_data.sets > 1:
        test_data.set_size  # noqa: B018 (ValueError now, not at the first evaluation, for test sets of several sizes)
    if test_data.sets not in (1, sets):
        raise ValueError(f"test_data holds {test_data.sets} sets, train_data {sets}: need 1 or as many")
    return chosen
