from dataclasses import replace

import pytest
import torch

from imprf_utils.data import Dataset
from imprf_utils.training import models
from imprf_utils.training.config import PRECISIONS
from imprf_utils.training.device_data import DeviceData
from imprf_utils.training.models import MaskedFCN
from imprf_utils.training.train import BLOCK, CAPTURE_WARMUP, batch_indices, sgd_step, train


def _blobs(n: int, seed: int) -> DeviceData:
    """Two Gaussian blobs in 8 dimensions: an easy task."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=gen)
    x = torch.randn(n, 8, generator=gen) + 2.0 * (2 * y[:, None] - 1)
    return DeviceData(x, y, None)


TRAIN, TEST = _blobs(2000, 0), _blobs(500, 1)
KW = dict(steps=150, batch_size=32, lr=0.1, batch_seeds=[7], eval_every=50)


def test_batch_indices_are_a_function_of_seed_and_block():
    a = batch_indices(3, 5, 100, 16, torch.device("cpu"))
    assert a.shape == (BLOCK, 16) and int(a.max()) < 100
    assert torch.equal(a, batch_indices(3, 5, 100, 16, torch.device("cpu")))
    assert not torch.equal(a, batch_indices(3, 6, 100, 16, torch.device("cpu")))
    assert not torch.equal(a, batch_indices(4, 5, 100, 16, torch.device("cpu")))


def test_training_learns_and_reports_on_schedule():
    model = MaskedFCN((8, 16, 2), seeds=(0,))
    result = train(model, TRAIN, TEST, **KW)
    assert result.steps == [50, 100, 150]
    assert result.test_accuracy.shape == (3, 1)
    assert float(result.test_accuracy[-1, 0]) > 0.95
    assert float(result.train_loss[-1, 0]) < float(result.train_loss[0, 0])


def test_resuming_from_the_rewind_state_repeats_the_run_exactly():
    """Batches depend only on (seed, step): rewinding a dense net replays the dense run bit for bit."""
    model = MaskedFCN((8, 16, 16, 2), seeds=(0,))
    dense = train(model, TRAIN, TEST, rewind_step=70, **KW)
    replay = MaskedFCN((8, 16, 16, 2), seeds=(1,))
    replay.load_state_dict(dense.rewind_state)
    again = train(replay, TRAIN, TEST, start_step=70, **KW)
    for a, b in zip(model.parameters(), replay.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(again.test_accuracy[-1], dense.test_accuracy[-1])


@pytest.mark.parametrize("batched", [0, 2, 3], ids=["matmul per replica", "bmm and matmul", "bmm"])
@pytest.mark.parametrize("batchnorm", [False, True], ids=["", "batchnorm"])
def test_stacked_replicas_get_the_bits_of_training_one_at_a_time(batched, batchnorm, monkeypatch):
    """However the products are split (bmm, one matmul per replica), each replica gets its bits alone (K = 1)."""
    split = models.bmm_replicas
    monkeypatch.setattr(models, "bmm_replicas", lambda k, device, macs: batched if k == 3 else split(k, device, macs))
    k = 3
    stacked = MaskedFCN((8, 16, 16, 2), seeds=range(k), batchnorm=batchnorm)
    masks = [torch.rand(k, 16, 8, generator=torch.Generator().manual_seed(0)) < 0.6, torch.ones(k, 16, 16, dtype=torch.bool)]
    stacked.set_masks(masks)
    result = train(stacked, TRAIN, TEST, **{**KW, "batch_seeds": [7, 8, 7]})
    for i, seed in enumerate((7, 8, 7)):
        single = MaskedFCN((8, 16, 16, 2), seeds=(i,), batchnorm=batchnorm)
        single.set_masks([m[i : i + 1] for m in masks])
        one = train(single, TRAIN, TEST, **{**KW, "batch_seeds": [seed]})
        for name, t in single.state_dict().items():
            assert torch.equal(stacked.state_dict()[name][i], t[0]), name
        assert torch.equal(result.train_loss[:, i], one.train_loss[:, 0])
        assert torch.equal(result.test_accuracy[:, i], one.test_accuracy[:, 0])
        assert bool((stacked.weights[0][i][~masks[0][i]] == 0).all())
    assert not torch.equal(stacked.weights[0][0], stacked.weights[0][2])  # other inits, one batch order


def test_sgd_step_is_torch_sgd():
    """The fused update against torch.optim.SGD (no momentum, no weight decay), bit for bit."""
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(5, 3, generator=gen, requires_grad=True), torch.randn(4, generator=gen, requires_grad=True)]
    reference = [p.detach().clone().requires_grad_() for p in params]
    for group in (params, reference):
        for p in group:
            p.grad = torch.arange(p.numel(), dtype=torch.float32).view(p.shape) / 7
    sgd_step(params, lr=0.3)
    torch.optim.SGD(reference, lr=0.3, momentum=0.0, weight_decay=0.0).step()
    assert all(torch.equal(p, r) for p, r in zip(params, reference))
    assert all(p.grad is None for p in params)  # the next backward writes the gradients afresh


def _uint8_sets(n: int, seed: int, sets: int = 3) -> list[Dataset]:
    """``sets`` uint8 two-class tasks of n 1x3x3 images, each brighter than the last (own pixel means)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for s in range(sets):
        y = torch.randint(0, 2, (n,), generator=gen)
        x = 40 * s + 60 * y[:, None] + torch.randint(0, 80, (n, 9), generator=gen)
        out.append(Dataset(x=x.to(torch.uint8).view(n, 1, 3, 3), y=y, num_classes=2, name=f"set{s}"))
    return out


SETS_TRAIN, SETS_TEST = _uint8_sets(600, 0), _uint8_sets(200, 1)
SETS_KW = dict(steps=150, batch_size=16, lr=0.1, eval_every=60)


def test_concat_centres_each_set_by_its_own_mean():
    data = DeviceData.concat(SETS_TRAIN, "cpu")
    test = DeviceData.concat(SETS_TEST, "cpu", means=data.mean)
    assert (len(data), data.sets, data.set_size, tuple(data.mean.shape)) == (1800, 3, 600, (3, 9))
    rows = torch.tensor([[5, 600, 1799], [0, 1200, 601]])  # (2, 3): rows of sets 0, 1, 2 and 0, 2, 1
    for s, (train_ds, test_ds) in enumerate(zip(SETS_TRAIN, SETS_TEST)):
        alone = DeviceData.from_dataset(train_ds, "cpu")
        assert torch.equal(data.mean[s], alone.mean)
        assert torch.equal(data.inputs(slice(600 * s, 600 * (s + 1))), alone.inputs(slice(None)))
        assert torch.equal(test.inputs(slice(200 * s, 200 * (s + 1))),
                           DeviceData.from_dataset(test_ds, "cpu", mean=alone.mean).inputs(slice(None)))
        assert torch.equal(data.inputs(rows)[rows // 600 == s], alone.inputs(rows[rows // 600 == s] % 600))
    one = DeviceData.concat(SETS_TRAIN[:1], "cpu")
    assert one.sets == 1 and torch.equal(one.mean, DeviceData.from_dataset(SETS_TRAIN[0], "cpu").mean)


RAGGED_TRAIN = [SETS_TRAIN[0], SETS_TRAIN[1].subset(torch.arange(250)), SETS_TRAIN[2]]  # training fractions


@pytest.mark.parametrize(("seeds", "sets", "train_sets"),
                         [([7, 8, 7, 7], [0, 0, 1, 2], SETS_TRAIN), ([7, 7], [2, 2], SETS_TRAIN), ([7, 8, 7], [0, 1, 2], RAGGED_TRAIN)],
                         ids=["own batches and sets", "one batch, one set", "training sets of different sizes"])
def test_replicas_on_several_datasets_get_the_bits_of_training_each_alone(seeds, sets, train_sets):
    """Replica r of a stacked run on concatenated sets = r trained alone on set ``sets[r]`` (train and test)."""
    train_data = DeviceData.concat(train_sets, "cpu")
    test_data = DeviceData.concat(SETS_TEST, "cpu", means=train_data.mean)
    stacked = MaskedFCN((9, 12, 2), seeds=range(len(seeds)))
    result = train(stacked, train_data, test_data, batch_seeds=seeds, replica_sets=sets, **SETS_KW)
    for r, (seed, s) in enumerate(zip(seeds, sets)):
        own_train = DeviceData.from_dataset(train_sets[s], "cpu")
        own_test = DeviceData.from_dataset(SETS_TEST[s], "cpu", mean=own_train.mean)
        single = MaskedFCN((9, 12, 2), seeds=(r,))
        one = train(single, own_train, own_test, batch_seeds=[seed], **SETS_KW)
        for name, t in single.state_dict().items():
            assert torch.equal(stacked.state_dict()[name][r], t[0]), name
        assert torch.equal(result.train_loss[:, r], one.train_loss[:, 0])
        assert torch.equal(result.test_accuracy[:, r], one.test_accuracy[:, 0])
    assert float(result.test_accuracy[-1].min()) > 0.9


def test_mismatched_sets_are_refused():
    tiny = Dataset(x=torch.zeros(600, 1, 3, 4, dtype=torch.uint8), y=torch.zeros(600, dtype=torch.int64),
                   num_classes=2, name="other shape")
    first = SETS_TRAIN[0]
    for other in (tiny, replace(first, num_classes=3), replace(first, x=first.x.float())):
        with pytest.raises(ValueError, match="share image shape, dtype and number of classes"):
            DeviceData.concat([SETS_TRAIN[0], other], "cpu")
    data = DeviceData.concat(SETS_TRAIN, "cpu")
    test = DeviceData.concat(SETS_TEST, "cpu", means=data.mean)
    with pytest.raises(ValueError, match=r"means \(3, 9\) for 2 sets"):
        DeviceData.concat(SETS_TEST[:2], "cpu", means=data.mean)
    model = MaskedFCN((9, 4, 2), seeds=(0, 1))
    cases = [
        (dict(replica_sets=None), "train_data holds 3 sets: pass replica_sets"),
        (dict(replica_sets=[0]), "1 replica sets for 2 replicas"),
        (dict(replica_sets=[0, 3]), r"replica_sets \[0, 3\]: train_data holds sets 0..2"),
        (dict(replica_sets=[0, -1]), "train_data holds sets 0..2"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            train(model, data, test, batch_seeds=[1, 2], **{**SETS_KW, **kwargs})
    two = DeviceData.concat(SETS_TEST[:2], "cpu", means=data.mean[:2])
    with pytest.raises(ValueError, match="test_data holds 2 sets, train_data 3"):
        train(model, data, two, batch_seeds=[1, 2], replica_sets=[0, 1], **SETS_KW)
    ragged = DeviceData.concat([SETS_TEST[0], SETS_TRAIN[1], SETS_TEST[2]], "cpu", means=data.mean)
    with pytest.raises(ValueError, match=r"sets of \(200, 600, 200\) rows: scoring replicas on their own sets needs sets of one size"):
        train(model, data, ragged, batch_seeds=[1, 2], replica_sets=[0, 1], **SETS_KW)


def test_uint8_images_enter_as_centred_over_255():
    x = torch.tensor([[[[0, 255]]], [[[100, 50]]]], dtype=torch.uint8)  # (2, 1, 1, 2)
    ds = Dataset(x=x, y=torch.tensor([0, 1]), num_classes=2, name="tiny")
    data = DeviceData.from_dataset(ds, "cpu")
    torch.testing.assert_close(data.mean, torch.tensor([50.0, 152.5]))
    torch.testing.assert_close(data.inputs(slice(None)), (x.reshape(2, 2).float() - data.mean) / 255)
    other = DeviceData.from_dataset(ds, "cpu", mean=torch.zeros(2))
    torch.testing.assert_close(other.inputs(slice(None)), x.reshape(2, 2).float() / 255)


def test_precision_bf16_trains_in_bfloat16_with_float32_weights_and_tf32_is_fp32_on_the_cpu():
    runs = {}
    for precision in PRECISIONS:
        model = MaskedFCN((8, 16, 16, 2), seeds=(0,))
        result = train(model, TRAIN, TEST, precision=precision, **KW)
        runs[precision] = (model, result)
        assert all(p.dtype == torch.float32 for p in model.parameters())
        assert float(result.test_accuracy[-1, 0]) > 0.95
    fp32, tf32, bf16 = (runs[p][0] for p in PRECISIONS)
    assert all(torch.equal(a, b) for a, b in zip(fp32.parameters(), tf32.parameters()))
    # bf16 forward passes round activations to 8 mantissa bits: close to fp32, not equal
    assert not all(torch.equal(a, b) for a, b in zip(fp32.parameters(), bf16.parameters()))
    torch.testing.assert_close(bf16.weights[0], fp32.weights[0], rtol=0.1, atol=0.05)
    assert torch.get_float32_matmul_precision() == "highest"  # restored


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="valid ones are fp32, tf32, bf16"):
        train(MaskedFCN((8, 16, 2), seeds=(0,)), TRAIN, TEST, precision="fp16", **KW)


def test_capture_is_refused_off_cuda_before_any_step():
    """A captured step is a CUDA graph: asked for on the CPU, train refuses and leaves the model as it was."""
    model = MaskedFCN((8, 16, 2), seeds=(0,))
    before = {name: t.clone() for name, t in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"capture=True: the data are on cpu, and only CUDA replays a captured step; "
                                         r"pass capture=None \(capture on CUDA, eager elsewhere\) or False"):
        train(model, TRAIN, TEST, capture=True, **KW)
    assert all(torch.equal(before[name], t) for name, t in model.state_dict().items())


CUDA_ONLY = pytest.mark.skipif(not torch.cuda.is_available(),
                               reason="no CUDA device: the step is captured as a CUDA graph on CUDA only")


def _cuda_case(case: str) -> tuple[MaskedFCN, DeviceData, DeviceData, dict]:
    """A model, its data on the GPU and train's arguments: every path of the step that a graph captures."""
    gen = torch.Generator().manual_seed(0)
    if case == "stacked on two sets":  # uint8 with a mean per set, (K, B) rows, BatchNorm, a rewind inside the run
        train_data = DeviceData.concat(SETS_TRAIN[:2], "cuda")
        test_data = DeviceData.concat(SETS_TEST[:2], "cuda", means=train_data.mean)
        model = MaskedFCN((9, 32, 32, 2), seeds=(0, 1, 2), batchnorm=True)
        kwargs = dict(batch_seeds=[7, 8, 7], replica_sets=[0, 1, 1], steps=250, rewind_step=120)
    else:  # float data, one batch for all replicas ((B,) rows), a retrain from a rewind step
        train_data, test_data = (DeviceData(d.x.cuda(), d.y.cuda(), None) for d in (TRAIN, TEST))
        model = MaskedFCN((8, 32, 32, 2), seeds=(0, 1))
        kwargs = dict(batch_seeds=[7, 7], steps=250, start_step=30)
    model.set_masks([torch.rand(model.replicas, *w.shape[1:], generator=gen) < 0.6 for w in model.weights[:-1]])
    return model.cuda(), train_data, test_data, dict(batch_size=32, lr=0.1, eval_every=60, **kwargs)


@CUDA_ONLY
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("case", ["stacked on two sets", "one batch, from a rewind step"])
def test_cuda_captured_step_gives_the_bits_of_the_eager_step(case, precision, monkeypatch):
    """On a GPU, the step captured as a CUDA graph and replayed gives the eager step's bits: weights,
    BatchNorm statistics, losses, accuracies and the rewind state; and it is replayed, not run eagerly."""
    replays = []
    replay = torch.cuda.CUDAGraph.replay
    monkeypatch.setattr(torch.cuda.CUDAGraph, "replay", lambda graph: replays.append(1) or replay(graph))
    runs = {}
    for capture in (False, True):
        model, train_data, test_data, kwargs = _cuda_case(case)
        runs[capture] = (model, train(model, train_data, test_data, precision=precision, capture=capture, **kwargs))
        assert len(replays) == (kwargs["steps"] - kwargs.get("start_step", 0) - CAPTURE_WARMUP if capture else 0)
    (eager, eager_result), (captured, captured_result) = runs[False], runs[True]
    pairs = list(zip(eager.state_dict().items(), captured.state_dict().values()))
    pairs += [(("train_loss", eager_result.train_loss), captured_result.train_loss),
              (("test_accuracy", eager_result.test_accuracy), captured_result.test_accuracy)]
    if eager_result.rewind_state is not None:
        pairs += [((f"rewind {name}", t), captured_result.rewind_state[name]) for name, t in eager_result.rewind_state.items()]
    differ = {name: float((a.double() - b.double()).abs().max()) for (name, a), b in pairs if not torch.equal(a, b)}
    assert not differ, f"captured and eager steps differ (max |difference|): {differ}"
    assert float(eager_result.test_accuracy[-1].min()) > 0.9
