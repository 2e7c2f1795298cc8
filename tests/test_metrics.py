"""Metrics on real MNIST: the classifier, class coverage as a mode-collapse meter, the Frechet distance."""

import pytest
import torch
import torch.nn.functional as F

from dcgan_utils.checkpoint import load_checkpoint
from dcgan_utils.data import ImageData, data_root, load_cifar10, load_dataset, to_model_range
from dcgan_utils.metrics import (InceptionUnavailable, class_accuracy, class_coverage, frechet_distance, image_classifier,
                                 inception_fid, mnist_classifier, nearest_neighbours)
from helpers import tiny_data


@pytest.fixture(scope="module")
def mnist_eval(mnist_root):
    classifier = mnist_classifier(mnist_root)  # trained once (about 40 s on 2 cores), then cached
    test = load_dataset("mnist", mnist_root, train=False)
    return classifier, to_model_range(test.images), test.labels


def test_classifier_is_accurate_and_cached(mnist_eval, mnist_root):
    classifier, images, labels = mnist_eval
    path = data_root(mnist_root) / "classifiers" / "mnist_cnn_2ep.pt"  # the default two-epoch classifier
    saved = load_checkpoint(path)
    assert saved["test_accuracy"] > 0.97
    with torch.no_grad():
        assert classifier(images[:2000]).argmax(1).eq(labels[:2000]).float().mean() > 0.97


def test_coverage_of_real_digits_and_of_a_collapsed_generator(mnist_eval):
    classifier, images, labels = mnist_eval
    real = class_coverage(classifier, images)
    assert real["confident"] > 0.9 and real["min_class_share"] > 0.08 and real["classes_seen"] == 10
    assert abs(sum(real["class_shares"]) - 1) < 1e-5
    collapsed = class_coverage(classifier, images[labels == 3][:500])  # a generator that only draws 3s
    assert collapsed["min_class_share"] == 0 and collapsed["class_shares"][3] > 0.95
    noise = class_coverage(classifier, torch.rand(500, 1, 28, 28) * 2 - 1)
    assert noise["confident"] < real["confident"]


def test_frechet_distance_small_between_real_sets_large_for_collapse_and_noise(mnist_eval):
    classifier, images, labels = mnist_eval
    same = frechet_distance(classifier, images[0::2], images[1::2])  # interleaved halves of the test set
    threes = frechet_distance(classifier, images[0::2], images[labels == 3])
    noise = frechet_distance(classifier, images[0::2], torch.rand(2000, 1, 28, 28) * 2 - 1)
    assert same < 5 and threes > 100 * same and noise > 100 * same


def test_frechet_distance_of_64x64_images_against_real_images_of_the_same_size(mnist_eval, mnist_root):
    classifier, images, _ = mnist_eval
    big = to_model_range(load_dataset("mnist", mnist_root, train=False, image_size=64).images)
    same_size = frechet_distance(classifier, big[0::2], big[1::2])
    assert same_size < 5
    assert frechet_distance(classifier, images[0::2], big[1::2]) > 10 * same_size  # resizing blurs: compare like with like


def test_inception_fid_without_weights_says_what_to_do(tmp_path):
    real = torch.rand(4, 3, 32, 32) * 2 - 1
    with pytest.raises(InceptionUnavailable, match="no Inception weights at"):
        inception_fid(real, real, weights_path=tmp_path / "missing.pth")
    with pytest.raises(InceptionUnavailable, match="could not be downloaded.*weights_path="):
        inception_fid(real, real)  # the test process has no network


def test_class_accuracy_of_real_digits_asked_for_their_own_label_and_for_another(mnist_eval):
    classifier, images, labels = mnist_eval
    right = class_accuracy(classifier, images[:2000], labels[:2000])
    assert right["right"] > 0.97 and right["worst_class"] > 0.9 and len(right["per_class"]) == 10
    wrong = class_accuracy(classifier, images[:2000], (labels[:2000] + 1) % 10)  # a G that ignores its label
    assert wrong["right"] < 0.05 and wrong["right_and_confident"] <= wrong["right"]


@pytest.mark.parametrize("chunk", [7, 4096])
def test_nearest_neighbours_match_a_brute_force_search(chunk):
    g = torch.Generator().manual_seed(0)
    refs, queries = torch.rand(50, 1, 6, 6, generator=g), torch.rand(9, 1, 6, 6, generator=g)
    queries[:3] = refs[[48, 0, 21]]  # exact copies, across chunk boundaries
    dist, index = nearest_neighbours(queries, refs, chunk=chunk)
    brute = ((queries[:, None] - refs[None]) ** 2).flatten(2).sum(-1)
    assert torch.equal(index, brute.argmin(1))
    assert torch.allclose(dist, brute.min(1).values.sqrt(), atol=1e-4)
    assert index[:3].tolist() == [48, 0, 21] and dist[:3].max() < 1e-3


def test_a_cifar10_classifier_learns_the_subset_and_is_cached(cifar_subset, tmp_path):
    train = load_dataset("folder", cifar_subset)
    test = load_dataset("folder", cifar_subset.parent / "test")
    model = image_classifier(train, test, "cifar10", root=tmp_path, epochs=2)
    assert model.test_accuracy > 0.35  # chance is 10%
    (cached,) = (tmp_path / "classifiers").glob("cifar10_3x32px_*img_2ep.pt")
    again = image_classifier(train, test, "cifar10", root=tmp_path, epochs=2)
    assert again.test_accuracy == model.test_accuracy and cached.is_file()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_classifiers_for_two_image_sizes_of_one_set_do_not_share_a_cache_file(tmp_path):
    small = tiny_data(256, channels=3, size=32)
    large = ImageData(F.interpolate(small.images.float(), size=64).to(torch.uint8), small.labels, small.classes)
    first = image_classifier(small, small, "set", root=tmp_path, epochs=1)
    second = image_classifier(large, large, "set", root=tmp_path, epochs=1)  # loading the 32x32 file here would fail
    assert (first.side, second.side) == (32, 64)
    assert len(list((tmp_path / "classifiers").glob("set_*.pt"))) == 2
    assert image_classifier(large, large, "set", root=tmp_path, epochs=1).side == 64  # and the 64x64 one is reused


def test_load_cifar10_falls_back_to_the_folder_copy(cifar_subset):
    train, test, source = load_cifar10(root=cifar_subset.parent.parent, subset=cifar_subset.parent)
    assert (train.channels, train.image_size, len(train.classes)) == (3, 32, 10)
    assert len(test) < len(train) and "ImageFolder copy" in source


def test_inception_scores_plumbing_with_a_stand_in_feature_network(monkeypatch):
    import dcgan_utils.metrics as metrics

    class Pool(torch.nn.Module):  # stands in for Inception: 2048 features that torchmetrics can compute FID/KID from
        def forward(self, x):
            x = x.float() / 255 if x.dtype == torch.uint8 else x
            return torch.nn.functional.adaptive_avg_pool2d(x, 16).flatten(1)[:, :768].repeat(1, 3)[:, :2048]

    monkeypatch.setattr(metrics, "_inception", lambda path: Pool())
    g = torch.Generator().manual_seed(0)
    real = torch.rand(300, 3, 32, 32, generator=g) * 2 - 1
    same = torch.rand(300, 3, 32, 32, generator=g) * 2 - 1
    dark = same * 0.2 - 0.7
    near, far = metrics.inception_scores(real, same), metrics.inception_scores(real, dark)
    assert far["fid"] > 3 * near["fid"]  # FID of 300 samples carries a sample-size bias; KID is unbiased:
    assert far["kid"] > 10 * abs(near["kid"]) and far["kid_std"] >= 0
