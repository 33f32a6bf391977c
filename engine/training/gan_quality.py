"""How good a GAN's samples are, without a downloaded network: PCA Fréchet distance and diversity.

The features are the top ``COMPONENTS`` principal components of the real
training examples (fitted once per run, numpy only).  ``val_fd`` is the
Fréchet distance between Gaussians fitted to the features of generated and of
real validation examples: the statistic of FID (Heusel et al. 2017) on a
feature space learned from the data itself instead of Inception, so it needs
no labels and no download, and it judges the match of means and covariances
along the data's main directions of variation, not perceptual quality.  Its
values compare runs on one dataset, not datasets.  ``val_diversity`` is the
mean pairwise feature distance of generated examples over that of real ones:
near 1 the samples spread like the data; far below 1 they crowd on a few
modes (mode collapse, Salimans et al. 2016; Goodfellow 2016, sec. 5.1.1).
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

COMPONENTS = 16  # principal components kept; 8x8 digits keep ~80 % of their variance in 16
SAMPLES = 512  # generated and real examples compared each epoch


class QualityProbe:
    """Features fitted on real training examples; scores generated examples against real ones."""

    def __init__(self, real_train: np.ndarray, real_val: np.ndarray):
        flat = np.asarray(real_train, np.float64).reshape(len(real_train), -1)
        self.mean = flat.mean(axis=0)
        _, _, vt = np.linalg.svd(flat - self.mean, full_matrices=False)
        self.components = vt[: min(COMPONENTS, vt.shape[0])]
        self.real = self.features(np.asarray(real_val)[:SAMPLES])
        self.real_spread = mean_pairwise_distance(self.real)

    def features(self, x: np.ndarray) -> np.ndarray:
        """``[N, ...]`` examples -> ``[N, COMPONENTS]`` principal-component coordinates."""
        flat = np.asarray(x, np.float64).reshape(len(x), -1)
        return (flat - self.mean) @ self.components.T

    def scores(self, fake: np.ndarray) -> dict[str, float]:
        """``val_fd`` and ``val_diversity`` of generated examples ``[N, ...]``."""
        feats = self.features(fake)
        if not np.all(np.isfinite(feats)):
            return {"val_fd": float("nan"), "val_diversity": float("nan")}
        return {
            "val_fd": frechet_distance(feats, self.real),
            "val_diversity": mean_pairwise_distance(feats) / max(self.real_spread, 1e-12),
        }


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2) of Gaussians fitted to rows."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    root = np.real(root)  # round-off gives a tiny imaginary part
    value = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2.0 * root)
    return float(max(value, 0.0))


def mean_pairwise_distance(feats: np.ndarray) -> float:
    """Mean Euclidean distance over all pairs of distinct rows."""
    n = len(feats)
    if n < 2:
        return 0.0
    sq = np.sum(feats**2, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * feats @ feats.T, 0.0)
    return float(np.sum(np.sqrt(d2)) / (n * (n - 1)))


def sample_grid(samples: np.ndarray, path, title: str) -> None:
    """Save up to 64 examples ``[N, H, W, C]`` (or flat) as one PNG grid, mode 0644 (umask 022)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from engine.outputs.curves import save_figure

    samples = np.asarray(samples, np.float32)[:64]
    if samples.ndim == 2:  # tables: show each row as a one-row strip
        samples = samples[:, None, :, None]
    lo, hi = float(np.min(samples)), float(np.max(samples))  # one scale for the whole grid
    side = int(np.ceil(np.sqrt(len(samples))))
    fig, axes = plt.subplots(side, side, figsize=(side, side))
    tiles = list(samples) + [None] * (side * side - len(samples))
    for ax, image in zip(np.ravel(axes), tiles, strict=True):
        ax.axis("off")
        if image is not None:
            channels = image.shape[-1]
            shown = image[..., 0] if channels == 1 else image[..., :3]
            shown = np.clip((shown - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
            ax.imshow(shown, cmap="gray_r" if channels == 1 else None, vmin=0.0, vmax=1.0)
    fig.suptitle(title, fontsize=8)
    try:
        save_figure(fig, path)
    finally:
        plt.close(fig)
