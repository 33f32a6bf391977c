"""Data parallelism over several devices with ``jax.sharding``: one ``data`` mesh axis.

``placement_for(plan, device)`` turns the plan's ``devices`` (None = every
device of the chosen kind, across all processes of a multi-host run) into a
``Placement``: a ``Mesh`` over those devices with one axis ``data``, the
replicated sharding parameters, optimizer state and device-resident data take,
and the batch sharding.  Training stays one ``jax.jit`` program (no ``pmap``):
inputs are committed to the mesh, each step's gathered batch is constrained to
``P("data")`` and the new state to ``P()``, and XLA's SPMD partitioner inserts
the gradient all-reduce.  The global batch size and the learning rate are the
plan's whatever the device count: each device computes ``batch_size / n`` rows
of one global-batch mean.  A batch the device count does not divide is sharded
unevenly: the partitioner pads the short shard inside the program and leaves
the padding out of every reduction, so no example is added or dropped (the
8-device test uses such a batch).  One device gives a ``Placement`` whose
constraints are no-ops, so the single-device program is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from advisor.contract.errors import EngineError

AXIS = "data"


@dataclass(frozen=True)
class Placement:
    """Where a run's arrays live: one device, or a ``data`` mesh over several."""

    devices: tuple[jax.Device, ...]
    mesh: Mesh | None

    @property
    def n_devices(self) -> int:
        return len(self.devices)

    @property
    def platform(self) -> str:
        return self.devices[0].platform

    @property
    def replicated(self) -> jax.Device | NamedSharding:
        """What ``jax.device_put`` takes for parameters, state and device-resident data."""
        return self.devices[0] if self.mesh is None else NamedSharding(self.mesh, P())

    @property
    def batch(self) -> jax.Device | NamedSharding:
        """The sharding of a batch: split over ``data`` along its first axis."""
        return self.devices[0] if self.mesh is None else NamedSharding(self.mesh, P(AXIS))

    def put(self, tree):
        """``tree`` replicated on every device of the placement (each process gives its copy)."""
        if self.mesh is None:
            return jax.device_put(tree, self.devices[0])
        if jax.process_count() == 1:
            return jax.device_put(tree, self.replicated)
        sharding = self.replicated
        return jax.tree.map(
            lambda a: jax.make_array_from_callback(
                np.shape(a), sharding, lambda i: np.asarray(a)[i]
            ),
            tree,
        )

    def local(self, tree):
        """``tree``'s replicated arrays as this process's copy, which ``jax.device_get`` can read.

        A replicated array over several processes is not fully addressable, so
        the host cannot fetch it as a whole; every process holds all of it.
        """
        if jax.process_count() == 1:
            return tree
        return jax.tree.map(
            lambda a: a.addressable_data(0) if isinstance(a, jax.Array) else a, tree
        )

    def constrain_batch(self, batch):
        """Inside jit: the batch's leaves split along their first axis over ``data``."""
        if self.mesh is None:
            return batch
        return jax.lax.with_sharding_constraint(batch, self.batch)

    def constrain_state(self, state):
        """Inside jit: the state replicated, so every step's output matches its input."""
        if self.mesh is None:
            return state
        return jax.lax.with_sharding_constraint(state, self.replicated)


def devices_of(platform: str, count: int | None) -> tuple[jax.Device, ...]:
    """``count`` devices of ``platform`` (None = all of them, every process's in a multi-host run).

    Raises:
        EngineError: fewer devices than ``count`` are there.
    """
    found = [d for d in jax.devices() if d.platform == platform]
    if count is None:
        return tuple(found)
    if count > len(found):
        raise EngineError(
            f"devices: the plan asks for {count} {platform} devices but JAX sees {len(found)}; "
            f"lower devices to at most {len(found)} or leave it unset to use them all"
        )
    if jax.process_count() > 1 and count != len(found):
        raise EngineError(
            f"devices: a run of {jax.process_count()} processes trains on all "
            f"{len(found)} devices; leave devices unset"
        )
    return tuple(found[:count])


def placement_for(devices: int | None, device: jax.Device) -> Placement:
    """The placement of a run on ``device``'s kind: ``devices`` of them, None = all."""
    chosen = devices_of(device.platform, devices)
    if len(chosen) <= 1:
        return Placement((device,), None)
    return Placement(chosen, Mesh(np.array(chosen), (AXIS,)))


def single(device: jax.Device) -> Placement:
    """The one-device placement (what every run had before several devices)."""
    return Placement((device,), None)


@dataclass(frozen=True)
class TrialPlacement:
    """A vmapped population's trials split over a ``data`` mesh: trial axis 0 sharded.

    Each device trains its share of the trials on the whole (replicated) data,
    so N devices run N trials at once; ``make_train_epoch`` takes it as its
    ``placement`` (batches stay whole, the state keeps its trial sharding).
    """

    mesh: Mesh

    @property
    def trials(self) -> NamedSharding:
        return NamedSharding(self.mesh, P(AXIS))

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, P())

    def put_trials(self, tree):
        """``tree`` (every leaf with a leading trial axis) split over the devices."""
        return jax.device_put(tree, self.trials)

    def constrain_batch(self, batch):
        return batch

    def constrain_state(self, state):
        return jax.lax.with_sharding_constraint(state, self.trials)


def trial_placement(devices: tuple[jax.Device, ...]) -> TrialPlacement | None:
    """The trial mesh over ``devices``; None for one device (nothing to split)."""
    return TrialPlacement(Mesh(np.array(devices), (AXIS,))) if len(devices) > 1 else None
