"""One reduced round of the `paper` preset on synthetic data of ImageNet32's size, and the
projected time of the whole preset. One JSON object per line, like benchmarks/run.py.

    python benchmarks/paper_round.py                          # on a GPU: 1,281,167 images, 300 steps
    python benchmarks/paper_round.py --images 20000 --steps 6 --device cpu   # a CPU check of the paper FCN
    python benchmarks/paper_round.py --images 3000 --test-images 500 --hidden 32 --batch 100 \
        --steps 1 --warmup 1 --precision fp32 --device cpu                    # plumbing only (seconds)

The data are uniform random uint8 images (ImageNet32's shape, 3072 bytes each, 1000 labels)
resident on the device, so the timing is the training loop's, not a loader's. The network is
the preset's (3072-1024-1024-1024-1000, BatchNorm, SGD lr 0.1, batch 1000; ``--hidden`` and
``--batch`` shrink it for a plumbing check, whose projection is then not the preset's) with
30% of each hidden layer kept, trained through the public `train()` with the preset's stacking:

- ``imp``: the 3 seeds as K = 3 stacked replicas (the dense run and every IMP round);
- ``oneshot_random``: oneshot and random networks of one seed at 10 sparsities, K = 20
  (the preset trains all 60 of its 3 seeds together; 20 bounds the memory of this check).

The projection counts what `run_experiments` trains for the preset: per seed, on the data,
the dense run (100k steps), 10 IMP rounds and 10 + 10 oneshot/random networks (99k steps
each, from the rewind step); on the clone the dense run, 10 IMP rounds and 1 + 1. Replica-steps
at K = 3 cost the ``imp`` rate, the others the ``oneshot_random`` rate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("IMPRF_PROGRESS", "0")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imprf_utils.training.config import PRECISIONS  # noqa: E402
from imprf_utils.training.device_data import DeviceData  # noqa: E402
from imprf_utils.training.models import MaskedFCN  # noqa: E402
from imprf_utils.training.train import train  # noqa: E402

INPUT, HIDDEN, CLASSES = 3072, 1024, 1000  # ImageNet32's 32x32x3 bytes, the preset's width, its labels
IMAGENET32_TRAIN = 1_281_167
STEPS, REWIND, BATCH, ROUNDS, SEEDS = 100_000, 1000, 1000, 10, 3


def synthetic_imagenet32(n: int, device: torch.device, seed: int) -> DeviceData:
    """n random uint8 images of 3072 bytes and labels 0..999, made on the device in chunks."""
    gen = torch.Generator(device=device).manual_seed(seed)
    x = torch.empty(n, INPUT, dtype=torch.uint8, device=device)
    for start in range(0, n, 65536):
        stop = min(start + 65536, n)
        x[start:stop] = torch.randint(0, 256, (stop - start, INPUT), generator=gen, device=device, dtype=torch.uint8)
    y = torch.randint(0, CLASSES, (n,), generator=gen, device=device)
    return DeviceData(x, y, x[: min(n, 50_000)].float().mean(0))


def timed_round(widths: tuple[int, ...], batch: int, replicas: int, data: DeviceData, test: DeviceData, steps: int,
                warmup: int, precision: str) -> float:
    """Seconds per SGD step of `replicas` stacked networks (after `warmup` untimed steps)."""
    model = MaskedFCN(widths, seeds=list(range(replicas)), batchnorm=True).to(data.x.device)
    gen = torch.Generator().manual_seed(0)
    model.set_masks([torch.rand(replicas, o, i, generator=gen).to(data.x.device) < 0.3 for i, o in zip(widths[:-2], widths[1:-1])])
    seeds = list(range(replicas))
    kwargs = dict(batch_size=batch, lr=0.1, batch_seeds=seeds, precision=precision)
    train(model, data, test, steps=warmup, eval_every=warmup, **kwargs)
    if data.x.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    train(model, data, test, steps=steps, eval_every=steps, **kwargs)  # one evaluation, as every 100k/eval_every steps
    if data.x.is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=IMAGENET32_TRAIN, help="training images (ImageNet32: 1,281,167)")
    parser.add_argument("--steps", type=int, default=300, help="timed SGD steps per case")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first (allocations, kernels)")
    parser.add_argument("--test-images", type=int, default=10_000, help="test images of the evaluation (P&B: 10,000)")
    parser.add_argument("--hidden", type=int, default=HIDDEN, help="hidden-layer width (the preset's 1024)")
    parser.add_argument("--batch", type=int, default=BATCH, help="images per SGD step (the preset's 1000)")
    parser.add_argument("--precision", default="bf16", choices=PRECISIONS)
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    args = parser.parse_args(argv)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    data = synthetic_imagenet32(args.images, device, seed=0)
    test = synthetic_imagenet32(args.test_images, device, seed=1)
    widths = (INPUT, args.hidden, args.hidden, args.hidden, CLASSES)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    detail = dict(device=name, torch=torch.__version__, images=args.images, test_images=args.test_images, widths=widths,
                  steps=args.steps, precision=args.precision, batch=args.batch,
                  step="CUDA graph" if device.type == "cuda" else "eager")  # train() captures the step on CUDA
    per_step = {}
    for case, k in (("imp", SEEDS), ("oneshot_random", 2 * ROUNDS)):
        per_step[case] = timed_round(widths, args.batch, k, data, test, args.steps, args.warmup, args.precision)
        samples = args.batch * k / per_step[case]
        print(json.dumps(dict(name=f"paper_round_{case}_samples_per_s", value=round(samples, 1), unit="samples/s",
                              detail={**detail, "replicas": k, "s_per_step": round(per_step[case], 5),
                                      "epoch_s_per_replica": round(IMAGENET32_TRAIN * k / samples, 2)})), flush=True)
    imp_replica_steps = SEEDS * 2 * (STEPS + ROUNDS * (STEPS - REWIND))  # data and clone, dense + IMP rounds
    other_replica_steps = SEEDS * (2 * ROUNDS + 2) * (STEPS - REWIND)  # oneshot/random: data 20, clone 2
    seconds = imp_replica_steps * per_step["imp"] / SEEDS + other_replica_steps * per_step["oneshot_random"] / (2 * ROUNDS)
    print(json.dumps(dict(name="paper_preset_projected_hours", value=round(seconds / 3600, 2), unit="hours",
                          detail={**detail, "replica_steps_imp": imp_replica_steps, "replica_steps_oneshot_random": other_replica_steps,
                                  "trainings": SEEDS * 2 * (1 + ROUNDS) + SEEDS * (2 * ROUNDS + 2)})), flush=True)


if __name__ == "__main__":
    main()
