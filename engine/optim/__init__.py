"""What training minimises and measures, and how: losses, metrics, optimizers, schedules."""
