"""The data entry point: root resolution, scaling, batching, folders made here, and real MNIST / CIFAR-10."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets
from torchvision.transforms.functional import pil_to_tensor

from dcgan_utils.engine import data as data_module
from dcgan_utils.engine.data import DatasetNotFoundError, ImageData, data_root, load_dataset, to_model_range, to_uint8
from helpers import image_folder


def test_data_root_argument_then_environment_then_repo(monkeypatch, tmp_path):
    monkeypatch.delenv("DCGAN_DATA_DIR", raising=False)
    assert data_root() == Path(data_module.__file__).resolve().parents[2] / "data"
    monkeypatch.setenv("DCGAN_DATA_DIR", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "arg") == tmp_path / "arg"


def test_scaling_maps_0_255_onto_minus1_1_and_back():
    pixels = torch.arange(256, dtype=torch.uint8)
    scaled = to_model_range(pixels)
    assert scaled.dtype == torch.float32 and scaled[0] == -1 and scaled[-1] == 1
    assert torch.all(scaled[1:] > scaled[:-1])
    assert torch.equal(to_uint8(scaled), pixels)
    assert torch.equal(to_uint8(torch.tensor([-3.0, 3.0])), torch.tensor([0, 255], dtype=torch.uint8))


def _labelled(n=103):
    """ImageData whose label is the image's index, so batches can be traced back."""
    images = torch.arange(n, dtype=torch.uint8)[:, None, None, None].expand(n, 1, 28, 28).contiguous()
    return ImageData(images, torch.arange(n), tuple("ab"))


def test_one_pass_visits_every_image_once_shuffled():
    data = _labelled()
    seen = []
    for x, y in data.batches(10, generator=torch.Generator().manual_seed(0)):
        assert x.shape == (10, 1, 28, 28) and x.dtype == torch.float32
        torch.testing.assert_close(x[:, 0, 0, 0], to_model_range(y.to(torch.uint8)))  # images travel with labels
        seen.append(y)
    order = torch.cat(seen)
    assert len(seen) == data.num_batches(10) == 10  # 103 images: the last 3 are dropped
    assert len(set(order.tolist())) == 100
    assert not torch.equal(order, torch.sort(order).values)
    kept = torch.cat([y for _, y in data.batches(10, drop_last=False)])
    assert sorted(kept.tolist()) == list(range(103)) and data.num_batches(10, drop_last=False) == 11


def test_seeded_batches_repeat_and_seeds_differ():
    data = _labelled()
    first = [y for _, y in data.batches(16, generator=torch.Generator().manual_seed(1))]
    again = [y for _, y in data.batches(16, generator=torch.Generator().manual_seed(1))]
    other = [y for _, y in data.batches(16, generator=torch.Generator().manual_seed(2))]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


@pytest.mark.parametrize("batch_size", [0, -1, 200])
def test_bad_batch_size_is_a_clear_error(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        next(_labelled().batches(batch_size))


def test_folder_decodes_real_files_exactly(tmp_path):
    written = image_folder(tmp_path, modes=("RGB", "L"), classes=("cats", "dogs"))
    data = load_dataset("folder", tmp_path)
    assert data.images.shape == (4, 3, 32, 32) and data.images.dtype == torch.uint8
    assert data.classes == ("cats", "dogs") and sorted(data.labels.tolist()) == [0, 0, 1, 1]
    decoded = {data.images[k].numpy().tobytes(): data.labels[k].item() for k in range(len(data))}
    for path, img in written.items():
        expected = pil_to_tensor(img.convert("RGB"))  # grayscale files become RGB
        assert decoded[expected.numpy().tobytes()] == ("cats", "dogs").index(path.parent.name), path
    gray = load_dataset("folder", tmp_path, channels=1)
    assert gray.images.shape == (4, 1, 32, 32)


def test_folder_of_mixed_sizes_needs_image_size(tmp_path):
    image_folder(tmp_path, sizes=((32, 32), (40, 30)), classes=("cats", "dogs"))
    with pytest.raises(ValueError, match="different sizes.*image_size="):
        load_dataset("folder", tmp_path)
    data = load_dataset("folder", tmp_path, image_size=28)
    assert data.images.shape == (4, 3, 28, 28)


def test_folder_errors_say_what_to_do(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="is not a folder"):
        load_dataset("folder", tmp_path / "absent")
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DatasetNotFoundError, match="one sub-folder per class"):
        load_dataset("folder", tmp_path)
    with pytest.raises(ValueError, match="needs root="):
        load_dataset("folder")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "imagenet"}, "unknown dataset 'imagenet'.*mnist, cifar10, folder"),
        ({"name": "mnist", "image_size": 48}, "image_size must be one of"),
        ({"name": "mnist", "channels": 3}, "only for 'folder'"),
    ],
)
def test_bad_arguments_are_rejected_before_any_work(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_dataset(root=tmp_path, **kwargs)


def test_missing_mnist_names_dataset_folder_files_and_address(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("mnist", tmp_path, download=False)
    message = str(err.value)
    assert "mnist" in message and str(tmp_path / "MNIST" / "raw") in message
    for name, md5 in datasets.MNIST.resources:
        assert name in message and md5 in message
    assert datasets.MNIST.mirrors[0] in message and "DCGAN_DATA_DIR" in message


def test_missing_cifar10_names_the_archive(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="(?s)cifar-10-python.tar.gz.*cs.toronto.edu"):
        load_dataset("cifar10", tmp_path, download=False)


def test_real_mnist_matches_torchvision(mnist_root):
    data = load_dataset("mnist", mnist_root)
    reference = datasets.MNIST(str(mnist_root), train=True)
    assert data.images.shape == (60000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert torch.bincount(data.labels).tolist() == torch.bincount(reference.targets).tolist()
    for k in (0, 12345, 59999):
        image, label = reference[k]  # PIL image, decoded by torchvision per item
        assert torch.equal(data.images[k], pil_to_tensor(image)) and data.labels[k] == label
    x, _ = next(data.batches(256))
    assert x.min() == -1 and x.max() == 1


def test_real_mnist_resized_once(mnist_root):
    small = load_dataset("mnist", mnist_root, train=False)
    big = load_dataset("mnist", mnist_root, train=False, image_size=64)
    assert len(small) == 10000 and big.images.shape == (10000, 1, 64, 64)
    # resizing keeps the picture: mean brightness of each digit changes by under 2 grey levels
    diff = big.images.float().mean((1, 2, 3)) - small.images.float().mean((1, 2, 3))
    assert diff.abs().max() < 2


def test_real_cifar10_subset_as_a_folder(cifar_subset):
    data = load_dataset("folder", cifar_subset)
    assert data.images.shape == (10000, 3, 32, 32)
    assert data.classes[:3] == ("airplane", "automobile", "bird")
    assert torch.bincount(data.labels).tolist() == [1000] * 10
    first = pil_to_tensor(Image.open(sorted((cifar_subset / "airplane").iterdir())[0]).convert("RGB"))
    where = [k for k in range(len(data)) if torch.equal(data.images[k], first)]
    assert len(where) == 1 and data.labels[where[0]] == 0
    assert len(set(data.labels[:100].tolist())) == 10  # shuffled once: the first 100 images are not all airplanes


def test_a_class_ordered_folder_is_shuffled_once_so_any_prefix_is_a_fair_sample(tmp_path):
    """ImageFolder lists class by class; on the old code a prefix of a tenth held one class."""
    image_folder(tmp_path, classes=tuple("abcdefghij"), repeat=20, sizes=((8, 8),))
    data = load_dataset("folder", tmp_path, image_size=28)
    prefix = data.first(len(data) // 10)  # what the notebooks' smoke runs train on
    assert len(prefix) == 20 and torch.equal(prefix.labels, data.labels[:20]) and prefix.classes == data.classes
    assert torch.equal(prefix.images, data.images[:20])  # each image with its own label
    assert len(set(prefix.labels.tolist())) >= 6 and torch.bincount(data.labels).tolist() == [20] * 10
    again = load_dataset("folder", tmp_path, image_size=28)
    assert torch.equal(again.images, data.images) and torch.equal(again.labels, data.labels)  # the same order


def test_batches_can_start_mid_pass_in_the_same_order():
    data = _labelled()
    full = [y for _, y in data.batches(10, generator=torch.Generator().manual_seed(4))]
    tail = [y for _, y in data.batches(10, generator=torch.Generator().manual_seed(4), start=7)]
    assert len(tail) == 3 and all(torch.equal(a, b) for a, b in zip(full[7:], tail))


def test_the_torchvision_cifar10_loader_decodes_files_in_torchvisions_own_format(tmp_path, monkeypatch):
    """CI has only the ImageFolder subset; this builds tiny files in torchvision's CIFAR-10 layout (pickled batches,
    rows of 3072 bytes, R then G then B planes) and registers their md5s, so the real torchvision path runs."""
    import hashlib
    import pickle

    folder = tmp_path / datasets.CIFAR10.base_folder
    folder.mkdir()
    rng = np.random.default_rng(0)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    batches, written = {}, {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, 4).tolist()
        (folder / name).write_bytes(pickle.dumps({"data": data, "labels": labels}))
        batches[name], written[name] = hashlib.md5((folder / name).read_bytes()).hexdigest(), (data, labels)
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    monkeypatch.setattr(datasets.CIFAR10, "train_list", [[n, batches[n]] for n in batches if n != "test_batch"])
    monkeypatch.setattr(datasets.CIFAR10, "test_list", [["test_batch", batches["test_batch"]]])
    monkeypatch.setitem(datasets.CIFAR10.meta, "md5", hashlib.md5((folder / "batches.meta").read_bytes()).hexdigest())
    train = load_dataset("cifar10", tmp_path, download=False)
    test = load_dataset("cifar10", tmp_path, train=False, download=False)
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (4, 3, 32, 32) and train.classes == tuple(names)
    data, labels = written["data_batch_2"]
    first = torch.from_numpy(data[0].reshape(3, 32, 32))  # torchvision's row: the red plane, then green, then blue
    assert torch.equal(train.images[4], first) and train.labels[4].item() == labels[0]
