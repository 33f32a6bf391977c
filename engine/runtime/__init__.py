"""How and where the engine computes: registry, compiler, devices, sharding, signals."""
