"""Which device a run trains on: ``auto``, ``cpu``, ``gpu`` or ``tpu``.

``select_device`` turns the plan's (or ``--device``'s) name into a
``jax.Device`` and fails with an ``EngineError`` naming the field when the
device is not there.  ``describe_device`` gives the words stored in a
RunResult.  Data placement and compilation live elsewhere.
"""

from __future__ import annotations

import jax

from advisor.contract.errors import EngineError

# Preference order for "auto": the fastest kind of chip JAX can see.
_AUTO_ORDER = ("tpu", "gpu", "cpu")


def _devices_of(platform: str) -> list[jax.Device]:
    try:
        return jax.local_devices(backend=platform)  # this process's: a multi-host run has others
    except RuntimeError:  # jax raises this when no backend of that kind is initialised
        return []


def select_device(name: str) -> jax.Device:
    """The first device of the named kind; ``auto`` takes TPU, then GPU, then CPU.

    Raises:
        EngineError: the named kind of device is not available to JAX.
    """
    if name == "auto":
        for platform in _AUTO_ORDER:
            found = _devices_of(platform)
            if found:
                return found[0]
    found = _devices_of(name)
    if not found:
        seen = sorted({d.platform for d in jax.devices()})
        raise EngineError(
            f"device: {name!r} is not available to JAX (it sees {', '.join(seen)}); "
            "use --device auto or cpu"
        )
    return found[0]


def describe_device(device: jax.Device) -> str:
    """A short text such as 'cpu (TFRT_CPU_0)' or 'gpu (NVIDIA H200)'."""
    kind = getattr(device, "device_kind", "") or str(device)
    return f"{device.platform} ({kind})"


def is_cpu(device: jax.Device) -> bool:
    """Whether the device is a CPU (loop form and kernels are chosen per backend)."""
    return device.platform == "cpu"
