"""Tests of imprf_utils.data and imprf_utils.synthetic against independent oracles.

Generated data: analytic moments computed here from the formulas (not from the module).
File loaders: tiny files written here in the official formats — the Python 2 pickles of the
CIFAR-10 release, Python 3 protocol-2 pickles and the npz variant of ImageNet32.
"""

import math
import os
import pickle
import socket
import struct

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch

import imprf_utils.data
import imprf_utils.photographs
from imprf_utils import synthetic
from imprf_utils.data import DATASETS, Dataset, load_dataset
from imprf_utils.errors import ConfigError, DataFormatError, UnsafePickleError


def covariance_error(x: torch.Tensor, cov: torch.Tensor) -> tuple[float, float]:
    """(‖Ĉ − cov‖_F, its expected size from sampling noise) for samples x (n, D).

    E‖Ĉ − C‖²_F ≈ Σ_ij Var(x_i x_j) / n = (E[‖x̃‖⁴] − ‖C‖²_F) / n (x̃ centred), estimated
    from the sample itself, so the bound holds for heavy-tailed and near-binary data alike.
    """
    x = x.reshape(len(x), -1).double()
    centred = x - x.mean(0)
    emp = centred.T @ centred / (len(x) - 1)
    noise = math.sqrt(((centred**2).sum(1) ** 2).mean() - (emp**2).sum()) / math.sqrt(len(x))
    return float((emp - cov.double()).norm()), noise


def oracle_correlation(size: int, xi: float) -> torch.Tensor:
    """C_pq = c1(di) c1(dj) on a torus, c1(d) = (exp(-d²/ξ²) + 1e-3 [d = 0]) / (1 + 1e-3).

    Equal to the module's PSD-projected recipe when exp(-d²/ξ²) is already positive definite
    (checked by the caller's choice of ξ ≤ 2 at L = 16).
    """
    i = torch.arange(size, dtype=torch.float64)
    d = (i[:, None] - i[None, :]).abs()
    d = torch.minimum(d, size - d)
    c1 = (torch.exp(-(d**2) / xi**2) + 1e-3 * (d == 0)) / (1 + 1e-3)
    assert torch.linalg.eigvalsh(torch.exp(-(d**2) / xi**2)).min() > 0
    return (c1[:, None, :, None] * c1[None, :, None, :]).reshape(size**2, size**2)


def oracle_templates(size: int) -> torch.Tensor:
    i = torch.arange(size, dtype=torch.float64)
    rows = math.sqrt(2) * torch.cos(2 * math.pi * i / size)[:, None].repeat(1, size)
    return torch.stack([rows, rows.T])


# --------------------------------------------------------------------------- NLGP


@pytest.mark.parametrize("gain", [0.5, 10.0])
def test_nlgp_pixels_have_zero_mean_and_unit_variance(gain):
    g = torch.Generator().manual_seed(0)
    x = synthetic.nlgp_images(20_000, size=16, xi=3.0, gain=gain, generator=g)
    assert x.dtype == torch.float32 and x.shape == (20_000, 1, 16, 16)
    x = x.reshape(20_000, -1).double()
    # standard errors of the per-pixel mean and variance, from the sample
    se_var = float(((x - x.mean(0)) ** 2).var(0).max().sqrt()) / math.sqrt(len(x))
    assert x.mean(0).abs().max() < 6 / math.sqrt(len(x))
    assert (x.var(0) - 1).abs().max() < 6 * se_var


@pytest.mark.parametrize("gain", [0.5, 10.0])
def test_nlgp_covariance_matches_arcsin_formula(gain):
    n, size, xi = 20_000, 16, 2.0
    g = torch.Generator().manual_seed(1)
    x = synthetic.nlgp_images(n, size=size, xi=xi, gain=gain, generator=g)
    gamma = 2 / math.pi * math.asin(gain**2 / (1 + gain**2))

    def arcsin_covariance(xi):
        return 2 / (math.pi * gamma) * torch.asin(gain**2 / (1 + gain**2) * oracle_correlation(size, xi))

    analytic = arcsin_covariance(xi)
    torch.testing.assert_close(synthetic.nlgp_covariance(size, xi=xi, gain=gain), analytic)
    error, noise = covariance_error(x, analytic)
    # ‖Ĉ − C‖_F concentrates at its expected size (error / noise = 1.00 ± 0.03 over seeds)
    assert error < 1.5 * noise
    assert covariance_error(x, arcsin_covariance(1.7))[0] > 3 * noise  # the test tells ξ = 2 from ξ = 1.7


def test_nlgp_long_correlation_is_projected_to_a_valid_covariance():
    # exp(-d²/ξ²) on a 16-torus is not PSD for ξ = 4; the sampler must still match its covariance
    c1 = synthetic.field_correlation_1d(16, 4.0, periodic=True)
    assert np.allclose(c1, c1.T) and np.allclose(np.diag(c1), 1)
    assert np.linalg.eigvalsh(c1).min() > 0
    x = synthetic.nlgp_images(20_000, xi=4.0, gain=10.0, generator=torch.Generator().manual_seed(2))
    error, noise = covariance_error(x, synthetic.nlgp_covariance(16, xi=4.0, gain=10.0))
    assert error < 1.5 * noise


def test_nlgp_dataset_is_balanced_deterministic_and_split():
    ds = load_dataset("nlgp", n=2_000)
    assert ds.x.shape == (2_000, 1, 16, 16) and ds.x.dtype == torch.float32
    assert ds.y.dtype == torch.int64 and torch.bincount(ds.y).tolist() == [500] * 4
    assert ds.num_classes == 4 and ds.name == "nlgp" and ds.periodic and ds.mean is None
    assert len(ds.class_names) == 4 and ds.image_shape == (1, 16, 16)
    assert not (ds.y[:50] == ds.y[0]).all()  # shuffled
    again = load_dataset("nlgp", n=2_000)
    assert torch.equal(ds.x, again.x) and torch.equal(ds.y, again.y)
    other_seed = load_dataset("nlgp", n=2_000, seed=1)
    test = load_dataset("nlgp", n=2_000, split="test")
    for other in (other_seed, test):
        assert not torch.isclose(ds.x, other.x).all(dim=(1, 2, 3)).any()  # no image in common
    assert len(load_dataset("nlgp", split="test")) == 10_000


def test_nlgp_classes_follow_xi_and_gain():
    ds = load_dataset("nlgp", n=8_000, xi=2.0, gain=(0.5, 10.0), size=8, periodic=False)
    assert ds.num_classes == 2 and not ds.periodic and ds.image_shape == (1, 8, 8)
    # oracle: kurtosis of erf(g z / √2), z ~ N(0, 1), by Gauss-Hermite quadrature (2.38 and 1.07)
    nodes, weights = np.polynomial.hermite_e.hermegauss(100)
    for c, gain in enumerate((0.5, 10.0)):
        f = scipy.special.erf(gain * nodes / math.sqrt(2))
        expected = (weights * f**4).sum() * weights.sum() / (weights * f**2).sum() ** 2
        pixels = ds.x[ds.y == c].reshape(-1, 64).numpy()
        assert abs(scipy.stats.kurtosis(pixels, axis=0, fisher=False).mean() - expected) < 0.1
    with pytest.raises(ConfigError, match="two or more classes"):
        load_dataset("nlgp", n=100, xi=2.0, gain=10.0)
    with pytest.raises(ConfigError, match="two or more classes"):
        load_dataset("nlgp", n=100, xi=(1.0, 2.0), gain=(1.0, 2.0, 3.0))


# --------------------------------------------------------------------------- skewed texture


def test_skewed_texture_moments_match_the_analytic_ones():
    n, size, sigma, a, xi = 40_000, 16, 1.0, 0.25, 2.0
    ds = load_dataset("skewed_texture", n=n, seed=4)
    assert ds.x.shape == (n, 1, size, size) and ds.num_classes == 4 and ds.periodic
    means = a * oracle_templates(size).reshape(2, -1)[torch.arange(4) % 2]
    cov = torch.expm1(sigma**2 * oracle_correlation(size, xi)) / math.expm1(sigma**2)
    module = synthetic.skewed_texture_moments(size, sigma=sigma, amplitude=a, xi=xi)
    torch.testing.assert_close(module, (means, cov))
    assert torch.equal(means[0], means[2]) and torch.equal(means[1], means[3])
    centred = torch.empty(n, size * size, dtype=torch.float64)
    for c in range(4):
        xc = ds.x[ds.y == c].reshape(-1, size * size).double()
        se = xc.std(0) / math.sqrt(len(xc))
        assert ((xc.mean(0) - means[c]).abs() < 5 * se).all()
        # one covariance for both skew signs; error / noise = 1.00 ± 0.05 over seeds and classes
        error, noise = covariance_error(xc, cov)
        assert error < 1.3 * noise
        skew = scipy.stats.skew(xc.numpy(), axis=0).mean()
        assert skew > 1 if c < 2 else skew < -1
        centred[ds.y == c] = xc - xc.mean(0)
    error, noise = covariance_error(centred, cov)  # all classes pooled: half the noise
    assert error < 1.3 * noise
    wrong = torch.expm1(sigma**2 * oracle_correlation(size, 2.3)) / math.expm1(sigma**2)
    assert covariance_error(centred, wrong)[0] > 3 * noise  # the test tells ξ = 2 from ξ = 2.3


def test_skewed_texture_options_and_determinism():
    options = dict(n=400, sigma=0.5, amplitude=0.0, xi=1.5, size=8)
    a = load_dataset("skewed_texture", **options)
    assert a.x.shape == (400, 1, 8, 8) and torch.equal(a.x, load_dataset("skewed_texture", **options).x)
    assert not torch.equal(a.x, load_dataset("skewed_texture", seed=1, **options).x)
    assert not torch.equal(a.x, load_dataset("skewed_texture", split="test", **options).x)


# --------------------------------------------------------------------------- natural photos


def test_natural_patches_come_from_their_photo_and_split_by_blocks():
    import skimage.data

    photos = ("coins", "text")
    coins = torch.from_numpy(skimage.data.coins() / np.float32(255))  # the oracle: the photo itself
    crops = coins.unfold(0, 16, 1).unfold(1, 16, 1).reshape(-1, 256)
    width = coins.shape[1] - 15

    def zscore(p):
        p = p - p.mean(-1, keepdim=True)
        return p / p.norm(dim=-1, keepdim=True)

    crops = zscore(crops)
    for split, parity in (("train", 0), ("test", 1)):
        ds = load_dataset("natural", n=200, photos=photos, split=split)
        assert ds.x.shape == (200, 1, 16, 16) and ds.x.dtype == torch.float32
        assert ds.class_names == list(photos) and torch.bincount(ds.y).tolist() == [100, 100]
        patches = zscore(ds.x[ds.y == 0].reshape(-1, 256))
        similarity, position = (patches @ crops.T).max(1)
        assert (similarity > 1 - 1e-4).all()  # each label-0 patch is a crop of coins
        top, left = position // width, position % width
        assert (top // 32 == (top + 15) // 32).all() and (left // 32 == (left + 15) // 32).all()
        assert ((top // 32 + left // 32) % 2 == parity).all()  # train: even blocks, test: odd


def test_natural_default_works_offline_standardized_and_deterministic(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    imprf_utils.photographs._photo.cache_clear()  # read the photos again, now without network
    ds = load_dataset("natural", n=4_000)
    assert ds.num_classes == 8 and ds.mean is None and not ds.periodic
    assert abs(float(ds.x.mean())) < 0.1 and abs(float(ds.x.std()) - 1) < 0.1
    assert torch.equal(ds.x, load_dataset("natural", n=4_000).x)
    assert not torch.equal(ds.x, load_dataset("natural", n=4_000, seed=1).x)
    with pytest.raises(ConfigError, match="grace_hopper"):
        load_dataset("natural", photos=("china", "lena"))


# --------------------------------------------------------------------------- load_dataset


def test_load_dataset_rejects_unknown_names_options_and_splits():
    assert DATASETS == ("nlgp", "skewed_texture", "natural", "photos", "imagenet32", "cifar10")
    with pytest.raises(ConfigError, match="nlgp, skewed_texture, natural, photos, imagenet32, cifar10"):
        load_dataset("mnist")
    with pytest.raises(ConfigError, match="valid options: n, xi, gain, size, periodic"):
        load_dataset("nlgp", sigma=1.0)
    with pytest.raises(ConfigError, match="valid options: batches, limit"):
        load_dataset("cifar10", n=10)
    with pytest.raises(ConfigError, match="train, test"):
        load_dataset("nlgp", split="val")


def test_the_registry_reexports_what_notebooks_and_modules_import():
    import imprf_utils.clone
    import imprf_utils.dataset
    from imprf_utils.data import DATASETS, Dataset, check_options, gaussian_clone, load_dataset  # noqa: F401

    assert imprf_utils.data.Dataset is imprf_utils.dataset.Dataset
    assert imprf_utils.data.gaussian_clone is imprf_utils.clone.gaussian_clone
    assert set(imprf_utils.data.__all__) <= set(dir(imprf_utils.data))
    check_options("photos", {"n": 10, "size": 32, "grayscale": False})
    with pytest.raises(ConfigError, match="valid options: n, size, grayscale, amplitude"):
        check_options("photos", {"colour": True})
    with pytest.raises(ConfigError, match="photos must name two or more"):
        check_options("photos", {"photos": ("china",)})


def test_dataset_methods():
    ds = load_dataset("skewed_texture", n=100)
    sub = ds.subset(ds.y == 1)
    assert len(sub) == 25 and (sub.y == 1).all()
    assert sub.class_names == ds.class_names and sub.periodic
    assert torch.equal(ds.subset(slice(0, 10)).x, ds.x[:10])
    moved = ds.to("cpu")
    assert moved.x.device.type == "cpu" and torch.equal(moved.x, ds.x)
    with pytest.raises(ValueError, match="int64"):
        Dataset(ds.x, ds.y.int(), 4, "bad")


# --------------------------------------------------------------------------- official files

IMAGENET_PIXEL = (2, 5, 7)  # channel, row, column of a planted pixel


def planted_images(n: int, rng: np.random.Generator) -> np.ndarray:
    """Random uint8 rows (n, 3072) with image 0 all zeros except one channel-planar pixel."""
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    c, i, j = IMAGENET_PIXEL
    data[0] = 0
    data[0, c * 1024 + i * 32 + j] = 255
    return data


def write_imagenet32(folder, *, n=5, batches=(1, 2), val=True, fmt="pickle", labels=None):
    """ImageNet32 files: dicts with 'data' uint8 (n, 3072), 'labels' list 1..1000, 'mean' (train).

    fmt "pickle": Python 3 protocol-2 pickles as written with numpy 1.x (numpy.core names);
    "npz": the npz variant; "pickle5": a protocol-5 pickle (newer writers).
    """
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    mean = rng.uniform(0, 255, 3072)
    contents = {}
    for b in batches:
        contents[f"train_data_batch_{b}"] = {
            "data": planted_images(n, rng),
            "labels": list(labels or rng.integers(1, 1001, n).tolist()),
            "mean": mean,
        }
    if val:
        labels = rng.integers(1, 1001, n).tolist()
        contents["val_data"] = {"data": planted_images(n, rng), "labels": labels}
    for stem, content in contents.items():
        if fmt == "npz":
            np.savez(folder / f"{stem}.npz", **{k: np.asarray(v) for k, v in content.items()})
        elif fmt == "pickle":
            blob = pickle.dumps(content, protocol=2).replace(b"cnumpy._core.", b"cnumpy.core.")
            (folder / stem).write_bytes(blob)
        else:
            (folder / stem).write_bytes(pickle.dumps(content, protocol=5))
    return contents


@pytest.mark.parametrize("fmt", ["pickle", "npz", "pickle5"])
def test_imagenet32_reads_the_official_files(tmp_path, fmt):
    files = write_imagenet32(tmp_path, fmt=fmt)
    ds = load_dataset("imagenet32", data_dir=tmp_path, batches=(1, 2))
    assert ds.x.shape == (10, 3, 32, 32) and ds.x.dtype == torch.uint8 and ds.num_classes == 1000
    expected = np.concatenate([files[f"train_data_batch_{b}"]["labels"] for b in (1, 2)]) - 1
    assert ds.y.dtype == torch.int64 and ds.y.tolist() == expected.tolist()
    c, i, j = IMAGENET_PIXEL
    assert ds.x[0, c, i, j] == 255 and ds.x[0].sum() == 255  # channel-planar, row-major
    assert torch.equal(ds.x[5].flatten(), torch.from_numpy(files["train_data_batch_2"]["data"][0]))
    file_mean = torch.from_numpy(files["train_data_batch_1"]["mean"]).float()
    torch.testing.assert_close(ds.mean, file_mean)

    test = load_dataset("imagenet32", data_dir=tmp_path, split="test")
    assert len(test) == 5 and test.y.tolist() == [v - 1 for v in files["val_data"]["labels"]]
    torch.testing.assert_close(test.mean, ds.mean)

    assert len(load_dataset("imagenet32", data_dir=tmp_path, batches=(2,))) == 5
    limited = load_dataset("imagenet32", data_dir=tmp_path, batches=(1, 2), limit=7)
    assert torch.equal(limited.x, ds.x[:7]) and torch.equal(limited.y, ds.y[:7])


def test_imagenet32_validation_alone_has_no_mean(tmp_path):
    write_imagenet32(tmp_path, batches=())
    assert load_dataset("imagenet32", data_dir=tmp_path, split="test").mean is None


def test_imagenet32_label_extremes(tmp_path):
    write_imagenet32(tmp_path, n=2, batches=(1,), labels=[1, 1000])
    assert load_dataset("imagenet32", data_dir=tmp_path, batches=(1,)).y.tolist() == [0, 999]


def test_imagenet32_missing_folder_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="Imagenet32_train.zip"):
        load_dataset("imagenet32", data_dir=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="data_dir"):
        load_dataset("imagenet32")
    write_imagenet32(tmp_path, batches=(1,), val=False)
    with pytest.raises(FileNotFoundError, match=r"train_data_batch_2.*image-net.org"):
        load_dataset("imagenet32", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="val_data"):
        load_dataset("imagenet32", data_dir=tmp_path, split="test")
    with pytest.raises(ConfigError, match="batches"):
        load_dataset("imagenet32", data_dir=tmp_path, batches=(11,))


def _rewrite(path, **changes):
    content = pickle.loads(path.read_bytes())
    content.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del content[key]
    path.write_bytes(pickle.dumps(content, protocol=2))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"labels": None}, "no key"),
        ({"data": np.zeros((5, 3000), np.uint8)}, r"\(5, 3000\)"),
        ({"data": np.zeros((5, 3072), np.float32)}, "float32"),
        ({"labels": [0, 1, 2, 3, 4]}, "labels span 0..4"),
        ({"labels": [1, 2, 3, 4, 1001]}, "labels span"),
        ({"labels": [1, 2, 3]}, "expected 5 integers"),
        ({"mean": np.full(3072, np.nan)}, "NaN"),
        ({"mean": np.zeros(10)}, "mean"),
    ],
)
def test_imagenet32_malformed_content(tmp_path, change, message):
    write_imagenet32(tmp_path, batches=(1,))
    _rewrite(tmp_path / "train_data_batch_1", **change)
    with pytest.raises(DataFormatError, match=message) as error:
        load_dataset("imagenet32", data_dir=tmp_path, batches=(1,))
    assert "train_data_batch_1" in str(error.value)


@pytest.mark.parametrize("fmt", ["pickle", "npz"])
def test_imagenet32_truncated_file(tmp_path, fmt):
    write_imagenet32(tmp_path, batches=(1,), fmt=fmt)
    path = tmp_path / ("train_data_batch_1.npz" if fmt == "npz" else "train_data_batch_1")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataFormatError, match="truncated"):
        load_dataset("imagenet32", data_dir=tmp_path, batches=(1,))


def test_imagenet32_npz_with_pickled_objects_is_refused(tmp_path):
    labels = np.array([1, "x"], dtype=object)
    np.savez(tmp_path / "val_data.npz", data=np.zeros((2, 3072), np.uint8), labels=labels)
    with pytest.raises(DataFormatError, match="val_data.npz"):
        load_dataset("imagenet32", data_dir=tmp_path, split="test")


class _SystemPayload:
    """Unpickling this runs os.system(command)."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _ExecPayload:
    """Unpickling this runs builtins.exec(code)."""

    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


def test_crafted_pickles_run_nothing(tmp_path):
    marker = tmp_path / "marker"
    write_code = f"open({str(marker)!r}, 'w').close()"
    # the payload is real: a plain pickle.loads runs it
    pickle.loads(pickle.dumps(_ExecPayload(write_code)))
    assert marker.exists()
    marker.unlink()

    write_imagenet32(tmp_path, batches=())
    for payload in (_SystemPayload(f"touch {marker}"), _ExecPayload(write_code)):
        for protocol in (2, 4):
            blob = pickle.dumps({"data": payload, "labels": [1]}, protocol=protocol)
            (tmp_path / "val_data").write_bytes(blob)
            with pytest.raises(UnsafePickleError, match="val_data"):
                load_dataset("imagenet32", data_dir=tmp_path, split="test")
            assert not marker.exists()


def test_pickle_of_a_non_dict_is_refused(tmp_path):
    (tmp_path / "val_data").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(DataFormatError, match="expected a dict"):
        load_dataset("imagenet32", data_dir=tmp_path, split="test")


# --------------------------------------------------------------------------- CIFAR-10


def py2_pickle(obj) -> bytes:
    """Serialize `obj` as Python 2's cPickle (protocol 2) did for the official CIFAR-10 batches.

    Python 2 str → BINSTRING (Python 3 loads it as str with encoding='latin1', as bytes with
    encoding='bytes'); numpy arrays through numpy.core.multiarray._reconstruct with their raw
    bytes as a str. Python 3's pickler cannot write this format.
    """
    out = bytearray(b"\x80\x02")

    def put(o):
        if isinstance(o, dict):
            out.extend(b"}(")
            for k, v in o.items():
                put(k)
                put(v)
            out.extend(b"u")
        elif isinstance(o, list):
            out.extend(b"](")
            for v in o:
                put(v)
            out.extend(b"e")
        elif isinstance(o, tuple):
            out.extend(b"(")
            for v in o:
                put(v)
            out.extend(b"t")
        elif o is None:
            out.extend(b"N")
        elif isinstance(o, bool):
            out.extend(b"\x88" if o else b"\x89")
        elif isinstance(o, (int, np.integer)):
            out.extend(b"J" + struct.pack("<i", int(o)))
        elif isinstance(o, (str, bytes)):
            raw = o.encode("latin1") if isinstance(o, str) else o
            out.extend(b"T" + struct.pack("<I", len(raw)) + raw)
        elif isinstance(o, np.ndarray):
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n")
            put((0,))
            put("b")
            out.extend(b"tR(")
            put(1)
            put(o.shape)
            out.extend(b"cnumpy\ndtype\n")
            put((o.dtype.str[1:], 0, 1))
            out.extend(b"R")
            put((3, o.dtype.str[0], None, None, None, -1, -1, 0))
            out.extend(b"b")
            put(False)
            put(o.tobytes())
            out.extend(b"tb")
        else:
            raise TypeError(type(o))

    put(obj)
    out.extend(b".")
    return bytes(out)


CIFAR_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"
]


def write_cifar10(folder, *, n=4):
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    batches = {}
    for stem in [f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]:
        batches[stem] = {
            "batch_label": f"{stem} of 5",
            "labels": rng.integers(0, 10, n).tolist(),
            "data": planted_images(n, rng),
            "filenames": [f"image_{i}.png" for i in range(n)],
        }
        (folder / stem).write_bytes(py2_pickle(batches[stem]))
    meta = {"num_cases_per_batch": n, "label_names": CIFAR_NAMES, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(py2_pickle(meta))
    return batches


def test_py2_pickle_matches_what_the_cifar_page_describes():
    # the CIFAR-10 page: pickle.load(fo, encoding='bytes') gives bytes keys and a uint8 array
    blob = py2_pickle({"data": np.arange(6, dtype=np.uint8).reshape(2, 3), "labels": [3, 4]})
    batch = pickle.loads(blob, encoding="bytes")
    assert set(batch) == {b"data", b"labels"} and batch[b"labels"] == [3, 4]
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].tolist() == [[0, 1, 2], [3, 4, 5]]


def test_cifar10_reads_the_official_batches(tmp_path):
    batches = write_cifar10(tmp_path / "cifar-10-batches-py")
    for data_dir in (tmp_path, tmp_path / "cifar-10-batches-py"):  # parent or the folder itself
        ds = load_dataset("cifar10", data_dir=data_dir)
        assert ds.x.shape == (20, 3, 32, 32) and ds.x.dtype == torch.uint8 and ds.num_classes == 10
        expected = sum((batches[f"data_batch_{b}"]["labels"] for b in range(1, 6)), [])
        assert ds.y.tolist() == expected and ds.class_names == CIFAR_NAMES
        c, i, j = IMAGENET_PIXEL
        assert ds.x[0, c, i, j] == 255 and ds.x[0].sum() == 255
        train = np.concatenate([batches[f"data_batch_{b}"]["data"] for b in range(1, 6)])
        torch.testing.assert_close(ds.mean, torch.from_numpy(train.mean(0)).float())

    test = load_dataset("cifar10", data_dir=tmp_path, split="test")
    assert len(test) == 4 and test.y.tolist() == batches["test_batch"]["labels"]
    torch.testing.assert_close(test.mean, ds.mean)  # the training mean, also for the test split
    subset = load_dataset("cifar10", data_dir=tmp_path, batches=(2,), limit=3)
    assert torch.equal(subset.x, ds.x[4:7]) and torch.equal(subset.mean, ds.mean)


def test_cifar10_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-python.tar.gz"):
        load_dataset("cifar10", data_dir=tmp_path / "nowhere")
    batches = write_cifar10(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match=r"data_batch_3.*cifar-10-python.tar.gz"):
        load_dataset("cifar10", data_dir=tmp_path)
    assert load_dataset("cifar10", data_dir=tmp_path, split="test").mean is None
    bad = dict(batches["test_batch"], labels=[0, 1, 2, 10])
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(py2_pickle(bad))
    with pytest.raises(DataFormatError, match=r"test_batch: labels span 0..10, expected 0..9"):
        load_dataset("cifar10", data_dir=tmp_path, split="test")
