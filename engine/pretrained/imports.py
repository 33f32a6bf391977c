"""Pretrained weights from PyTorch: torchvision/timm ResNet state dicts -> a project checkpoint.

A real pretrained model arrives as a state dict: a ``.pth``/``.pt``/``.bin``
file (read with ``torch.load(weights_only=True)``; needs torch) or a
``.safetensors`` file (read with safetensors alone).  ``import_state_dict``
reads its structure off the tensor names and shapes — stem, Basic or
Bottleneck blocks, blocks per stage, widths, classifier size — into a
``ModelPlan`` (``arch="resnet"``, ``stem="imagenet"``), and maps every tensor
onto the Flax network ``engine.nn.resnet_imagenet`` builds::

    conv1 / bn1                      -> base/blocks_0/conv, bn
    layer{s}.{j}.conv{k} / bn{k}     -> base/blocks_{n}/conv{k}, bn{k}   (n counts blocks from 1)
    layer{s}.{j}.downsample.0 / .1   -> base/blocks_{n}/proj, proj_bn
    fc                               -> head/output

Convolution kernels go from OIHW to HWIO, linear weights are transposed,
BatchNorm running statistics become ``batch_stats``.  torchvision and timm use
the same names for these ResNets.  A key left over or missing is an
``InputError`` listing it, never a silent partial load.

``model.base`` may name a state-dict file directly, or a hub model —
``torchvision:resnet18`` (download.pytorch.org) or ``timm:resnet50.a1_in1k``
(huggingface.co/timm) — fetched once into ``$ADVISOR_CACHE`` (default
``~/.cache/advisor``).  ``advisor import-base`` writes the converted weights as a
project checkpoint directory.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from advisor.contract.errors import InputError
from advisor.contract.inputs import checked_file
from advisor.contract.schemas import ModelPlan
from engine.outputs.checkpoint import save_checkpoint, unflatten

# torchvision's ImageNet weights (IMAGENET1K_V1), the files torchvision.models downloads.
TORCHVISION_URLS = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "resnet101": "https://download.pytorch.org/models/resnet101-63fe2227.pth",
    "resnet152": "https://download.pytorch.org/models/resnet152-394f9c45.pth",
}
TIMM_URL = "https://huggingface.co/timm/{name}/resolve/main/model.safetensors"
# A timm name goes into the URL path: only the characters timm's names use, no '/', no '..'.
TIMM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)?")
# The largest ResNet state dict (resnet152, float32) is about 240 MB; nothing we read is 1 GiB.
MAX_DOWNLOAD_BYTES = 2**30
HUB_SCHEMES = ("torchvision", "timm")
STATE_DICT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
# The inputs these weights were trained on: 224 x 224 RGB scaled by ImageNet's channel statistics.
IMAGENET_INPUT = {
    "input_shape": [224, 224, 3],
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
}

_BLOCK_KEY = re.compile(r"^layer(\d+)\.(\d+)\.")


def is_hub_name(spec: str) -> bool:
    """``torchvision:NAME`` or ``timm:NAME``."""
    scheme, sep, rest = spec.partition(":")
    return bool(sep) and scheme in HUB_SCHEMES and bool(rest)


def is_state_dict_file(path: Path) -> bool:
    """A PyTorch/safetensors weights file (not a project checkpoint directory)."""
    return path.is_file() and path.suffix in STATE_DICT_SUFFIXES and not _is_project_file(path)


def _is_project_file(path: Path) -> bool:
    if path.suffix != ".safetensors":
        return False
    from safetensors import SafetensorError, safe_open

    from engine.outputs.checkpoint import FORMAT

    try:
        with safe_open(str(path), "np") as handle:
            return (handle.metadata() or {}).get("format") == FORMAT
    except (SafetensorError, OSError, ValueError):
        return False  # not readable: read_state_dict says so, naming the field


# ----------------------------------------------------------------------------- reading


def read_state_dict(path: str | Path, field: str = "model.base") -> dict[str, np.ndarray]:
    """Every floating-point tensor of a ``.pth``/``.pt``/``.bin`` or ``.safetensors`` file, as float32 numpy.

    Wrappers ``{"state_dict": ...}`` / ``{"model": ...}`` and DataParallel's
    ``module.`` prefix are taken off.  Integer tensors (BatchNorm's
    ``num_batches_tracked``) are dropped: they hold no weights.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(
            f"{field}: {path} does not exist; expected a .pth or .safetensors state dict"
        )
    checked_file(path, field=field, what="state dict file")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            raw = dict(load_file(str(path)))
        except (SafetensorError, OSError, ValueError, MemoryError) as err:
            raise InputError(
                f"{field}: {path} is not a readable safetensors file ({type(err).__name__})"
            ) from None
    else:
        raw = _torch_load(path, field)
    for wrapper in ("state_dict", "model"):
        if set(raw) == {wrapper} or (wrapper in raw and isinstance(raw[wrapper], dict)):
            raw = raw[wrapper]
    out = {}
    for key, value in raw.items():
        array = np.asarray(value)
        if not np.issubdtype(array.dtype, np.floating):
            continue
        out[key.removeprefix("module.")] = array.astype(np.float32)
    return out


def _torch_load(path: Path, field: str) -> dict:
    try:
        import torch
    except ImportError:
        raise InputError(
            f"{field}: reading {path.name} needs PyTorch (pip install torch); or convert the file to "
            ".safetensors, which needs only the safetensors package"
        ) from None
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad file
        raise InputError(
            f"{field}: {path} is not a readable PyTorch state dict ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(loaded, dict):
        raise InputError(
            f"{field}: {path} holds a {type(loaded).__name__}, not a state dict; save model.state_dict()"
        )

    def to_numpy(value):
        if isinstance(value, dict):
            return {k: to_numpy(v) for k, v in value.items()}
        if hasattr(value, "detach"):
            value = value.detach()
            return value.float().numpy() if value.is_floating_point() else value.numpy()
        return value

    return to_numpy(loaded)


# ----------------------------------------------------------------------------- structure


def infer_resnet(state: dict[str, np.ndarray], source: str) -> ModelPlan:
    """The ``ModelPlan`` of a torchvision-layout ResNet, read off its tensor names and shapes.

    Raises:
        InputError: the state dict is not a ResNet of the supported family
            (7x7 stem; Basic or Bottleneck blocks; no groups or widening).
    """
    stem = state.get("conv1.weight")
    if stem is None or stem.ndim != 4 or stem.shape[2:] != (7, 7):
        raise InputError(
            f"model.base: {source} is not a torchvision/timm ResNet (no 7x7 'conv1.weight'); "
            "supported: resnet18/34/50/101/152 state dicts"
        )
    counts: dict[int, int] = {}
    for key in state:
        if match := _BLOCK_KEY.match(key):
            stage, index = int(match[1]), int(match[2])
            counts[stage] = max(counts.get(stage, 0), index + 1)
    if not counts or sorted(counts) != list(range(1, len(counts) + 1)):
        raise InputError(
            f"model.base: {source} has no layer1, layer2, ... blocks; not a ResNet state dict"
        )
    block = "bottleneck" if "layer1.0.conv3.weight" in state else "basic"
    widths = [int(state[f"layer{s}.0.conv1.weight"].shape[0]) for s in sorted(counts)]
    expansion = 4 if block == "bottleneck" else 1
    for s, width in zip(sorted(counts), widths, strict=True):
        last = f"layer{s}.0.conv{3 if block == 'bottleneck' else 2}.weight"
        grouped = state[f"layer{s}.0.conv2.weight"].shape[1] != width
        if state[last].shape[0] != width * expansion or grouped:
            raise InputError(
                f"model.base: {source}: stage {s} is grouped or widened (ResNeXt / wide ResNet); "
                "only plain ResNets import"
            )
    if int(stem.shape[0]) != widths[0]:
        raise InputError(
            f"model.base: {source}: the stem has {stem.shape[0]} channels but the first stage {widths[0]}"
        )
    fc = state.get("fc.weight")
    if fc is None:
        raise InputError(
            f"model.base: {source} has no classifier 'fc.weight' (timm num_classes=0?); save it with its head"
        )
    return ModelPlan(
        arch="resnet",
        filters=widths,
        stage_blocks=[counts[s] for s in sorted(counts)],
        stem="imagenet",
        block=block,
        batch_norm=True,
        activation="relu",
        head_units=[],
        output_units=int(fc.shape[0]),
    )


# ----------------------------------------------------------------------------- mapping


def _conv(w: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))  # OIHW -> HWIO


def _bn(prefix: str, target: str) -> dict[str, tuple[str, str]]:
    return {
        f"params/{target}/scale": (f"{prefix}.weight", "copy"),
        f"params/{target}/bias": (f"{prefix}.bias", "copy"),
        f"batch_stats/{target}/mean": (f"{prefix}.running_mean", "copy"),
        f"batch_stats/{target}/var": (f"{prefix}.running_var", "copy"),
    }


def key_map(model: ModelPlan) -> dict[str, tuple[str, str]]:
    """Flax variable path -> (state-dict key, "conv" | "linear" | "copy") for a torchvision ResNet."""
    n_convs = 3 if model.block == "bottleneck" else 2
    mapping = {
        "params/base/blocks_0/conv/kernel": ("conv1.weight", "conv"),
        **_bn("bn1", "base/blocks_0/bn"),
    }
    index = 1
    for stage, count in enumerate(model.stage_blocks or [], start=1):
        for j in range(count):
            torch_block, flax_block = f"layer{stage}.{j}", f"base/blocks_{index}"
            for k in range(1, n_convs + 1):
                mapping[f"params/{flax_block}/conv{k}/kernel"] = (
                    f"{torch_block}.conv{k}.weight",
                    "conv",
                )
                mapping.update(_bn(f"{torch_block}.bn{k}", f"{flax_block}/bn{k}"))
            mapping[f"params/{flax_block}/proj/kernel"] = (
                f"{torch_block}.downsample.0.weight",
                "conv",
            )
            mapping.update(_bn(f"{torch_block}.downsample.1", f"{flax_block}/proj_bn"))
            index += 1
    mapping["params/head/output/kernel"] = ("fc.weight", "linear")
    mapping["params/head/output/bias"] = ("fc.bias", "copy")
    return mapping


def convert_state_dict(state: dict[str, np.ndarray], model: ModelPlan, source: str) -> dict:
    """The Flax variables {"params", "batch_stats"} of ``model`` filled from ``state``.

    Projection entries apply only to blocks that have a ``downsample``; any
    other key missing from ``state``, or left unused, is an InputError.
    """
    convert = {"conv": _conv, "linear": lambda w: np.ascontiguousarray(w.T), "copy": lambda w: w}
    flat, used = {}, set()
    missing = []
    for path, (key, kind) in key_map(model).items():
        if key not in state:
            if ".downsample." not in key:
                missing.append(key)
            continue
        flat[path] = convert[kind](state[key])
        used.add(key)
    unused = sorted(k for k in set(state) - used if not k.endswith("num_batches_tracked"))
    if missing or unused:
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing[:5])}" if missing else "",
                f"not understood {', '.join(unused[:5])}" if unused else "",
            )
            if part
        )
        raise InputError(
            f"model.base: {source} does not match a torchvision ResNet layout ({detail})"
        )
    return unflatten(flat)


def import_state_dict(path: str | Path, field: str = "model.base") -> tuple[dict, dict]:
    """(variables, structure) of a ResNet state-dict file, as ``load_checkpoint`` returns them."""
    state = read_state_dict(path, field)
    model = infer_resnet(state, str(path))
    variables = convert_state_dict(state, model, str(path))
    structure = {
        "task": "multiclass",
        "n_classes": model.output_units,
        "input_shape": IMAGENET_INPUT["input_shape"],
        "model": model.model_dump(),
        "imported_from": str(path),
        "scaling": {
            "normalize": "imagenet",
            "mean": IMAGENET_INPUT["mean"],
            "std": IMAGENET_INPUT["std"],
        },
    }
    return variables, structure


# ----------------------------------------------------------------------------- hub


def cache_dir() -> Path:
    """Where fetched weights are kept: ``$ADVISOR_CACHE`` or ``~/.cache/advisor``."""
    return Path(os.environ.get("ADVISOR_CACHE") or Path.home() / ".cache" / "advisor") / "weights"


def hub_url(spec: str, field: str = "model.base") -> str:
    """The download address of ``torchvision:NAME`` or ``timm:NAME``."""
    scheme, _, name = spec.partition(":")
    if scheme == "torchvision":
        if name not in TORCHVISION_URLS:
            raise InputError(
                f"model.base: {name!r} is not a torchvision ResNet with known weights; "
                f"expected one of {', '.join(TORCHVISION_URLS)}"
            )
        return TORCHVISION_URLS[name]
    if not TIMM_NAME.fullmatch(name):
        raise InputError(
            f"{field}: timm:{name[:60]!r} is not a timm model name; expected letters, digits, "
            "'_', '-' and '.', e.g. timm:resnet50.a1_in1k"
        )
    return TIMM_URL.format(name=name)


def fetch(spec: str, url: str | None = None, field: str = "model.base") -> Path:
    """The local file of a hub model, downloaded once into ``cache_dir()``.

    Args:
        spec: ``torchvision:NAME`` or ``timm:NAME``.
        url: where to download from (default: ``hub_url(spec)``).
    """
    url = url or hub_url(spec, field)
    suffix = ".safetensors" if url.endswith(".safetensors") else ".pth"
    target = cache_dir() / (spec.replace(":", "__").replace("/", "_") + suffix)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310
            written = 0
            while chunk := response.read(1 << 20):
                written += len(chunk)
                if written > MAX_DOWNLOAD_BYTES:
                    raise InputError(
                        f"{field}: {spec} is larger than {MAX_DOWNLOAD_BYTES >> 20} MiB; "
                        "expected a ResNet state dict (download it and set model.base to its path)"
                    )
                digest.update(chunk)
                out.write(chunk)
        _check_hash(url, digest.hexdigest(), spec, field)
        os.replace(tmp, target)
    except InputError:
        Path(tmp).unlink(missing_ok=True)
        raise
    except (urllib.error.URLError, OSError) as err:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(
            f"{field}: could not download {spec} from {url} ({err}); when offline, download the file "
            "elsewhere and set model.base to its path"
        ) from None
    return target


def _check_hash(url: str, sha256: str, spec: str, field: str) -> None:
    """torchvision publishes the first hex digits of each file's SHA-256 in its name."""
    published = re.search(r"-([0-9a-f]{8,})\.pth$", url)
    if published and not sha256.startswith(published.group(1)):
        raise InputError(
            f"{field}: the download of {spec} does not match its published hash "
            f"{published.group(1)}; expected the file torchvision publishes (try again)"
        )


def import_base(spec: str, out_dir: str | Path, base_dir: str | Path = ".") -> Path:
    """Convert a state-dict file or hub model to a project checkpoint directory (``advisor import-base``)."""
    path = fetch(spec) if is_hub_name(spec) else Path(base_dir) / spec
    variables, structure = import_state_dict(path, field="SOURCE")
    structure["imported_from"] = spec
    save_checkpoint(out_dir, variables, structure)
    return Path(out_dir)
