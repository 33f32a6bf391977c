"""``curves.png``: the learning curves of a run, drawn with matplotlib's Agg backend.

One panel for the losses (train and validation, or the GAN's two players), one
per recorded metric (train and validation), and one for the learning rate with
the global gradient norm beside it, so a reader sees overfitting, plateaus and
rate drops at a glance.  The file is written atomically.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_LOSS_SERIES = (("loss", "val_loss"), ("d_loss", "g_loss"))


def _panels(series: dict[str, list], metrics: list[str]) -> list[tuple[str, list[str]]]:
    panels = []
    for pair in _LOSS_SERIES:
        present = [name for name in pair if name in series]
        if present:
            panels.append(("loss", present))
    for metric in metrics:
        present = [name for name in (metric, f"val_{metric}") if name in series]
        if present:
            panels.append((metric, present))
    if "lr" in series:
        panels.append(("learning rate", ["lr"]))
    return panels


def plot_curves(
    path: str | Path,
    epochs: list[int],
    series: dict[str, list],
    metrics: list[str],
    title: str = "",
) -> Path:
    """Draw the learning curves of ``series`` into the PNG file ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    panels = _panels(series, metrics)
    fig = Figure(figsize=(4.2 * len(panels), 3.4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (label, names) in zip(axes, panels, strict=True):
        for name in names:
            values = [float("nan") if v is None else v for v in series[name]]
            ax.plot(
                epochs, values, marker="o" if len(epochs) < 30 else None, markersize=3, label=name
            )
        ax.set_xlabel("epoch")
        ax.set_title(label)
        if label == "learning rate":
            ax.set_yscale("log")
            if "grad_norm" in series:
                twin = ax.twinx()
                twin.plot(
                    epochs,
                    [float("nan") if v is None else v for v in series["grad_norm"]],
                    color="tab:red",
                    alpha=0.6,
                    label="grad_norm",
                )
                twin.set_ylabel("grad norm", color="tab:red")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def save_figure(fig, path: str | Path) -> Path:
    """Save a matplotlib figure as PNG through a temporary file (nothing half-written)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=100)
        umask = os.umask(0)  # mkstemp makes 0600; give the mode a plain open() would
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
