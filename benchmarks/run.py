"""Speed figures of imprf_utils, one JSON object per line: name, value, unit, detail.

    python benchmarks/run.py                  # full run (about 10 minutes on 2 CPU cores)
    python benchmarks/run.py --quick          # a few minutes on 2 CPU cores
    python benchmarks/run.py --only clone_images_per_second --device cpu

Every ratio is measured in one process with the two sides side by side: repetitions of
A and B alternate (A B B A A B ...), each side's median is taken, and the ratio is of
the medians. Timing is time.perf_counter around the call (with a CUDA synchronize on a
GPU); a warm-up call of each side comes first and is not counted. Only public tools
are used for the reference sides: torch.mm on preallocated tensors for the GEMM
roofline; DataLoader + nn.Linear + torch.nn.utils.prune + torch.optim.SGD for the
common baseline.

On a GPU our step is a CUDA graph captured once per train() call (imprf_utils.training.train): the
timed calls of our loop run CUDA_STEPS times the steps, so the capture is spread over many
steps as in the notebooks' calls (2000 steps a round), and the rooflines also time the eager
step (``capture=False``) beside it, as ``ours_eager`` in their detail.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("IMPRF_PROGRESS", "0")  # no tqdm bars inside timed loops

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils import prune  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imprf_utils.data import Dataset  # noqa: E402
from imprf_utils.data.clone import gaussian_clone  # noqa: E402
from imprf_utils.measures.preactivations import cavity_scores, kurtosis  # noqa: E402
from imprf_utils.output import cpu_model  # noqa: E402
from imprf_utils.training.config import PRECISIONS  # noqa: E402
from imprf_utils.training.device_data import DeviceData  # noqa: E402
from imprf_utils.training.models import MaskedFCN  # noqa: E402
from imprf_utils.training.train import matmul_precision, train  # noqa: E402

PAPER_FCN = (3072, 1024, 1024, 1024, 1000)  # Redman et al. / Pellegrini & Biroli, ImageNet32
DEFAULT_FCN = (256, 256, 256, 256, 4)  # the `default` preset: 16x16 skewed_texture, 4 classes
WIDE_FCN = (256, 1024, 1024, 1024, 4)  # notebook 08's wide cells: the default task at the papers' hidden width
WIDE_SEEDS = 5  # stacked seeds of a wide cell's timed step
KEPT = 0.3  # fraction of each hidden layer's weights kept by the masks
LR = 0.1

# Sizes per mode: reps = timed repetitions per side; steps = SGD steps per timed call.
SETTINGS = {
    "full": dict(
        paper_steps=10, paper_reps=7, default_steps=200, default_reps=9, stacked_steps=40, replica_steps=200, replica_reps=9,
        wide_steps=10, wide_reps=7,
        baseline_steps=200, cavity_reps=3, brute_weights=2000, brute_units=2, clone_classes=10, clone_reps=5,
    ),
    "quick": dict(
        paper_steps=3, paper_reps=5, default_steps=100, default_reps=5, stacked_steps=20, replica_steps=100, replica_reps=5,
        wide_steps=4, wide_reps=3,
        baseline_steps=100, cavity_reps=1, brute_weights=300, brute_units=1, clone_classes=4, clone_reps=3,
    ),
}
CUDA_STEPS = 10
"""On a GPU the calls of our loop in the rooflines and the replica comparison run this many times
the steps (a call captures its step once). Not the common baseline: its DataLoader gathers 256
rows one by one, milliseconds a step on a GPU, and both its sides run the same steps."""


# ---------------------------------------------------------------------------- helpers


def machine(device: torch.device) -> dict:
    """What the figures were measured on."""
    info = {"device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    info["cpu"] = cpu_model()
    info["cpu_cores"] = os.cpu_count()
    return info


def record(name: str, value: float, unit: str, detail: dict) -> dict:
    return {"name": name, "value": round(float(value), 4), "unit": unit, "detail": detail}


def synchronizer(device: torch.device) -> Callable[[], None]:
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


def interleaved(cases: dict[str, Callable[[], object]], reps: int, sync: Callable[[], None]) -> dict[str, dict]:
    """Median seconds of each case over `reps` alternating repetitions (after one warm-up each)."""
    for fn in cases.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for rep in range(reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            sync()
            start = time.perf_counter()
            cases[name]()
            sync()
            times[name].append(time.perf_counter() - start)
    return {
        name: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t), "reps": len(t)}
        for name, t in times.items()
    }


def rounded(timing: dict) -> dict:
    return {key: round(v, 5) if isinstance(v, float) else v for key, v in timing.items()}


def random_masks(widths: tuple[int, ...], replicas: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Bool masks (K, out, in) of the hidden layers keeping a fraction KEPT of the weights at random."""
    pairs = list(zip(widths[:-1], widths[1:]))[:-1]
    return [torch.rand(replicas, o, i, generator=generator) < KEPT for i, o in pairs]


def masked_model(widths: tuple[int, ...], seeds: tuple[int, ...], device: torch.device, batchnorm: bool = False) -> MaskedFCN:
    model = MaskedFCN(widths, seeds=seeds, batchnorm=batchnorm)
    model.set_masks(random_masks(widths, len(seeds), torch.Generator().manual_seed(sum(seeds) + 1)))
    return model.to(device)


def random_data(widths: tuple[int, ...], n: int, uint8: bool, device: torch.device, seed: int) -> DeviceData:
    """n random inputs of the network's width; uint8 goes through the (x - mean)/255 input map."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(widths[-1], (n,), generator=gen)
    if uint8:
        x = torch.randint(256, (n, widths[0]), generator=gen, dtype=torch.uint8)
        return DeviceData(x.to(device), y.to(device), x.float().mean(0).to(device))
    return DeviceData(torch.randn(n, widths[0], generator=gen).to(device), y.to(device), None)


def train_call(model: MaskedFCN, data: DeviceData, test: DeviceData, steps: int, batch: int, seeds: list[int],
               precision: str = "fp32", capture: bool | None = None):
    """One timed unit of our loop: `steps` SGD steps through the public train() (one evaluation at the end);
    ``capture``: train's (None: a CUDA graph on a GPU, eager on the CPU)."""
    return lambda: train(
        model, data, test, steps=steps, batch_size=batch, lr=LR, batch_seeds=seeds, eval_every=steps,
        precision=precision, capture=capture,
    )


def gemm_call(widths: tuple[int, ...], batch: int, steps: int, device: torch.device,
              precision: str = "fp32", networks: int = 1) -> Callable[[], None]:
    """The GEMMs one SGD step of the FCN needs, `steps` times, with torch.mm into preallocated tensors.

    Per layer: forward Y = X Wᵀ and the weight gradient dW = Gᵀ X; the input gradient
    dX = G W for every layer but the first (the data need no gradient, and autograd does
    not compute it either). Layouts are nn.Linear's. ``precision``: the GEMMs our loop's
    matmuls run at — bfloat16 tensors for "bf16", TF32 for "tf32" on CUDA, float32 otherwise.
    ``networks``: each step does the GEMMs of so many networks, each with its own tensors, one
    network after another (1: one network's tensors, reused step after step and hot in cache).
    """
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    gen = torch.Generator().manual_seed(0)
    nets = []
    for _ in range(networks):
        layers = []
        for i, o in zip(widths[:-1], widths[1:]):
            t = {
                "x": torch.randn(batch, i, generator=gen), "w": torch.randn(o, i, generator=gen) * 0.02,
                "g": torch.randn(batch, o, generator=gen) * 0.01,
            }
            t = {k: v.to(device, dtype) for k, v in t.items()}
            t["y"], t["dw"], t["dx"] = (torch.empty_like(t[k]) for k in ("g", "w", "x"))
            layers.append(t)
        nets.append(layers)

    def run() -> None:
        with matmul_precision(precision, device):
            for _ in range(steps):
                for layers in nets:
                    for t in layers:
                        torch.mm(t["x"], t["w"].t(), out=t["y"])
                    for index in range(len(layers) - 1, -1, -1):
                        t = layers[index]
                        torch.mm(t["g"].t(), t["x"], out=t["dw"])
                        if index > 0:
                            torch.mm(t["g"], t["w"], out=t["dx"])

    return run


def batched_gemm_call(widths: tuple[int, ...], batch: int, steps: int, replicas: int, device: torch.device) -> Callable[[], None]:
    """The GEMMs one SGD step of ``replicas`` stacked networks needs, as batched products (torch.bmm into
    preallocated (K, ·, ·) tensors), `steps` times: ``gemm_call``'s products, K networks in each call, as a
    stacked step does them and with nothing around them (no BatchNorm, masks, activations or SGD)."""
    gen = torch.Generator().manual_seed(0)
    layers = []
    for i, o in zip(widths[:-1], widths[1:]):
        t = {
            "x": torch.randn(replicas, batch, i, generator=gen), "w": torch.randn(replicas, o, i, generator=gen) * 0.02,
            "g": torch.randn(replicas, batch, o, generator=gen) * 0.01,
        }
        t = {k: v.to(device) for k, v in t.items()}
        t["y"], t["dw"], t["dx"] = (torch.empty_like(t[k]) for k in ("g", "w", "x"))
        layers.append(t)

    def run() -> None:
        for _ in range(steps):
            for t in layers:
                torch.bmm(t["x"], t["w"].transpose(1, 2), out=t["y"])
            for index in range(len(layers) - 1, -1, -1):
                t = layers[index]
                torch.bmm(t["g"].transpose(1, 2), t["x"], out=t["dw"])
                if index > 0:
                    torch.bmm(t["g"], t["w"], out=t["dx"])

    return run


def gemm_flops_per_sample(widths: tuple[int, ...]) -> int:
    """Multiply-adds x 2 of the GEMMs in gemm_call, per sample."""
    pairs = list(zip(widths[:-1], widths[1:]))
    return 2 * sum(i * o * (3 if layer > 0 else 2) for layer, (i, o) in enumerate(pairs))


# ------------------------------------------------------------------------- benchmarks


def roofline(name: str, widths: tuple[int, ...], batch: int, steps: int, reps: int, uint8: bool,
             device: torch.device, n_train: int, precision: str, replicas: int = 1) -> Iterator[dict]:
    """Samples per second of `replicas` stacked networks (each its own batch seed) over those of
    the same GEMMs one network at a time (`gemm_call`, `replicas` times as many steps).

    With replicas > 1 the detail also gives the GEMMs of `replicas` networks with their own
    tensors, one after another (``gemm_k_networks``): the reference above reuses one network's
    tensors, hot in cache, which K networks' weights and activations are not. On a GPU the detail
    also gives our loop with the eager step (``ours_eager``: no CUDA graph) and ``capture_speedup``.
    """
    seeds = list(range(replicas))
    model = masked_model(widths, tuple(seeds), device)
    data = random_data(widths, n_train, uint8, device, seed=0)
    test = random_data(widths, 256, uint8, device, seed=1)
    cases = {"ours": train_call(model, data, test, steps, batch, seeds, precision),
             "gemm": gemm_call(widths, batch, steps * replicas, device, precision)}
    if replicas > 1:
        cases["gemm_k_networks"] = gemm_call(widths, batch, steps, device, precision, networks=replicas)
    if device.type == "cuda":
        cases["ours_eager"] = train_call(model, data, test, steps, batch, seeds, precision, capture=False)
    t = interleaved(cases, reps, synchronizer(device))
    rate = {side: replicas * batch * steps / timing["median_s"] for side, timing in t.items()}
    ours, gemm = rate["ours"], rate["gemm"]
    flops = gemm_flops_per_sample(widths)
    detail = {
        "widths": widths, "batch": batch, "K": replicas, "masks_kept": KEPT, "input": "uint8" if uint8 else "float32",
        "precision": precision,
        "train_set": n_train, "steps_per_call": steps,
        "ours_samples_per_s": round(ours, 1), "gemm_samples_per_s": round(gemm, 1),
        "gemm_gflops_per_s": round(gemm * flops / 1e9, 2), "ours_gflops_per_s": round(ours * flops / 1e9, 2),
        "ours": rounded(t["ours"]), "gemm": rounded(t["gemm"]),
        "gemms": "forward + weight grad for every layer, input grad for layers 1.. (not the data)",
    }
    if replicas > 1:
        detail |= {
            "gemm_k_networks_samples_per_s": round(rate["gemm_k_networks"], 1),
            "fraction_of_gemm_k_networks": round(ours / rate["gemm_k_networks"], 4),
            "gemm_k_networks": rounded(t["gemm_k_networks"]),
        }
    if device.type == "cuda":
        detail |= {
            "ours_eager_samples_per_s": round(rate["ours_eager"], 1), "capture_speedup": round(ours / rate["ours_eager"], 3),
            "ours_eager": rounded(t["ours_eager"]),
        }
    yield record(name, ours / gemm, "fraction", detail | machine(device))


def train_roofline_fraction_paper_fcn(s: dict, device: torch.device) -> Iterator[dict]:
    yield from roofline("train_roofline_fraction_paper_fcn", PAPER_FCN, 1000, s["paper_steps"], s["paper_reps"],
                        uint8=True, device=device, n_train=20_000, precision=s["precision"])


def train_roofline_fraction_default_fcn(s: dict, device: torch.device) -> Iterator[dict]:
    yield from roofline("train_roofline_fraction_default_fcn", DEFAULT_FCN, 256, s["default_steps"],
                        s["default_reps"], uint8=False, device=device, n_train=40_000, precision=s["precision"])


def train_roofline_fraction_default_fcn_stacked(s: dict, device: torch.device) -> Iterator[dict]:
    yield from roofline("train_roofline_fraction_default_fcn_stacked", DEFAULT_FCN, 256, s["stacked_steps"],
                        s["default_reps"], uint8=False, device=device, n_train=40_000, precision=s["precision"],
                        replicas=10)


def train_roofline_fraction_wide_bn_stacked(s: dict, device: torch.device) -> Iterator[dict]:
    """Notebook 08's wide cells, the most expensive science the suite runs on 2 cores: WIDE_SEEDS stacked
    seeds of WIDE_FCN with BatchNorm (masks keeping KEPT), samples per second ÷ the same products as
    batched GEMMs (``batched_gemm_call``) in the same process. What BatchNorm, the masks, ReLU and SGD add
    around the GEMMs; the target is 0.85 on 2 CPU cores (fp32)."""
    seeds = list(range(WIDE_SEEDS))
    model = masked_model(WIDE_FCN, tuple(seeds), device, batchnorm=True)
    data = random_data(WIDE_FCN, 40_000, False, device, seed=0)
    test = random_data(WIDE_FCN, 256, False, device, seed=1)
    steps = s["wide_steps"]
    t = interleaved({"ours": train_call(model, data, test, steps, 256, seeds),
                     "batched_gemm": batched_gemm_call(WIDE_FCN, 256, steps, WIDE_SEEDS, device)}, s["wide_reps"], synchronizer(device))
    per_step = {side: timing["median_s"] / steps for side, timing in t.items()}
    detail = {
        "widths": WIDE_FCN, "batch": 256, "K": WIDE_SEEDS, "batchnorm": True, "masks_kept": KEPT, "steps_per_call": steps,
        "ours_ms_per_step": round(1000 * per_step["ours"], 2), "batched_gemm_ms_per_step": round(1000 * per_step["batched_gemm"], 2),
        "ours": rounded(t["ours"]), "batched_gemm": rounded(t["batched_gemm"]),
    }
    yield record("train_roofline_fraction_wide_bn_stacked", per_step["batched_gemm"] / per_step["ours"], "fraction",
                 detail | machine(device))


def common_baseline_call(widths: tuple[int, ...], masks: list[torch.Tensor], data: DeviceData, batch: int,
                         steps: int, device: torch.device) -> Callable[[], None]:
    """The usual way: DataLoader(TensorDataset, shuffle) -> nn.Sequential of nn.Linear with prune masks -> SGD."""
    layers: list[nn.Module] = []
    linears = [nn.Linear(i, o) for i, o in zip(widths[:-1], widths[1:])]
    for index, linear in enumerate(linears):
        layers += [linear] if index == len(linears) - 1 else [linear, nn.ReLU()]
    net = nn.Sequential(*layers).to(device)
    for linear, mask in zip(linears[:-1], masks):
        prune.custom_from_mask(linear, "weight", mask[0].to(device))
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    loader = DataLoader(TensorDataset(data.x, data.y), batch_size=batch, shuffle=True, drop_last=True)

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield from loader

    stream = batches()

    def run() -> None:
        for _ in range(steps):
            xb, yb = next(stream)
            loss = nn.functional.cross_entropy(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()

    return run


def train_vs_common_baseline(s: dict, device: torch.device) -> Iterator[dict]:
    widths, batch, steps = DEFAULT_FCN, 256, s["baseline_steps"]
    model = masked_model(widths, (0,), device)
    data = random_data(widths, 40_000, False, device, seed=0)
    test = random_data(widths, 256, False, device, seed=1)
    baseline = common_baseline_call(widths, [m.cpu() for m in model.masks], data, batch, steps, device)
    t = interleaved({"ours": train_call(model, data, test, steps, batch, [0]), "baseline": baseline},
                    s["default_reps"], synchronizer(device))
    ours = batch * steps / t["ours"]["median_s"]
    base = batch * steps / t["baseline"]["median_s"]
    yield record("train_vs_common_baseline", ours / base, "ratio", {
        "widths": widths, "batch": batch, "K": 1, "masks_kept": KEPT, "train_set": 40_000, "steps_per_call": steps,
        "ours_samples_per_s": round(ours, 1), "baseline_samples_per_s": round(base, 1),
        "baseline": "DataLoader(TensorDataset, shuffle=True), nn.Sequential(nn.Linear, ReLU), "
                    "prune.custom_from_mask on hidden layers, torch.optim.SGD",
        "ours": rounded(t["ours"]), "baseline_timing": rounded(t["baseline"]), **machine(device),
    })


def replicas_batched_vs_sequential(s: dict, device: torch.device) -> Iterator[dict]:
    widths, batch, steps, seeds = DEFAULT_FCN, 256, s["replica_steps"], (0, 1, 2)
    data = random_data(widths, 40_000, False, device, seed=0)
    test = random_data(widths, 256, False, device, seed=1)
    stacked = masked_model(widths, seeds, device)
    singles = [masked_model(widths, (seed,), device) for seed in seeds]
    batched = train_call(stacked, data, test, steps, batch, list(seeds))
    one_by_one = [train_call(m, data, test, steps, batch, [seed]) for m, seed in zip(singles, seeds)]
    t = interleaved({"batched": batched, "sequential": lambda: [call() for call in one_by_one]},
                    s["replica_reps"], synchronizer(device))
    replica_samples = len(seeds) * batch * steps
    yield record("replicas_batched_vs_sequential", t["sequential"]["median_s"] / t["batched"]["median_s"], "ratio", {
        "widths": widths, "batch": batch, "K": len(seeds), "batch_seeds": "distinct", "masks_kept": KEPT,
        "steps_per_call": steps,
        "batched_replica_samples_per_s": round(replica_samples / t["batched"]["median_s"], 1),
        "sequential_replica_samples_per_s": round(replica_samples / t["sequential"]["median_s"], 1),
        "batched": rounded(t["batched"]), "sequential": rounded(t["sequential"]), **machine(device),
    })


def cavity_exact_vs_bruteforce(s: dict, device: torch.device) -> Iterator[dict]:
    """Exact cavity scores of a 3072x1024 layer on 10k samples vs recomputing κ with each weight removed.

    Brute force, per weight (i, j): h'_i = h_i − W_ij x_j over the N samples, then
    |κ(h'_i) − 3| − |κ(h_i) − 3| with measures.preactivations.kurtosis (float64). Its one-off set-up
    (h = x Wᵀ in float64, columns made contiguous, |κ(h_i) − 3| of every unit) is timed
    once; the per-weight loop is timed on a random subset of weights and scaled to all.
    A second, vectorized brute force does all of one unit's weights at once (N x 512
    blocks of h'), timed on a few units and scaled to all units.
    """
    n, d_in, d_out = 10_000, 3072, 1024
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, d_in, generator=gen).to(device)
    weight = (torch.randn(d_out, d_in, generator=gen) * (2 / (d_in + d_out)) ** 0.5).to(device)
    subset = torch.randint(d_out * d_in, (s["brute_weights"],), generator=gen).tolist()
    units = list(range(s["brute_units"]))
    prepared: dict[str, torch.Tensor] = {}

    def brute_setup() -> None:
        x64, w64 = x.double(), weight.double()
        h = x64 @ w64.T
        prepared.update(xt=x64.T.contiguous(), ht=h.T.contiguous(), w=w64, g=(kurtosis(h) - 3).abs())

    def brute_loop() -> None:
        xt, ht, w, g = prepared["xt"], prepared["ht"], prepared["w"], prepared["g"]
        for flat in subset:
            i, j = divmod(flat, d_in)
            (kurtosis(ht[i] - w[i, j] * xt[j]) - 3).abs() - g[i]

    def brute_vectorized() -> None:
        xt, ht, w, g = prepared["xt"], prepared["ht"], prepared["w"], prepared["g"]
        for i in units:
            for start in range(0, d_in, 512):
                block = ht[i] - w[i, start:start + 512, None] * xt[start:start + 512]  # (512, N)
                (kurtosis(block, dim=1) - 3).abs() - g[i]

    brute_setup()
    t = interleaved({"exact": lambda: cavity_scores(weight, x), "setup": brute_setup, "loop": brute_loop,
                     "vectorized": brute_vectorized}, s["cavity_reps"], synchronizer(device))
    exact = t["exact"]["median_s"]
    per_weight = t["loop"]["median_s"] / len(subset)
    brute = t["setup"]["median_s"] + per_weight * d_out * d_in
    vectorized = t["setup"]["median_s"] + t["vectorized"]["median_s"] / len(units) * d_out
    base = {"layer": [d_out, d_in], "samples": n, "labels": None, "dtype": "float32 in, float64 moments",
            **machine(device)}
    yield record("cavity_exact_vs_bruteforce", brute / exact, "ratio", {
        **base, "exact_s": round(exact, 3), "bruteforce_s_scaled": round(brute, 1),
        "bruteforce_weights_timed": len(subset), "bruteforce_us_per_weight": round(per_weight * 1e6, 2),
        "bruteforce_setup_s": round(t["setup"]["median_s"], 3), "exact": rounded(t["exact"]),
    })
    yield record("cavity_exact_vs_bruteforce_vectorized", vectorized / exact, "ratio", {
        **base, "exact_s": round(exact, 3), "bruteforce_vectorized_s_scaled": round(vectorized, 1),
        "units_timed": len(units), "what": "all of a unit's weights at once, (512, N) blocks of h'",
    })
    yield record("cavity_exact_seconds_3072x1024_10k", exact, "s", {**base, "exact": rounded(t["exact"])})


def clone_images_per_second(s: dict, device: torch.device) -> Iterator[dict]:
    """gaussian_clone of float32 (N, 3, 32, 32) images, 1280 per class (ImageNet32's ~1281 per class)."""
    per_class, classes = 1280, s["clone_classes"]
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(classes).repeat_interleave(per_class)
    ds = Dataset(torch.rand(len(y), 3, 32, 32, generator=gen), y, classes, "bench").to(device)
    t = interleaved({"clone": lambda: gaussian_clone(ds, seed=0)}, s["clone_reps"], synchronizer(device))
    yield record("clone_images_per_second", len(y) / t["clone"]["median_s"], "images/s", {
        "images": [len(y), 3, 32, 32], "dtype": "float32", "classes": classes, "per_class": per_class,
        "note": "cost per image grows with the class size (x = mu + X_c^T z / sqrt(n_c - 1))",
        "clone": rounded(t["clone"]), **machine(device),
    })


BENCHMARKS: dict[str, Callable[[dict, torch.device], Iterator[dict]]] = {
    "train_roofline_fraction_paper_fcn": train_roofline_fraction_paper_fcn,
    "train_roofline_fraction_default_fcn": train_roofline_fraction_default_fcn,
    "train_roofline_fraction_default_fcn_stacked": train_roofline_fraction_default_fcn_stacked,
    "train_roofline_fraction_wide_bn_stacked": train_roofline_fraction_wide_bn_stacked,
    "train_vs_common_baseline": train_vs_common_baseline,
    "replicas_batched_vs_sequential": replicas_batched_vs_sequential,
    "cavity_exact_vs_bruteforce": cavity_exact_vs_bruteforce,  # also cavity_exact_seconds_3072x1024_10k
    "clone_images_per_second": clone_images_per_second,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and steps (a few minutes on 2 cores)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these benchmarks")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="the roofline benchmarks' precision: our loop's and the reference GEMMs'")
    args = parser.parse_args(argv)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    settings = {**SETTINGS["quick" if args.quick else "full"], "precision": args.precision}
    if device.type == "cuda":
        settings |= {key: CUDA_STEPS * settings[key] for key in ("paper_steps", "default_steps", "stacked_steps", "replica_steps", "wide_steps")}
    for name in args.only or BENCHMARKS:
        for rec in BENCHMARKS[name](settings, device):
            rec["detail"]["mode"] = "quick" if args.quick else "full"
            print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
