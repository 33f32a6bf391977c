"""The files a run writes: run folder, live logs, curves, checkpoints."""
