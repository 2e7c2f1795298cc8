"""Inception-v3 FID and KID (torch-fidelity's FID network, via torchmetrics): weights from a path or a verified
download, never unpickled unless their hash matches."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from dcgan_utils.engine.checkpoint import sha256
from dcgan_utils.engine.data import to_uint8


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
