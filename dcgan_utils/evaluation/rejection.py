"""Discriminator rejection sampling (Azadi et al. 2019): keep a generated image with a probability that grows with how
real the trained D finds it; for a D near its optimum, the kept images follow p_data more closely than G's draws.

For a BCE-trained D near its optimum, the logit is log p_data(x) / p_g(x) (the optimal D is
p_data / (p_data + p_g)). Rejection sampling would keep x with probability p_data / (M p_g) = exp(logit - logit*),
with logit* the largest logit (estimated as the largest seen so far); Azadi et al. soften that into
sigmoid(F(x)), F(x) = logit - logit* - log(1 - exp(logit - logit* - eps)) - gamma, with gamma a percentile of F over
each batch that sets how many are kept. Their D is also recalibrated on held-out data first; this one is used as
trained (BatchNorm in inference mode), which the course states wherever it reports a result of this sampler.
Known limits: D scores under the run's autocast (bf16 on most CPUs here), so near the largest logit many draws tie;
a run with an EMA generator draws from the EMA copy, while D's logit describes the training generator.
"""

from __future__ import annotations

import torch

from dcgan_utils.engine.config import BCE_KINDS
from dcgan_utils.engine.run_state import GANState, generate

EPS = 1e-6  # keeps log(1 - exp(.)) finite at the largest logit (Azadi et al.'s epsilon)


def acceptance(logits: torch.Tensor, best: float, percentile: float) -> torch.Tensor:
    """Probability of keeping each image of a batch, from D's logits (N,), the largest logit seen and gamma's
    percentile (0-100) of F over this batch."""
    gap = (logits - best).clamp(max=0)  # logit - logit* <= 0
    f = gap - torch.log1p(-torch.exp(gap - EPS))
    return torch.sigmoid(f - torch.quantile(f, percentile / 100))


@torch.no_grad()
def rejection_sample(state: GANState, n: int, percentile: float = 80.0, batch: int = 1000, burn_in: int = 10000,
                     seed: int = 1) -> tuple[torch.Tensor, float]:
    """n images in [-1, 1] kept by discriminator rejection sampling, and the share of draws kept.

    burn_in draws first set the largest logit (Azadi et al.'s burn-in); it keeps rising as larger logits appear.
    """
    cfg = state.config
    if cfg.num_classes:
        raise ValueError("rejection_sample draws from an unconditional run (num_classes=0); this run is conditional")
    if cfg.loss not in BCE_KINDS or cfg.minibatch_std or cfg.real_label != 1:
        raise ValueError(f"rejection sampling reads D's logit as log p_data/p_g, which holds for a BCE loss "
                         f"{BCE_KINDS} with real label 1 and a D that scores one image at a time (minibatch_std off); "
                         f"this run has loss {cfg.loss!r}, real_label {cfg.real_label}, minibatch_std "
                         f"{cfg.minibatch_std}")
    noise = torch.Generator().manual_seed(seed)
    was_training = state.D.training
    state.D.eval()

    def draw() -> tuple[torch.Tensor, torch.Tensor]:
        images = generate(state, torch.randn(batch, cfg.latent_dim, generator=noise))
        with state.autocast():
            return images.cpu(), state.D(images).float().cpu()

    try:
        best = max(draw()[1].max().item() for _ in range(max(1, burn_in // batch)))
        kept, accepted, drawn = [], 0, 0
        while accepted < n:
            images, logits = draw()
            drawn += batch
            best = max(best, logits.max().item())
            keep = torch.rand(batch, generator=noise) < acceptance(logits, best, percentile)
            kept.append(images[keep])
            accepted += len(kept[-1])
    finally:
        state.D.train(was_training)
    return torch.cat(kept)[:n], accepted / drawn
