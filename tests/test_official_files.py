"""Tests of imprf_utils.data.official_files: ImageNet32 / CIFAR-10 readers on tiny files in the official formats."""

import os
import pickle
import struct

import numpy as np
import pytest
import torch

from imprf_utils.data import load_dataset
from imprf_utils.errors import ConfigError, DataFormatError, UnsafePickleError
from imprf_utils.training.runner import run_experiment

from conftest import TINY, changed, leftovers


def test_missing_data_dir_in_a_run_leaves_no_level(tmp_path):
    config = changed(TINY, dataset="cifar10", dataset_options={}, data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="no folder .*nowhere.*cifar-10-python.tar.gz"):
        run_experiment(config, run_store=tmp_path / "runs", device="cpu")
    assert leftovers(tmp_path / "runs") == []


# --------------------------------------------------------------------------- ImageNet32

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
