"""The ResNet18 transfer model: weight loading from a local file, the fallback to random
initialisation, freezing, and the ImageNet preprocessing."""

from pathlib import Path

import pytest
import torch
import torchvision

from course_utils import config
from course_utils.models import transfer


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local file in the format of torchvision's ImageNet ResNet18 weights."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("hub") / "resnet18-f37072fd.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


def test_weights_load_from_a_local_file_into_the_model(weights_file):
    weights = transfer.imagenet_weights(path=weights_file, download=False, verbose=False)
    assert weights.pretrained
    assert weights.description == f"imagenet (cached {weights_file})"
    saved = torch.load(weights_file, weights_only=True)
    model = transfer.resnet18(num_classes=None, weights=weights)
    assert torch.equal(model.conv1.weight, saved["conv1.weight"])
    assert torch.equal(model.fc.weight, saved["fc.weight"])  # the ImageNet head is kept
    # A new head replaces fc only; the backbone keeps the loaded weights.
    ten = transfer.resnet18(num_classes=10, weights=weights)
    assert ten.fc.out_features == 10
    assert torch.equal(ten.layer4[1].conv2.weight, saved["layer4.1.conv2.weight"])


def test_the_default_place_is_torch_hubs_cache(monkeypatch, tmp_path, weights_file):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert transfer.weights_path() == tmp_path / "hub" / "checkpoints" / weights_file.name
    transfer.weights_path().parent.mkdir(parents=True)
    transfer.weights_path().write_bytes(weights_file.read_bytes())
    assert transfer.imagenet_weights(download=False, verbose=False).pretrained


def test_a_corrupt_file_fails_clearly_naming_the_file(tmp_path):
    corrupt = tmp_path / "resnet18-f37072fd.pth"
    corrupt.write_bytes(b"this is not a PyTorch file")
    with pytest.raises(transfer.WeightsError, match="not a readable PyTorch weights file") as info:
        transfer.imagenet_weights(path=corrupt, download=False, verbose=False)
    assert str(corrupt) in str(info.value) and "Delete" in str(info.value)


def test_a_truncated_file_fails_clearly(tmp_path, weights_file):
    truncated = tmp_path / "resnet18.pth"
    truncated.write_bytes(weights_file.read_bytes()[:100_000])
    with pytest.raises(transfer.WeightsError, match=str(truncated)):
        transfer.load_weights_file(truncated)


def test_weights_of_another_network_are_refused(tmp_path):
    other = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34().state_dict(), other)
    with pytest.raises(transfer.WeightsError, match="does not hold ImageNet ResNet18 weights"):
        transfer.load_weights_file(other)
    not_a_dict = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), not_a_dict)
    with pytest.raises(transfer.WeightsError, match="holds a Tensor, not a state dict"):
        transfer.load_weights_file(not_a_dict)


def test_offline_falls_back_to_random_init_loudly(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(config, "network_available", lambda host, **kwargs: False)
    weights = transfer.imagenet_weights(path=tmp_path / "missing.pth")
    assert not weights.pretrained and weights.state_dict is None
    assert weights.description.startswith("random-init (OFFLINE: missing.pth not in")
    notice = capsys.readouterr().out
    assert notice.startswith("NOTICE") and "RANDOM" in notice and "not transfer learning" in notice
    # The run record carries it.
    run = config.start_run(profile="smoke", quiet=True, weights=weights.description)
    assert run.record.endswith(f"| weights={weights.description}")
    # The model is built the same way, from random weights.
    assert transfer.resnet18(num_classes=3, weights=weights).fc.out_features == 3


def test_a_failed_download_falls_back_with_the_reason(monkeypatch, tmp_path, capsys):
    def refuse(*args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    weights = transfer.imagenet_weights(path=tmp_path / "w.pth", download=True)
    assert not weights.pretrained
    assert "download of" in weights.description and "connection refused" in weights.description
    assert "NOTICE" in capsys.readouterr().out


def test_freezing_trains_the_head_only_and_keeps_backbone_statistics():
    frozen = transfer.resnet18(num_classes=4, freeze_backbone=True)
    trainable = [name for name, p in frozen.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]
    frozen.train()
    before = frozen.bn1.running_mean.clone()
    frozen(torch.randn(2, 3, 32, 32) * 5 + 3)
    assert torch.equal(frozen.bn1.running_mean, before)  # eval mode: statistics unchanged
    assert frozen.fc.training and not frozen.layer2[0].bn1.training

    tuned = transfer.resnet18(num_classes=4).train()
    assert all(p.requires_grad for p in tuned.parameters())
    tuned(torch.randn(2, 3, 32, 32) * 5 + 3)
    assert not torch.equal(tuned.bn1.running_mean, before)  # fine-tuning updates them


def test_transfer_resnet_is_torchvisions_resnet18():
    ours, theirs = transfer.resnet18(), torchvision.models.resnet18()
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [
        (n, p.shape) for n, p in theirs.named_parameters()
    ]
    assert len(transfer.IMAGENET_CLASSES) == 1000


def test_imagenet_transform_resizes_and_normalises():
    white = torch.full((3, 30, 50), 255, dtype=torch.uint8)
    out = transfer.imagenet_transform(40)(white)
    assert out.shape == (3, 40, 40) and out.dtype == torch.float32
    expected = [
        (1 - m) / s for m, s in zip(transfer.IMAGENET_MEAN, transfer.IMAGENET_STD, strict=True)
    ]
    torch.testing.assert_close(out.mean(dim=(1, 2)), torch.tensor(expected))
