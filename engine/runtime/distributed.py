"""Several processes (hosts) training one plan together: ``jax.distributed.initialize``.

``initialize(Cluster(...))`` must run before JAX touches a device.  Each process
then sees every process's devices in ``jax.devices()`` and its own in
``jax.local_devices()``; ``engine.runtime.sharding`` builds the ``data`` mesh over all of
them, so one global batch is split over every device of every host and the
gradient all-reduce crosses hosts inside the one jitted step.  On CPU the
cross-process collectives are gloo's (jax 0.10.2 ships them in jaxlib; the
2-process test runs them on localhost).  With no coordinator given,
``jax.distributed.initialize()`` finds the cluster itself (Slurm, Open MPI, a
TPU VM, Kubernetes).
"""

from __future__ import annotations

from dataclasses import dataclass

from advisor.contract.errors import EngineError, InputError


@dataclass(frozen=True)
class Cluster:
    """How this process joins the others; all None = let JAX detect the cluster."""

    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    auto: bool = False  # initialize with JAX's cluster detection even when nothing is given

    @property
    def wanted(self) -> bool:
        return self.auto or any(
            v is not None for v in (self.coordinator, self.num_processes, self.process_id)
        )


_started: list[Cluster] = []


def initialize(cluster: Cluster) -> bool:
    """Join the cluster when one is asked for; returns whether this run is multi-process.

    Raises:
        InputError: the options are incomplete or contradict each other.
        EngineError: the coordinator cannot be reached.
    """
    if not cluster.wanted:
        return False
    if _started:
        return True
    given = [cluster.coordinator, cluster.num_processes, cluster.process_id]
    if any(v is None for v in given) and any(v is not None for v in given) and not cluster.auto:
        raise InputError(
            "--coordinator, --num-processes and --process-id go together (or set "
            "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID); "
            "give all three, or --distributed alone on Slurm or a TPU VM"
        )
    if cluster.num_processes is not None and cluster.process_id is not None:
        if not 0 <= cluster.process_id < cluster.num_processes:
            raise InputError(
                f"--process-id: {cluster.process_id} is not in 0..{cluster.num_processes - 1}"
            )
    import jax

    # CPU processes exchange gradients through gloo; GPU (NCCL) and TPU (ICI) ignore this
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=cluster.coordinator,
            num_processes=cluster.num_processes,
            process_id=cluster.process_id,
        )
    except (RuntimeError, ValueError) as err:
        raise EngineError(f"--coordinator: could not join the cluster ({err})") from None
    _started.append(cluster)
    return True
