"""Measuring samples: an MNIST classifier trained here (class coverage, Frechet distance) and Inception FID/KID."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance
from tqdm.auto import tqdm

from dcgan_utils.engine.checkpoint import load_checkpoint, save_checkpoint, sha256
from dcgan_utils.engine.data import ImageData, data_root, load_dataset, to_model_range, to_uint8
from dcgan_utils.engine.device import seed_everything

CONFIDENT = 0.9  # a sample counts as a clear digit when the classifier gives its class >= 0.9
CLASSIFIER_VERSION = 2  # in each cached classifier's name and file: bump it when the model or its training changes


class ImageClassifier(nn.Module):
    """A small CNN for (channels, side, side) images in [-1, 1]: MNIST digits (1, 28) reach about 99% test accuracy
    after two epochs on a CPU; CIFAR-10 (3, 32) far less, enough to tell classes apart."""

    num_features = 128  # size of the feature vector used for the Frechet distance (torchmetrics reads this)

    def __init__(self, channels: int = 1, side: int = 28, num_classes: int = 10):
        super().__init__()
        self.channels, self.side = channels, side
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, 32, side/2, side/2)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, 64, side/4, side/4)
            nn.Flatten(), nn.Linear(64 * (side // 4) ** 2, self.num_features), nn.ReLU(),  # (N, 128) features
        )
        self.head = nn.Linear(self.num_features, num_classes)  # (N, classes) logits

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, channels, H, W) images in [-1, 1], any H = W, -> (N, 128) features."""
        if x.shape[-1] != self.side:
            x = F.interpolate(x.float(), size=(self.side, self.side), mode="bilinear", antialias=True,
                              align_corners=False)
        return self.body(x.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class FeatureExtractor(nn.Module):
    """Wrap a classifier so torchmetrics' FID uses its features instead of Inception's."""

    def __init__(self, classifier: ImageClassifier):
        super().__init__()
        self.classifier = classifier
        self.num_features = classifier.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(x)


def mnist_classifier_path(root: str | os.PathLike | None = None, epochs: int = 2,
                          cache: str | os.PathLike | None = None) -> Path:
    """The file mnist_classifier() caches its weights in (benchmarks record its sha256 as their judge's identity)."""
    return Path(cache or data_root(root) / "classifiers") / f"mnist_cnn_{epochs}ep_v{CLASSIFIER_VERSION}.pt"


def mnist_classifier(root: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                     epochs: int = 2, retrain: bool = False, cache: str | os.PathLike | None = None,
                     progress: bool = True) -> ImageClassifier:
    """The course's MNIST classifier: loaded from the cache folder (default <data root>/classifiers/) if trained there
    before with this version of the recipe, else trained now (with a progress bar) and saved there.

    `.train_seconds` says how long its training took, on the machine that trained it (None for older files)."""
    path = mnist_classifier_path(root, epochs, cache)
    if not retrain and (cached := _load_classifier(ImageClassifier(1, 28), path, device)) is not None:
        return cached
    seed_everything(0)
    train = load_dataset("mnist", root, device=device)
    test = load_dataset("mnist", root, train=False, device=device)
    return _train_classifier(ImageClassifier(1, 28), train, test, epochs, path, device, flip=False, progress=progress)


def image_classifier(train: ImageData, test: ImageData, name: str, root: str | os.PathLike | None = None,
                     device: str | torch.device = "cpu", epochs: int = 10, retrain: bool = False,
                     progress: bool = True) -> ImageClassifier:
    """A classifier for any labelled image set (e.g. the CIFAR-10 subset), cached as <root>/classifiers/<name>_...pt.

    Trained with random horizontal flips; the test accuracy is saved with the weights and set as `.test_accuracy`.
    The file name holds the image shape, count and epochs, so 32x32 and 64x64 copies of one set never share a file.
    """
    shape = (train.channels, train.image_size, len(train.classes))
    path = (data_root(root) / "classifiers"
            / f"{name}_{shape[0]}x{shape[1]}px_{len(train)}img_{epochs}ep_v{CLASSIFIER_VERSION}.pt")
    if not retrain and (cached := _load_classifier(ImageClassifier(*shape), path, device)) is not None:
        return cached
    seed_everything(0)  # before the model is built: its initial weights are part of what is seeded
    model = ImageClassifier(*shape)
    return _train_classifier(model, train.to(device), test.to(device), epochs, path, device, flip=True,
                             progress=progress)


def _load_classifier(model: ImageClassifier, path: Path, device) -> ImageClassifier | None:
    """Weights and test accuracy from a cached classifier file; None when there is none of this recipe's version."""
    if not path.is_file():
        return None
    saved = load_checkpoint(path)
    if saved.get("version") != CLASSIFIER_VERSION:  # a file renamed by hand, or written by another recipe
        return None
    model.load_state_dict(saved["model"])
    model.test_accuracy = saved["test_accuracy"]
    model.train_seconds = saved.get("train_seconds")
    return model.to(device).eval()


def _train_classifier(model: ImageClassifier, train: ImageData, test: ImageData, epochs: int, path, device,
                      flip: bool, progress: bool = True) -> ImageClassifier:
    """Adam (1e-3), batches of 128, cross-entropy, under a progress bar (progress=False: none); save the weights with
    the test accuracy and the training time."""
    start = time.perf_counter()
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.Generator().manual_seed(0)
    bar = tqdm(total=epochs * train.num_batches(128), desc=f"training the classifier {Path(path).stem}",
               disable=not progress, leave=False)  # leave=False: once done, the bar gives way to the caller's summary
    for _ in range(epochs):
        for x, y in train.batches(128, order):
            if flip:  # a mirrored cat is a cat: doubles what a small training set teaches
                x = torch.where(torch.rand(len(x), 1, 1, 1, generator=order).to(x.device) < 0.5, x.flip(-1), x)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.update(1)
    bar.close()
    model.eval()
    predicted = classify(model, to_model_range(test.images).split(1000))[1]
    model.test_accuracy = predicted.eq(test.labels.cpu()).float().mean().item()
    model.train_seconds = time.perf_counter() - start
    save_checkpoint({"model": model.state_dict(), "test_accuracy": model.test_accuracy, "version": CLASSIFIER_VERSION,
                     "train_seconds": model.train_seconds}, path)
    return model


@torch.no_grad()
def classify(model: ImageClassifier, batches) -> tuple[torch.Tensor, torch.Tensor]:
    """Confidence and predicted class of every image in an iterable of image batches in [-1, 1]."""
    probs = [F.softmax(model(batch), dim=1).cpu() for batch in batches]
    confidence, label = torch.cat(probs).max(1)
    return confidence, label


def class_coverage(model: ImageClassifier, images: torch.Tensor, threshold: float = CONFIDENT) -> dict:
    """The mode-collapse meter: share of samples per class, and share classified with confidence >= threshold."""
    confidence, label = classify(model, images.split(1000))
    shares = torch.bincount(label, minlength=10).float() / len(label)
    return {"confident": (confidence >= threshold).float().mean().item(), "class_shares": shares.tolist(),
            "min_class_share": shares.min().item(), "classes_seen": int((shares > 0).sum())}


def class_accuracy(model: ImageClassifier, images: torch.Tensor, requested: torch.Tensor,
                   threshold: float = CONFIDENT) -> dict:
    """For a conditional G: per requested class, the share of its images the classifier puts in that class."""
    confidence, label = classify(model, images.split(1000))
    requested = requested.cpu()
    right = label.eq(requested)
    per_class = [right[requested == k].float().mean().item() for k in requested.unique().tolist()]
    return {"right": right.float().mean().item(), "right_and_confident": (right & (confidence >= threshold)).float()
            .mean().item(), "per_class": per_class, "worst_class": min(per_class)}


@torch.no_grad()
def nearest_neighbours(queries: torch.Tensor, references: torch.Tensor, chunk: int = 4096
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean pixel distance from each query image to its nearest reference image, and that image's index.

    Images are flattened; references are visited in chunks so 60,000 MNIST digits fit in memory.
    """
    q = queries.flatten(1).float()
    best = torch.full((len(q),), float("inf"), device=q.device)
    index = torch.zeros(len(q), dtype=torch.long, device=q.device)
    for first in range(0, len(references), chunk):
        r = references[first:first + chunk].flatten(1).float().to(q.device)
        dist, where = torch.cdist(q, r).min(1)
        closer = dist < best
        best = torch.where(closer, dist, best)
        index = torch.where(closer, where + first, index)
    return best, index


def frechet_distance(model: ImageClassifier, real: torch.Tensor, fake: torch.Tensor) -> float:
    """Frechet distance between real and generated images in the classifier's features (torchmetrics).

    Images of any side are resized to 28x28 first, which blurs them: compare generated 64x64 images with real
    images resized to 64x64 (load_dataset(..., image_size=64)), never with the 28x28 originals.
    """
    fid = FrechetInceptionDistance(feature=FeatureExtractor(model), normalize=True,
                                   input_img_size=(model.channels, model.side, model.side))
    fid = fid.to(real.device)
    for batch in real.split(1000):
        fid.update(batch, real=True)
    for batch in fake.split(1000):
        fid.update(batch, real=False)
    return fid.compute().item()


class InceptionUnavailable(RuntimeError):
    """Inception-v3 weights for FID could be neither loaded from a path nor downloaded."""


INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's release of the FID network
INCEPTION_SHA256 = "6726825d"  # published as the file name's suffix: the first 8 hex digits of its sha256


def _inception(path: str) -> nn.Module:
    """torch-fidelity's Inception-v3 (2048 pool features, via torchmetrics) from a weights file."""
    from torchmetrics.image.fid import NoTrainInceptionV3

    return NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=path)


class _FeaturesOnce(nn.Module):
    """A feature network shared by FID and KID: the batch both metrics hand it in turn goes through it once."""

    num_features = 2048  # torch-fidelity's pool features (torchmetrics would otherwise probe with a dummy image)

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None  # (the batch, its features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self._last is None or self._last[0] is not images:
            self._last = (images, self.net(images))
        return self._last[1]


def _download_inception(expected_sha256: str) -> Path:
    """torch-fidelity's weights file from torch's hub cache, downloaded there first when missing or damaged.

    torch.hub checks the sha256 prefix before it moves a download into place, so a cut-off or altered file is never
    kept (and never unpickled); one left by an earlier cut-off download is removed and fetched again.
    """
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if cached.is_file() and not sha256(cached).startswith(expected_sha256.lower()):
        cached.unlink()
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(fe.URL_INCEPTION_V3, str(cached), hash_prefix=expected_sha256.lower(),
                                           progress=False)
        except Exception as err:  # offline, cut off, or not the published file: the message says it all
            raise InceptionUnavailable(
                f"Inception-v3 weights for FID could not be downloaded ({type(err).__name__}: {err}). Download "
                f"{INCEPTION_FILE} from the torch-fidelity releases on a machine with a network "
                f"and pass weights_path= (or set DCGAN_INCEPTION_WEIGHTS)."
            ) from err
    return cached


def inception_scores(real: torch.Tensor, fake: torch.Tensor, weights_path: str | os.PathLike | None = None,
                     weights_sha256: str = INCEPTION_SHA256) -> dict:
    """FID and KID (mean and std over subsets) with Inception-v3, for RGB images in [-1, 1].

    The weights come from weights_path, else $DCGAN_INCEPTION_WEIGHTS, else torch-fidelity's download; when none
    works, InceptionUnavailable says what to do. torch-fidelity unpickles a weights file with weights_only=False
    (a pickle can run code), so a file is first checked against weights_sha256 (the published hash, or its prefix)
    and refused, unread, when it does not match. FID is biased at small sample sizes (below the 2,048 feature
    dimensions its covariance is not even full rank): compare FIDs only at equal sizes, never with papers' 50,000-
    sample numbers; KID is unbiased at any size.
    """
    path = weights_path or os.environ.get("DCGAN_INCEPTION_WEIGHTS")
    if path is not None and not Path(path).is_file():
        raise InceptionUnavailable(f"no Inception weights at {path}: give the path of torch-fidelity's {INCEPTION_FILE}")
    if path is None:
        path = _download_inception(weights_sha256)  # verified before it is kept, so never unpickled unless it matches
    elif not sha256(path).startswith(weights_sha256.lower()):
        raise InceptionUnavailable(
            f"{path} is not the expected Inception weights file (its sha256 does not start with {weights_sha256}); "
            f"it was not loaded, because loading it would unpickle arbitrary code. Download {INCEPTION_FILE} from "
            f"torch-fidelity's releases again"
        )
    inception = _FeaturesOnce(_inception(str(path)))  # Inception-v3 is most of the time: once per batch, not twice
    subset = min(1000, len(real), len(fake))
    # normalize=False: the images go in as uint8, what torch-fidelity's extractor takes (torchmetrics converts
    # floats only for its own built-in network, not for a module handed to it)
    fid = FrechetInceptionDistance(feature=inception, normalize=False).to(real.device)
    kid = KernelInceptionDistance(feature=inception, normalize=False, subset_size=subset).to(real.device)
    for images, is_real in ((real, True), (fake, False)):
        for batch in images.split(200):
            batch = to_uint8(batch)
            fid.update(batch, real=is_real)
            kid.update(batch, real=is_real)
    kid_mean, kid_std = kid.compute()
    return {"fid": fid.compute().item(), "kid": kid_mean.item(), "kid_std": kid_std.item()}


def inception_fid(real: torch.Tensor, fake: torch.Tensor, weights_path: str | os.PathLike | None = None) -> float:
    """FID alone (see inception_scores)."""
    return inception_scores(real, fake, weights_path)["fid"]
