"""Metrics on real MNIST: the classifier, class coverage as a mode-collapse meter, the Frechet distance."""

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dcgan_utils.engine.checkpoint import load_checkpoint, save_checkpoint, sha256
from dcgan_utils.engine.data import ImageData, load_cifar10, load_dataset, to_model_range, to_uint8
from dcgan_utils.evaluation.inception import InceptionUnavailable, inception_fid
from dcgan_utils.evaluation.metrics import (FrechetReference, class_accuracy, class_coverage,
                                            image_classifier, mnist_classifier, nearest_neighbours)
from dcgan_utils.evaluation import inception, metrics
from helpers import tiny_data


@pytest.fixture(scope="module")
def mnist_eval(mnist_root, mnist_judge):
    """The MNIST classifier shipped with the package (`.path`: its file) and the real test digits."""
    test = load_dataset("mnist", mnist_root, train=False)
    return mnist_judge, to_model_range(test.images), test.labels


def _accuracy(classifier, images, labels) -> float:
    with torch.no_grad():
        return classifier(images).argmax(1).eq(labels).float().mean().item()


def _never(what: str):
    def fail(*args, **kwargs):
        raise AssertionError(what)
    return fail


def test_the_shipped_classifier_is_accurate_on_real_digits(mnist_eval):
    classifier, images, labels = mnist_eval
    path = classifier.path
    assert classifier.shipped and path == metrics.SHIPPED_MNIST_CLASSIFIER
    assert path.name == f"mnist_cnn_2ep_v{metrics.CLASSIFIER_VERSION}.pt"  # the default two-epoch recipe, this version
    saved = load_checkpoint(path)
    assert saved["version"] == metrics.CLASSIFIER_VERSION and saved["test_accuracy"] > 0.97
    assert _accuracy(classifier, images[:2000], labels[:2000]) > 0.97  # measured here, not read from the file


def test_a_first_call_takes_the_shipped_classifier_with_neither_data_nor_training(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics, "load_dataset", _never("loaded MNIST although the package ships the classifier"))
    monkeypatch.setattr(metrics, "_train_classifier", _never("trained although the package ships the classifier"))
    shipped = metrics.shipped_mnist_classifier()
    assert shipped.shipped and shipped.path == metrics.SHIPPED_MNIST_CLASSIFIER
    assert sha256(shipped.path) == metrics.SHIPPED_MNIST_CLASSIFIER_SHA256
    # an empty data root; then one holding a file of another version, and one left by the first-run training of
    # the package before it shipped its own (no machine recorded): each gives way to the shipped classifier
    folder = tmp_path / "data" / "classifiers"
    older = {"model": shipped.state_dict(), "test_accuracy": 0.9, "version": metrics.CLASSIFIER_VERSION}
    for stale in (None, {**older, "version": metrics.CLASSIFIER_VERSION - 1}, older):
        if stale is not None:
            save_checkpoint(stale, folder / metrics.SHIPPED_MNIST_CLASSIFIER.name)
        first = mnist_classifier(tmp_path / "data")
        assert first.shipped and first.path == shipped.path
        assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), shipped.state_dict().values()))


@pytest.mark.parametrize("damage", ["changed", "missing"])
def test_a_damaged_or_missing_shipped_classifier_is_refused_with_what_to_do(tmp_path, monkeypatch, damage):
    copy = tmp_path / metrics.SHIPPED_MNIST_CLASSIFIER.name
    if damage == "changed":
        data = bytearray(metrics.SHIPPED_MNIST_CLASSIFIER.read_bytes())
        data[100_000] ^= 1  # one bit of one weight (inside archive/data/4: torch would load the file without a word)
        copy.write_bytes(bytes(data))
    monkeypatch.setattr(metrics, "SHIPPED_MNIST_CLASSIFIER", copy)
    with pytest.raises(metrics.ClassifierError, match="damaged or replaced" if damage == "changed" else "missing") as e:
        mnist_classifier(tmp_path / "empty")
    assert "mnist_classifier(retrain=True)" in str(e.value) and "git checkout" in str(e.value)  # the tests: a checkout


def test_a_classifier_trained_here_is_cached_with_its_version_and_preferred_to_the_shipped_one(
        mnist_root, tmp_path, monkeypatch):
    """The training path, on the first 4,096 training digits (64 steps) so that it runs in seconds."""
    real_load = load_dataset

    def first_digits(name, root=None, train=True, **kwargs):  # from the real data, whichever root is asked for
        data = real_load(name, mnist_root, train=train, **kwargs)
        n = 4096 if train else 2000
        return data.first(n)

    monkeypatch.setattr(metrics, "load_dataset", first_digits)
    cache = tmp_path / "data" / "classifiers"
    trained = mnist_classifier(mnist_root, cache=cache, progress=False)
    path = cache / f"mnist_cnn_2ep_v{metrics.CLASSIFIER_VERSION}.pt"
    assert trained.path == path and not trained.shipped and trained.train_seconds > 0
    saved = load_checkpoint(path)
    assert saved["version"] == metrics.CLASSIFIER_VERSION and saved["test_accuracy"] == trained.test_accuracy
    assert saved["machine"] == trained.trained_on and "torch" in saved["machine"]
    test = real_load("mnist", mnist_root, train=False)
    held_out = _accuracy(trained, to_model_range(test.images[2000:4000]), test.labels[2000:4000])
    assert held_out > 0.85 and abs(held_out - trained.test_accuracy) < 0.05  # it learned, and says how well

    monkeypatch.setattr(metrics, "_train_classifier", _never("trained again although the cache holds this version"))
    for again in (mnist_classifier(mnist_root, cache=cache), mnist_classifier(tmp_path / "data")):  # the data root's
        assert again.path == path and not again.shipped
        assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), trained.state_dict().values()))
    retrained = []
    monkeypatch.setattr(metrics, "_train_classifier", lambda model, *a, **k: retrained.append(model) or model)
    assert mnist_classifier(tmp_path / "data", retrain=True) is retrained[0]


def test_a_cached_classifier_of_another_version_is_trained_again(mnist_root, tmp_path, monkeypatch):
    stale = tmp_path / f"mnist_cnn_2ep_v{metrics.CLASSIFIER_VERSION}.pt"
    save_checkpoint({"model": {}, "test_accuracy": 1.0, "version": metrics.CLASSIFIER_VERSION - 1}, stale)
    trained = []
    monkeypatch.setattr(metrics, "_train_classifier", lambda model, *a, **k: trained.append(model) or model)
    monkeypatch.setattr(metrics, "load_dataset", lambda *a, **k: None)
    assert mnist_classifier(mnist_root, cache=tmp_path) is trained[0]


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
    half = FrechetReference(classifier, images[0::2])
    same = half.distance(images[1::2])  # interleaved halves of the test set
    threes = half.distance(images[labels == 3])
    noise = half.distance(torch.rand(2000, 1, 28, 28) * 2 - 1)
    assert same < 5 and threes > 100 * same and noise > 100 * same


def _frechet_by_formula(a: torch.Tensor, b: torch.Tensor) -> float:
    """|mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2)) of two feature sets, in float64 numpy (not torchmetrics):
    tr (C_a C_b)^(1/2) is the sum of the square roots of the eigenvalues of S C_b S, S the square root of C_a."""
    a, b = a.double().numpy(), b.double().numpy()
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(w.clip(0))) @ v.T
    cross = np.sqrt(np.linalg.eigvalsh(root_a @ cov_b @ root_a).clip(0)).sum()
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def test_a_frechet_reference_computes_the_real_features_once_and_gives_the_formulas_distance_to_each_set(
        mnist_eval, monkeypatch):
    classifier, images, labels = mnist_eval
    real = images[0::2]
    sets = {"the other half": images[1::2], "threes": images[labels == 3],
            "noise": torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1}
    with torch.no_grad():
        feats = {name: torch.cat([classifier.features(x) for x in group.split(metrics.EVAL_BATCH)])
                 for name, group in {"real": real, **sets}.items()}
        expected = {name: _frechet_by_formula(feats["real"], feats[name]) for name in sets}
    seen = []
    features = classifier.features
    monkeypatch.setattr(classifier, "features", lambda x: seen.append(len(x)) or features(x))
    reference = FrechetReference(classifier, real)
    assert sum(seen) == len(real)
    got = {name: reference.distance(fake) for name, fake in sets.items()}  # one after another: none leaks into the next
    assert sum(seen) == len(real) + sum(len(fake) for fake in sets.values())  # the real digits went through once
    for name in sets:
        assert got[name] == pytest.approx(expected[name], rel=1e-4), name


def test_frechet_distance_of_64x64_images_against_real_images_of_the_same_size(mnist_eval, mnist_root):
    classifier, images, _ = mnist_eval
    big = to_model_range(load_dataset("mnist", mnist_root, train=False, image_size=64).images)
    same_size = FrechetReference(classifier, big[0::2]).distance(big[1::2])
    assert same_size < 5
    assert FrechetReference(classifier, images[0::2]).distance(big[1::2]) > 10 * same_size  # resizing blurs: compare like with like


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


@pytest.mark.slow  # trains a classifier on 5,000 images of the subset (8 s at one thread): not in `make floors`
def test_a_cifar10_classifier_learns_the_subset_and_is_cached(cifar_subset, tmp_path):
    whole = load_dataset("folder", cifar_subset)  # loaded in a seeded shuffle: half of it holds about 500 per class
    train = whole.first(5000)
    test = load_dataset("folder", cifar_subset.parent / "test")
    model = image_classifier(train, test, "cifar10", root=tmp_path, epochs=2)  # 45% at one thread (51% on all 10,000)
    assert model.test_accuracy > 0.35  # chance is 10%
    (cached,) = (tmp_path / "classifiers").glob("cifar10_3x32px_*img_2ep_v2.pt")
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


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    """torch-fidelity's own Inception-v3, built with random weights (no download) and saved as a weights file."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with pytest.MonkeyPatch.context() as patch:  # skip the download and the loading of published weights
        patch.setattr(fe, "load_state_dict_from_url", lambda *a, **k: None)
        patch.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None)
        torch.manual_seed(0)
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    for module in net.modules():  # He initialisation: features that differ between images (PyTorch's default
        if isinstance(module, torch.nn.Conv2d):  # init shrinks them to ~1e-8 through the 94 layers)
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(net.state_dict(), path)
    return path


def test_inception_fid_and_kid_run_end_to_end_on_torch_fidelitys_network(random_inception):
    """The real extractor (which takes uint8 only; on the old code torchmetrics handed it floats and it raised),
    checked against the Frechet distance computed directly from its features in the 12-sample space: with centred
    features X_a, X_b (n x 2048, the same n), tr sqrt(C_a C_b) is the sum of the singular values of X_a X_b^T
    divided by n - 1 (the nonzero eigenvalues of C_a C_b are those of (X_a X_b^T)(X_a X_b^T)^T / (n - 1)^2), where
    torchmetrics takes the eigenvalues of the 2048 x 2048 product."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    g = torch.Generator().manual_seed(0)
    real = torch.rand(12, 3, 32, 32, generator=g) * 2 - 1  # few: each pass through Inception-v3 costs seconds on a CPU
    other = (torch.rand(12, 3, 32, 32, generator=g) * 2 - 1) * 0.2 - 0.7
    sha = sha256(random_inception)
    same = inception.inception_scores(real, real, random_inception, weights_sha256=sha)
    apart = inception.inception_scores(real, other, random_inception, weights_sha256=sha)
    net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], str(random_inception)).eval()
    with torch.no_grad():
        a, b = (net(to_uint8(x))[0].double().numpy() for x in (real, other))
    xa, xb, n = a - a.mean(0), b - b.mean(0), len(a)
    traces = ((xa ** 2).sum() + (xb ** 2).sum() - 2 * np.linalg.svd(xa @ xb.T, compute_uv=False).sum()) / (n - 1)
    direct = ((a.mean(0) - b.mean(0)) ** 2).sum() + traces
    assert apart["fid"] == pytest.approx(direct, rel=0.02) and apart["fid"] > 0
    assert abs(same["fid"]) < 1e-6 * apart["fid"]
    assert apart["kid"] > 0 and abs(same["kid"]) < 1e-2 * apart["kid"] and apart["kid_std"] >= 0


def test_fid_and_kid_send_each_image_through_the_feature_network_once(tmp_path, monkeypatch):
    """FID and KID each asked the network for every batch: twice the Inception time (most of the whole)."""
    seen = []

    class Pixels(torch.nn.Module):  # a stand-in that keeps the first 2,048 pixel values as "features"
        def forward(self, images):
            seen.append(len(images))
            return images.flatten(1)[:, :2048].double()

    monkeypatch.setattr(inception, "_inception", lambda path: Pixels())
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"stand-in")
    g = torch.Generator().manual_seed(0)
    real, fake = torch.rand(400, 3, 32, 32, generator=g) * 2 - 1, torch.rand(30, 3, 32, 32, generator=g) - 1
    torch.manual_seed(1)  # KID draws its subsets from the global generator
    scores = inception.inception_scores(real, fake, weights, weights_sha256=sha256(weights))
    assert seen == [200, 200, 30]  # each batch (real: two of 200 alike in shape, fake: 30) once, no probe image

    class EachTime(torch.nn.Module):  # no sharing: each metric asks the network itself (as before the fix)
        num_features = 2048

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, images):
            return self.net(images)

    monkeypatch.setattr(inception, "_FeaturesOnce", EachTime)
    torch.manual_seed(1)
    assert inception.inception_scores(real, fake, weights, weights_sha256=sha256(weights)) == scores
    assert len(seen) == 3 + 6 and scores["fid"] > 0 and scores["kid"] > 0  # the same scores from 6 passes


def test_an_inception_file_with_the_wrong_hash_is_refused_before_it_is_unpickled(random_inception, monkeypatch):
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("the file was unpickled"))
    with pytest.raises(InceptionUnavailable, match="sha256 does not start with 6726825d.*was not loaded"):
        inception.inception_scores(torch.zeros(4, 3, 32, 32), torch.zeros(4, 3, 32, 32), random_inception)


def test_training_a_classifier_shows_progress_and_records_its_time_unless_asked_not_to(tmp_path, capsys, monkeypatch):
    # the course's classifier once trained for over a minute with no output at all.
    # tqdm redraws at most every 0.1 s, and a bar with leave=False is wiped at close: two quick batches may never show
    # "2/2" (CI failed so). Redrawing at every update makes what the bar shows independent of the machine's speed.
    monkeypatch.setattr(metrics, "tqdm", functools.partial(metrics.tqdm, mininterval=0, miniters=1))
    g = torch.Generator().manual_seed(0)
    small = ImageData(torch.randint(0, 256, (256, 1, 28, 28), dtype=torch.uint8, generator=g),
                      torch.randint(0, 10, (256,), generator=g), tuple("0123456789"))
    model = image_classifier(small, small, "shown", root=tmp_path, epochs=1)
    err = capsys.readouterr().err
    assert "training the classifier shown_1x28px_256img_1ep" in err and "2/2" in err  # 2 batches of 128
    assert model.train_seconds > 0
    loaded = image_classifier(small, small, "shown", root=tmp_path, epochs=1)
    assert loaded.train_seconds == model.train_seconds and capsys.readouterr().err == ""  # loading: no bar
    image_classifier(small, small, "quiet", root=tmp_path, epochs=1, progress=False)
    assert capsys.readouterr().err == ""
