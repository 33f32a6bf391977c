"""Engine throughput against Keras 3 (JAX backend, ``model.fit``) and a plain PyTorch loop.

The same model, data, batch size, optimizer (Adam 1e-3) and epochs in every
framework, trained in alternating rounds in one process, so machine noise hits
all alike.  Reported: median training samples/s over the steady epochs,
compile (first-epoch overhead) separately, validation accuracy reached, and
the engine's ratio to each.  Only training epochs are timed (no validation).

    python benchmarks/engine_bench.py                 # CPU: MLP and small CNN (28x28x1)
    python benchmarks/engine_bench.py --quick         # a fast smoke run
    python benchmarks/engine_bench.py --gpu           # GPU: bf16, 32x32x3 CNN, ResNet-18, batch 256
    python benchmarks/engine_bench.py --loops         # engine only: scanned vs stepped epochs
    python benchmarks/engine_bench.py --kernels       # CPU conv and pool pieces, XLA vs engine
    python benchmarks/engine_bench.py --choices       # re-measure what choose_loop and the
                                                      # CPU kernels decide (before raising jax)

Keras and torch come from the ``bench`` extra (``pip install -e .[bench]``);
a framework that is not installed is skipped and said so.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import dataclass, field

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402


@dataclass
class Workload:
    """One benchmark model and its data."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    batch_size: int
    n_classes: int = 10


@dataclass
class Timing:
    epochs: list[float] = field(default_factory=list)  # seconds per epoch, first included
    accuracy: float = float("nan")

    def rate(self, n: int) -> float:
        steady = self.epochs[1:] or self.epochs
        return n / statistics.median(steady)

    def compile_s(self) -> float:
        steady = self.epochs[1:] or self.epochs
        return max(0.0, self.epochs[0] - statistics.median(steady))


# ----------------------------------------------------------------------------- data


def _split(x, y, seed=0):
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_val = len(x) // 5
    val, train = order[:n_val], order[n_val:]
    mean, std = x[train].mean(), x[train].std()
    x = ((x - mean) / std).astype(np.float32)
    return x[train], y[train].astype(np.int32), x[val], y[val].astype(np.int32)


def digits_table() -> tuple:
    from sklearn.datasets import load_digits

    d = load_digits()
    return _split(d.data.astype(np.float32), d.target)


def digits_images(size: int) -> tuple:
    from sklearn.datasets import load_digits

    from engine.datasets.sources import resize_images

    d = load_digits()
    x = resize_images(d.images.astype(np.float32)[..., None], (size, size))
    return _split(x, d.target)


def shapes_rgb(n: int, size: int) -> tuple:
    """Generated shapes, coloured per channel: a CIFAR-shaped (32x32x3) stand-in with 4 classes."""
    from engine.datasets.sources import make_shapes

    x, y = make_shapes(n, (size, size), seed=0)
    tint = np.random.default_rng(1).uniform(0.3, 1.0, (n, 1, 1, 3)).astype(np.float32)
    return _split(x * tint, y)


# ----------------------------------------------------------------------------- the engine


def engine_model(kind: str, dtype):
    """The benchmark model as an engine Network (base blocks + head), so the real step trains it."""
    import jax

    from advisor.contract.schemas import ModelPlan
    from engine.nn.models import Base, ConvBlock, Head, Network, build_model

    impl = "cpu" if jax.default_backend() == "cpu" else "xla"
    if kind == "mlp":
        return build_model(
            ModelPlan(arch="mlp", hidden_layers=2, units=256, output_units=10),
            [64],
            "multiclass",
            dtype=dtype,
        )
    if kind == "small_resnet":  # choose_loop's residual case on the digits images (--choices)
        plan = ModelPlan(arch="resnet", filters=[16, 32], blocks_per_stage=2, output_units=10)
        return build_model(plan, [28, 28, 1], "multiclass", impl=impl, dtype=dtype)
    if kind == "resnet18":
        plan = ModelPlan(
            arch="resnet", filters=[64, 128, 256, 512], blocks_per_stage=2, output_units=10
        )
        return build_model(plan, [32, 32, 3], "multiclass", impl=impl, dtype=dtype)
    # conv 32 3x3 -> conv 64 3x3 -> 2x2 max-pool -> dense 128 -> dense 10, VALID (Keras' MNIST CNN)
    blocks = (
        ConvBlock(32, 3, None, "relu", False, impl, dtype, padding="VALID"),
        ConvBlock(64, 3, "max", "relu", False, impl, dtype, padding="VALID"),
    )
    head = Head(
        units=(128,),
        output_units=10,
        activation="relu",
        dropout=0.0,
        dropout_first=False,
        dtype=dtype,
    )
    return Network(Base(blocks), head)


class EngineRunner:
    """The engine's own compiled step and epoch (with its per-step diagnostics)."""

    name = "engine"

    def __init__(self, work: Workload, kind: str, dtype, loop: str | None = None):
        import jax
        import jax.numpy as jnp
        import optax

        from advisor.contract.schemas import LossPlan, OptimizerPlan
        from engine.nn.models import init_variables
        from engine.optim.losses import build_loss
        from engine.optim.optimizers import build_optimizer
        from engine.training.train import (
            StepConfig,
            TrainState,
            choose_loop,
            make_epoch_summary,
            make_evaluate,
            make_metrics,
            make_train_epoch,
            make_train_step,
        )

        self.jnp = jnp
        device = jax.devices()[0]
        network = engine_model(kind, dtype)
        variables = init_variables(network, jax.random.PRNGKey(0), work.x_train.shape[1:])
        tx = build_optimizer(
            OptimizerPlan(name="adam", learning_rate=1e-3), optax.constant_schedule(1e-3)
        )
        config = StepConfig("multiclass", "sparse_categorical_crossentropy", 10)
        loss_fn = build_loss(LossPlan(name="sparse_categorical_crossentropy"))
        metrics = make_metrics(["accuracy"], "multiclass")
        n = len(work.x_train)
        step = make_train_step(network, loss_fn, tx, config)
        summary = make_epoch_summary(network, config, metrics, "relu", n)
        self.loop = loop or choose_loop(device.platform, kind == "resnet18")
        self.epoch_fn = make_train_epoch(
            step, summary, self.loop, n, work.batch_size, jax.random.PRNGKey(1)
        )
        self.state = jax.device_put(TrainState.start(variables, jax.random.PRNGKey(2), tx), device)
        put = lambda a: jax.device_put(a, device)  # noqa: E731
        self.x, self.y, self.probe = put(work.x_train), put(work.y_train), put(work.x_train[:256])
        self.xv, self.yv = put(work.x_val), put(work.y_val)
        self.evaluate = make_evaluate(network, loss_fn, config, metrics, len(work.x_val))
        self.epoch = 0

    def train_epoch(self) -> None:
        self.epoch += 1
        self.state, summary = self.epoch_fn(
            self.state, self.x, self.y, self.probe, self.jnp.asarray(self.epoch, self.jnp.int32)
        )
        float(summary["loss"])  # wait for the epoch, as the engine's fit loop does

    def accuracy(self) -> float:
        return float(self.evaluate(self.state.variables(), self.xv, self.yv)["val_accuracy"])


# ----------------------------------------------------------------------------- Keras and PyTorch


class KerasRunner:
    name = "keras-jax"

    def __init__(self, work: Workload, kind: str, bf16: bool):
        import keras

        if bf16:
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
        keras.utils.set_random_seed(0)
        layers = keras.layers
        shape = work.x_train.shape[1:]
        if kind == "mlp":
            body = [layers.Dense(256, activation="relu"), layers.Dense(256, activation="relu")]
        elif kind == "small_cnn":
            body = [
                layers.Conv2D(32, 3, activation="relu"),
                layers.Conv2D(64, 3, activation="relu"),
                layers.MaxPooling2D(2),
                layers.Flatten(),
                layers.Dense(128, activation="relu"),
            ]
        else:
            raise ValueError(f"keras: no {kind} model in this benchmark")
        self.model = keras.Sequential(
            [keras.Input(shape), *body, layers.Dense(10, dtype="float32")]
        )
        self.model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        self.work = work

    def train_epoch(self) -> None:
        self.model.fit(
            self.work.x_train,
            self.work.y_train,
            batch_size=self.work.batch_size,
            epochs=1,
            shuffle=True,
            verbose=0,
        )

    def accuracy(self) -> float:
        return float(
            self.model.evaluate(self.work.x_val, self.work.y_val, batch_size=512, verbose=0)[1]
        )


class TorchRunner:
    """A plain eager PyTorch loop; on CPU with ``threads`` intra-op threads (default: all cores)."""

    def __init__(self, work: Workload, kind: str, bf16: bool, threads: int | None = None):
        import torch
        from torch import nn

        torch.manual_seed(0)
        self.torch = torch
        self.device = "cuda" if torch.cuda.is_available() and os.environ.get("BENCH_GPU") else "cpu"
        self.threads = threads or len(os.sched_getaffinity(0))  # the cores this process may use
        self.name = "pytorch" if threads is None else f"pytorch-{threads}t"
        if kind == "mlp":
            model = nn.Sequential(
                nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
            )
        elif kind == "small_cnn":
            c = work.x_train.shape[-1]
            side = (work.x_train.shape[1] - 4) // 2
            model = nn.Sequential(
                nn.Conv2d(c, 32, 3),
                nn.ReLU(),
                nn.Conv2d(32, 64, 3),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(64 * side * side, 128),
                nn.ReLU(),
                nn.Linear(128, 10),
            )
        else:
            import torchvision  # the GPU image has it

            model = torchvision.models.resnet18(num_classes=10)
            model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)  # CIFAR-style stem
            model.maxpool = nn.Identity()
        self.model = model.to(self.device)
        self.bf16 = bf16
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        layout = (lambda a: a) if work.x_train.ndim == 2 else (lambda a: a.transpose(0, 3, 1, 2))
        self.x = torch.from_numpy(np.ascontiguousarray(layout(work.x_train))).to(self.device)
        self.y = torch.from_numpy(work.y_train.astype(np.int64)).to(self.device)
        self.xv = torch.from_numpy(np.ascontiguousarray(layout(work.x_val))).to(self.device)
        self.yv = torch.from_numpy(work.y_val.astype(np.int64)).to(self.device)
        self.batch = work.batch_size
        self.loss = nn.CrossEntropyLoss()

    def train_epoch(self) -> None:
        torch = self.torch
        if self.device == "cpu":  # set per epoch: the runners share one process
            torch.set_num_threads(self.threads)
        self.model.train()
        order = torch.randperm(len(self.x), device=self.device)
        for start in range(0, len(order), self.batch):
            idx = order[start : start + self.batch]
            with torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bf16):
                loss = self.loss(self.model(self.x[idx]), self.y[idx])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        if self.device == "cuda":
            torch.cuda.synchronize()

    def accuracy(self) -> float:
        torch = self.torch
        self.model.eval()
        with torch.no_grad():
            logits = torch.cat(
                [self.model(self.xv[i : i + 512]) for i in range(0, len(self.xv), 512)]
            )
        return float((logits.argmax(1) == self.yv).float().mean())


# ----------------------------------------------------------------------------- driver


def _runners(work, kind, frameworks, bf16, dtype):
    runners = []
    for name in frameworks:
        try:
            if name == "engine":
                runners.append(EngineRunner(work, kind, dtype))
            elif name == "keras":
                runners.append(KerasRunner(work, kind, bf16))
            elif name == "torch":
                runners.append(TorchRunner(work, kind, bf16))
            elif (
                name == "torch1"
            ):  # one thread: on a busy 2-core machine torch's two threads contend
                runners.append(TorchRunner(work, kind, bf16, threads=1))
        except ImportError as err:
            print(f"  {name}: skipped ({err.name} is not installed; pip install -e .[bench])")
        except ValueError as err:
            print(f"  {name}: skipped ({err})")
    return runners


def bench(
    work: Workload, kind: str, frameworks, rounds: int, epochs_per_round: int, bf16: bool, dtype
) -> dict:
    """Alternate the frameworks round by round; per-epoch times and final accuracy for each."""
    runners = _runners(work, kind, frameworks, bf16, dtype)
    timings = {r.name: Timing() for r in runners}
    for _ in range(rounds):
        for runner in runners:
            for _ in range(epochs_per_round):
                started = time.perf_counter()
                runner.train_epoch()
                timings[runner.name].epochs.append(time.perf_counter() - started)
    for runner in runners:
        timings[runner.name].accuracy = runner.accuracy()
    return timings


def report(work: Workload, kind: str, timings: dict) -> list[str]:
    n = len(work.x_train)
    lines = [
        f"{kind} ({work.name}, batch {work.batch_size}, {n} train examples, "
        f"{len(next(iter(timings.values())).epochs)} epochs each)",
        "| framework | samples/s (median) | compile + first-epoch overhead (s) | val accuracy |",
        "|---|---|---|---|",
    ]
    for name, t in timings.items():
        lines.append(f"| {name} | {t.rate(n):,.0f} | {t.compile_s():.2f} | {t.accuracy:.3f} |")
    if "engine" in timings:
        ratios = [
            f"{timings['engine'].rate(n) / t.rate(n):.2f}x {name}"
            for name, t in timings.items()
            if name != "engine"
        ]
        torch_rates = [t.rate(n) for name, t in timings.items() if name.startswith("pytorch")]
        if len(torch_rates) > 1:
            best = timings["engine"].rate(n) / max(torch_rates)
            ratios.append(f"{best:.2f}x pytorch at its best thread count")
        if ratios:
            lines.append(f"engine speed: {', '.join(ratios)}")
    return lines


def loop_forms(work: Workload, kind: str, epochs: int, dtype) -> list[str]:
    """The engine's two epoch forms on this backend (the numbers behind train.choose_loop)."""
    lines = []
    for loop in ("scan", "step"):
        runner = EngineRunner(work, kind, dtype, loop=loop)
        t = Timing()
        for _ in range(epochs):
            started = time.perf_counter()
            runner.train_epoch()
            t.epochs.append(time.perf_counter() - started)
        rate = t.rate(len(work.x_train))
        lines.append(f"{kind} loop={loop}: {rate:,.0f} samples/s, first epoch {t.epochs[0]:.1f} s")
    return lines


def kernels() -> list[str]:
    """The CPU convolution and pooling pieces: XLA as ``jax.jit`` compiles them by default vs
    the engine's (``engine.runtime.compiler.jit`` around ``engine.nn.layers``), ms, batch 128.

    The conv rows are 26x26x32 -> 64, 3x3 VALID (the small CNN's second layer); the
    thin rows are its 28x28x1 -> 32 first layer, the weight gradient inside a 3-batch
    ``lax.scan`` (per batch), where a training epoch runs it; pooling is 2x2 max over
    24x24x64, forward and backward.
    """
    import jax
    import jax.numpy as jnp
    from jax import lax

    from engine.nn.layers import conv_nhwc, pool
    from engine.runtime import compiler

    def ms(f, *a):
        jax.block_until_ready(f(*a))
        times = []
        for _ in range(7):
            t = time.perf_counter()
            jax.block_until_ready(f(*a))
            times.append(time.perf_counter() - t)
        return 1e3 * statistics.median(times)

    x = jax.random.normal(jax.random.PRNGKey(0), (128, 26, 26, 32))
    w = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 32, 64))
    dy = jax.random.normal(jax.random.PRNGKey(2), (128, 24, 24, 64))
    dims = ("NHWC", "HWIO", "NHWC")
    valid = ((0, 0), (0, 0))
    xla = lambda a, b: lax.conv_general_dilated(a, b, (1, 1), "VALID", dimension_numbers=dims)  # noqa: E731
    ours = lambda a, b: conv_nhwc(a, b, (1, 1), valid, "cpu")  # noqa: E731

    def grad(conv, which):
        return lambda a, b, g: jax.vjp(conv, a, b)[1](g)[which]

    def both(f_xla, f_ours, *args):
        return ms(jax.jit(f_xla), *args), ms(compiler.jit(f_ours), *args)

    rows = [
        ("forward", *both(xla, ours, x, w)),
        ("input gradient", *both(grad(xla, 0), grad(ours, 0), x, w, dy)),
        ("weight gradient", *both(grad(xla, 1), grad(ours, 1), x, w, dy)),
    ]
    thin_x = jax.random.normal(jax.random.PRNGKey(3), (3, 128, 28, 28, 1))
    thin_dy = jax.random.normal(jax.random.PRNGKey(4), (3, 128, 26, 26, 32))
    thin_w = jax.random.normal(jax.random.PRNGKey(5), (3, 3, 1, 32))

    def in_scan(weight_grad, jit):
        def run(xs, dys):
            add = lambda acc, pair: (acc + weight_grad(pair[0], thin_w, pair[1]), None)  # noqa: E731
            return lax.scan(add, jnp.zeros_like(thin_w), (xs, dys))[0]

        return jit(run)

    def pool_step(pool_fn, jit):
        return jit(lambda a, g: jax.vjp(pool_fn, a)[1](g)[0])

    reshape_max = lambda a: jnp.max(a.reshape(128, 12, 2, 12, 2, 64), axis=(2, 4))  # noqa: E731
    rows += [
        ("forward, 1 input channel", *both(xla, ours, thin_x[0], thin_w)),
        (
            "weight gradient, 1 input channel, in a scan",
            ms(in_scan(grad(xla, 1), jax.jit), thin_x, thin_dy) / 3,
            ms(in_scan(grad(ours, 1), compiler.jit), thin_x, thin_dy) / 3,
        ),
        (
            "max pool, forward + backward",
            ms(pool_step(reshape_max, jax.jit), dy, dy[:, :12, :12]),
            ms(pool_step(lambda a: pool(a, "max", impl="cpu"), compiler.jit), dy, dy[:, :12, :12]),
        ),
    ]
    return [f"{name}: XLA {a:.1f} ms, engine {b:.1f} ms ({a / b:.1f}x)" for name, a, b in rows]


def choices(rounds: int, dtype) -> list[str]:
    """Re-measure the engine's fixed choices on this jax: ``train.choose_loop`` per model and
    the CPU kernels (``--kernels``), saying where the measurement now disagrees.

    Run before raising the jax bound in pyproject.toml; ``population.choose_mode``
    times its own steps at run time and needs no re-measuring.
    """
    import jax

    from engine.training.train import choose_loop

    backend = jax.default_backend()
    lines = [f"jax {jax.__version__}, jaxlib {jax.lib.__version__}, backend {backend}"]
    work = Workload("digits 28x28x1", *digits_images(28), batch_size=128)
    for kind, has_conv in (("small_cnn", False), ("small_resnet", True)):
        rates = {}
        for loop in ("scan", "step"):
            runner = EngineRunner(work, kind, dtype, loop=loop)
            times = []
            for _ in range(rounds + 1):
                started = time.perf_counter()
                runner.train_epoch()
                times.append(time.perf_counter() - started)
            rates[loop] = len(work.x_train) / statistics.median(times[1:])
        picked = choose_loop(jax.default_backend(), has_conv)
        faster = max(rates, key=rates.get)
        verdict = "agrees" if picked == faster else "DISAGREES: revisit choose_loop"
        shown = ", ".join(f"{k} {v:,.0f} samples/s" for k, v in rates.items())
        lines.append(f"{kind}: {shown}; choose_loop picks {picked}, {verdict}")
    if jax.default_backend() == "cpu":
        lines += kernels()
        lines.append("kernels: an 'engine' column slower than 'XLA' means revisit engine.nn.layers")
    return lines


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer rounds and epochs (a smoke run)"
    )
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="GPU workloads: bf16, 32x32x3 CNN and ResNet-18 at batch 256",
    )
    parser.add_argument(
        "--loops", action="store_true", help="engine only: scanned vs stepped epochs"
    )
    parser.add_argument(
        "--kernels", action="store_true", help="CPU convolution pieces: XLA vs engine.nn.layers"
    )
    parser.add_argument(
        "--choices", action="store_true", help="re-measure choose_loop and the CPU kernels"
    )
    parser.add_argument("--models", default=None, help="comma list of mlp, small_cnn, resnet18")
    parser.add_argument(
        "--frameworks",
        default=None,
        help="comma list of engine, keras, torch, torch1 "
        "(torch with one thread); default engine,keras,torch,torch1 on CPU, "
        "engine,keras,torch on GPU",
    )
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--epochs-per-round", type=int, default=None)
    parser.add_argument(
        "--n", type=int, default=None, help="--gpu: number of generated images (default 50,000)"
    )
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp

    cores = len(os.sched_getaffinity(0))
    print(f"machine: {_cpu_name()}, {cores} cores; jax {jax.__version__} on {jax.devices()[0]}")
    if args.kernels:
        print("\n".join(kernels()))
        return
    if args.choices:
        print("\n".join(choices(2 if args.quick else 4, jnp.float32)))
        return
    bf16 = args.gpu
    dtype = jnp.bfloat16 if bf16 else jnp.float32
    if args.gpu:
        os.environ["BENCH_GPU"] = "1"
        n = args.n or (10_000 if args.quick else 50_000)
        images = shapes_rgb(n, 32)
        workloads = {
            "small_cnn": Workload("shapes 32x32x3", *images, batch_size=256),
            "resnet18": Workload("shapes 32x32x3", *images, batch_size=256),
        }
    else:
        workloads = {
            "mlp": Workload("digits 64", *digits_table(), batch_size=128),
            "small_cnn": Workload("digits 28x28x1", *digits_images(28), batch_size=128),
        }
    chosen = args.models.split(",") if args.models else list(workloads)
    rounds = args.rounds or (2 if args.quick else 4)
    per_round = args.epochs_per_round or (2 if args.quick else 3)
    frameworks = (
        args.frameworks or ("engine,keras,torch" if args.gpu else "engine,keras,torch,torch1")
    ).split(",")
    for kind in chosen:
        work = workloads[kind]
        if args.loops:
            print("\n".join(loop_forms(work, kind, rounds * per_round, dtype)))
            continue
        timings = bench(work, kind, frameworks, rounds, per_round, bf16, dtype)
        print("\n".join(report(work, kind, timings)) + "\n")


if __name__ == "__main__":
    main()
