"""ResNet18 for transfer learning: ImageNet weights when they can be had, a new head,
and the preprocessing that matches the weights.

A notebook asks for the weights first, so that the run record can say where they
came from, then builds the model::

    weights = transfer.imagenet_weights()   # cached, downloaded, or none (offline)
    run = config.start_run(dataset="cifar10", weights=weights.description)
    model = transfer.resnet18(num_classes=10, weights=weights)

The weights are torchvision's ``ResNet18_Weights.IMAGENET1K_V1`` file, looked for in
torch's hub cache (:func:`weights_path`). When it is not there and its host cannot be
reached, :func:`imagenet_weights` prints a NOTICE and the model starts from random
initialisation; everything else runs the same way, and the run record says
``weights=random-init (...)``. Figures made that way are *not* transfer learning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models import ResNet18_Weights
from torchvision.models.resnet import BasicBlock, ResNet
from torchvision.transforms import v2

from course_utils import config

WEIGHTS = ResNet18_Weights.IMAGENET1K_V1
# Ships with torchvision, so the 1,000 class names are there offline too.
IMAGENET_CLASSES: list[str] = list(WEIGHTS.meta["categories"])
DOWNLOAD_HOST = urlparse(WEIGHTS.url).hostname or ""
# The per-channel statistics the ImageNet weights were trained with: inputs must be
# normalised with these, not with the statistics of the new dataset.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_SIZE = 224
FEATURES = 512  # what ResNet18's average pool hands to the head


class WeightsError(RuntimeError):
    """A weights file cannot be read, or does not hold ResNet18 weights."""


def weights_path() -> Path:
    """Where torch's hub cache keeps the ImageNet ResNet18 file (``TORCH_HOME`` moves it).

    >>> weights_path().name
    'resnet18-f37072fd.pth'
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(WEIGHTS.url).path).name


def _architecture() -> ResNet:
    """ResNet18 as torchvision builds it, with its 1,000-class ImageNet head."""
    return torchvision.models.resnet18(weights=None)


def load_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ResNet18 state dict from ``path`` and check that it fits the architecture.

    The file is read with ``weights_only=True``, which refuses to run code hidden in
    it. A file that is not a PyTorch file, is truncated, or holds something other than
    ResNet18 weights raises :class:`WeightsError` naming the file and what to do.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "resnet18.pth"
    >>> torch.save(_architecture().state_dict(), path)
    >>> len(load_weights_file(path))
    122
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No weights file at {path}.")
    fix = (
        f"Delete {path} and run again to download a fresh copy, or put torchvision's "
        f"{weights_path().name} ({WEIGHTS.url}) there."
    )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors have many types; all mean "bad file"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise WeightsError(
            f"{path} is not a readable PyTorch weights file "
            f"({type(error).__name__}: {reason}). {fix}"
        ) from error
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(
            f"{path} holds a {type(state).__name__}, not a state dict of ResNet18 weights. {fix}"
        )
    try:
        _architecture().load_state_dict(state)
    except RuntimeError as error:
        # PyTorch lists every missing key and mismatched shape; its first lines suffice.
        detail = " ".join(str(error).split())[:300]
        raise WeightsError(
            f"{path} does not hold ImageNet ResNet18 weights: {detail}. {fix}"
        ) from error
    return state


@dataclass(frozen=True)
class ImageNetWeights:
    """The ImageNet weights, or ``None`` when none could be had, and where they came from.

    ``description`` goes into the run record: ``imagenet (...)`` or
    ``random-init (...)``.

    >>> ImageNetWeights(None, "random-init (test)").pretrained
    False
    """

    state_dict: dict[str, torch.Tensor] | None = field(repr=False)
    description: str

    @property
    def pretrained(self) -> bool:
        """Whether these are real ImageNet weights (False: random initialisation)."""
        return self.state_dict is not None


def _random_init(reason: str, verbose: bool) -> ImageNetWeights:
    if verbose:
        print(
            f"NOTICE: no ImageNet weights ({reason}). ResNet18 starts from RANDOM "
            f"initialisation: what follows shows an untrained network, and training it "
            f"is not transfer learning. To use the pretrained weights, put "
            f"{weights_path().name} ({WEIGHTS.url}) into {weights_path().parent}, "
            f"or run once with internet access."
        )
    return ImageNetWeights(None, f"random-init ({reason})")


def imagenet_weights(
    path: str | Path | None = None, download: bool | None = None, verbose: bool = True
) -> ImageNetWeights:
    """Find the ImageNet ResNet18 weights: from ``path`` (default :func:`weights_path`),
    else downloaded there, else none (random initialisation, with a printed NOTICE).

    ``download=None`` downloads when the host answers (:func:`config.network_available`).
    A file that is there but broken raises :class:`WeightsError`: it is never replaced
    by random weights without a word. A failed download falls back to random
    initialisation, with the reason in the notice and the description.

    >>> weights = imagenet_weights(path="/no/such/file.pth", download=False, verbose=False)
    >>> weights.pretrained, weights.description.startswith("random-init")
    (False, True)
    """
    path = Path(path) if path is not None else weights_path()
    if path.is_file():
        return ImageNetWeights(load_weights_file(path), f"imagenet (cached {path})")
    if download is None:
        download = config.network_available(DOWNLOAD_HOST)
    if not download:
        return _random_init(
            f"OFFLINE: {path.name} not in {path.parent} and {DOWNLOAD_HOST} not reachable", verbose
        )
    try:
        torch.hub.load_state_dict_from_url(
            WEIGHTS.url,
            model_dir=str(path.parent),
            file_name=path.name,
            progress=verbose,
            check_hash=True,
            weights_only=True,
        )
    except Exception as error:  # network and hash errors alike: carry on without weights
        return _random_init(
            f"download of {WEIGHTS.url} failed: {type(error).__name__}: {error}", verbose
        )
    return ImageNetWeights(load_weights_file(path), f"imagenet (downloaded to {path})")


class TransferResNet18(ResNet):
    """torchvision's ResNet18 with a new ``fc`` head for ``num_classes`` classes.

    Use :func:`resnet18` to build one. With ``freeze_backbone`` only the head trains:
    every other parameter has ``requires_grad=False``, and the backbone's batch-norm
    layers stay in eval mode even in ``model.train()``, so that their running
    statistics, like their weights, remain those of ImageNet.
    """

    def __init__(
        self,
        num_classes: int | None,
        state_dict: dict[str, torch.Tensor] | None,
        freeze_backbone: bool,
    ) -> None:
        super().__init__(BasicBlock, [2, 2, 2, 2])
        if state_dict is not None:
            self.load_state_dict(state_dict)
        if num_classes is not None:
            self.fc = nn.Linear(FEATURES, num_classes)
        self.frozen_backbone = freeze_backbone
        for name, parameter in self.named_parameters():
            parameter.requires_grad_(name.startswith("fc.") or not freeze_backbone)
        self.train()

    def train(self, mode: bool = True) -> TransferResNet18:
        """Set training mode as usual, but keep a frozen backbone in eval mode."""
        super().train(mode)
        if self.frozen_backbone:
            for name, module in self.named_children():
                if name != "fc":
                    module.eval()
        return self


def resnet18(
    num_classes: int | None = None,
    weights: ImageNetWeights | None = None,
    freeze_backbone: bool = False,
) -> TransferResNet18:
    """ResNet18 with ``weights`` (``None``: random initialisation) and a new head.

    ``num_classes=None`` keeps the 1,000-class ImageNet head (to look at what the
    ImageNet network predicts); a number replaces it with a freshly initialised
    ``nn.Linear(512, num_classes)``. ``freeze_backbone=True`` trains the head only;
    the default fine-tunes every layer.

    >>> model = resnet18(num_classes=10, freeze_backbone=True)
    >>> sorted({name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad})
    ['fc']
    >>> model.train().layer1.training, model.fc.training
    (False, True)
    """
    state = weights.state_dict if weights is not None else None
    return TransferResNet18(num_classes, state, freeze_backbone)


def imagenet_transform(size: int = IMAGENET_SIZE) -> v2.Compose:
    """The preprocessing that matches the ImageNet weights, for one image.

    A uint8 tensor ``(3, H, W)`` or a PIL image becomes a float ``(3, size, size)``:
    resized (bilinear, antialiased), scaled to [0, 1] and normalised with
    :data:`IMAGENET_MEAN` and :data:`IMAGENET_STD`. The whole image is resized, not
    centre-cropped as in torchvision's evaluation preset, so that a heat map computed on
    the input lines up with the whole photo when stretched back to its size.

    >>> imagenet_transform(64)(torch.zeros(3, 30, 40, dtype=torch.uint8)).shape
    torch.Size([3, 64, 64])
    """
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize((size, size), antialias=True),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(IMAGENET_MEAN), list(IMAGENET_STD)),
        ]
    )
