"""Seconds per SGD step of notebook 07's cells, 5 stacked seeds with BatchNorm, at widths 256 and 1024.

    python benchmarks/robustness_step.py

What a width-1024 cell costs on this machine: the README's estimate for the cells the default preset
leaves to a GPU (presets/gpu.yaml) comes from this step time.
"""

import time

import torch

from imprf_utils.data import load_dataset
from imprf_utils.training.device_data import DeviceData
from imprf_utils.training.models import MaskedFCN
from imprf_utils.training.train import train

SEEDS = [0, 1, 2, 3, 4]


def main() -> None:
    train_ds = load_dataset("skewed_texture", split="train")
    data = DeviceData.from_dataset(train_ds, "cpu")
    test = DeviceData.from_dataset(load_dataset("skewed_texture", split="test").subset(torch.arange(2000)), "cpu", mean=data.mean)
    for width, steps in ((256, 60), (1024, 20)):
        model = MaskedFCN((train_ds.x[0].numel(), width, width, width, train_ds.num_classes), seeds=SEEDS, batchnorm=True)
        common = dict(batch_size=256, lr=0.1, batch_seeds=SEEDS, description=f"width {width}")
        train(model, data, test, steps=5, eval_every=5, **common)  # warm-up
        start = time.perf_counter()
        train(model, data, test, steps=steps, eval_every=1000, **common)
        print(f"width {width}, BatchNorm, {len(SEEDS)} stacked seeds: {1000 * (time.perf_counter() - start) / steps:.1f} ms a step")


if __name__ == "__main__":
    main()
