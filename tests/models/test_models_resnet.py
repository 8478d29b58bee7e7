import pytest
import torch

from uarbench.errors import UarbenchError
from uarbench.models.resnet import CNNPatchEncoder, ResNet, load_resnet_weights

# torchvision's published parameter counts and state-dict sizes (params + BN buffers)
KNOWN = {"resnet18": (11_689_512, 122), "resnet34": (21_797_672, 218),
         "resnet50": (25_557_032, 320), "resnet101": (44_549_160, 626)}


@pytest.mark.parametrize("arch", sorted(KNOWN))
def test_sizes_match_torchvision(arch):
    with torch.device("meta"):  # shapes only: no memory, no init cost
        net = ResNet(arch)
    n_params, n_keys = KNOWN[arch]
    assert sum(p.numel() for p in net.parameters()) == n_params
    assert len(net.state_dict()) == n_keys


def test_resnet18_key_names():
    with torch.device("meta"):
        sd = ResNet("resnet18").state_dict()
    for key in ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                "bn1.num_batches_tracked", "layer1.0.conv1.weight", "layer1.1.bn2.bias",
                "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var",
                "layer4.1.conv2.weight", "fc.weight", "fc.bias"]:
        assert key in sd, key
    assert "layer1.0.downsample.0.weight" not in sd and "layer1.0.conv3.weight" not in sd
    assert sd["fc.weight"].shape == (1000, 512)
    assert sd["layer4.0.downsample.0.weight"].shape == (512, 256, 1, 1)


def test_resnet101_key_names():
    with torch.device("meta"):
        sd = ResNet("resnet101").state_dict()
    assert sd["layer3.22.conv3.weight"].shape == (1024, 256, 1, 1)
    assert "layer3.23.conv1.weight" not in sd
    assert sd["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert sd["layer4.2.bn3.running_mean"].shape == (2048,)
    assert sd["layer2.0.conv2.weight"].shape == (128, 128, 3, 3)  # stride in conv2 (v1.5)
    assert sd["fc.weight"].shape == (1000, 2048)


def test_saved_state_dict_reloads_with_identical_outputs(tmp_path):
    torch.manual_seed(0)
    src = ResNet("resnet18")
    with torch.no_grad():  # non-default BN statistics, so the buffers must travel too
        for name, buf in src.named_buffers():
            if "running" in name:
                buf.uniform_(0.5, 1.5)
    path = tmp_path / "resnet18.pth"
    torch.save(src.state_dict(), path)
    dst = ResNet("resnet18")
    load_resnet_weights(dst, path)
    x = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(dst.eval()(x), src.eval()(x))
    feats = dst.patch_features(x)
    assert feats.shape == (2, 2 * 2, 512)  # 64 px -> 2 x 2 patches


def test_mismatched_weights_fail_with_the_keys(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(ResNet("resnet18").state_dict(), path)
    with pytest.raises(UarbenchError, match="not a resnet34 state dict.*missing"):
        load_resnet_weights(ResNet("resnet34"), path)
    with pytest.raises(UarbenchError, match="not found"):
        load_resnet_weights(ResNet("resnet18"), tmp_path / "absent.pth")


def test_cnn_patch_encoder_shapes():
    enc = CNNPatchEncoder("resnet18", d_model=16, n_views=2, dropout=0.0)
    out = enc(torch.rand(3, 2, 1, 64, 64))
    assert out.shape == (3, 2 * 2 * 2, 16)
    # the view embedding tells the two views apart even for identical images
    same = enc.eval()(torch.rand(1, 1, 1, 64, 64).expand(1, 2, 1, 64, 64))
    assert not torch.allclose(same[:, :4], same[:, 4:])
