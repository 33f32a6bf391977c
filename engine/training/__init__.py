"""The compiled step, the host loop and the training phases (supervised, GAN)."""
