import torch

from alexnet_edu.augment import pca_colour_noise, random_crop_flip, rgb_principal_components, ten_crops


def test_crop_flip_shapes_and_randomness():
    x = torch.arange(2 * 28 * 28, dtype=torch.float32).reshape(2, 1, 28, 28).repeat(8, 1, 1, 1)
    out = random_crop_flip(x, 64, generator=torch.Generator().manual_seed(0))
    assert out.shape == (16, 1, 64, 64)
    # different images get different crops/flips
    assert len({round(v, 3) for v in out[::2, 0, 0, 0].tolist()}) > 1


def test_crop_fraction_one_without_flip_is_a_plain_resize():
    x = torch.rand(4, 1, 28, 28)
    gen = torch.Generator().manual_seed(1)
    out = random_crop_flip(x, 28, crop_fraction=1.0, generator=gen)
    # with a full-size window the shift is 0; each image is either itself or its mirror image
    for i in range(4):
        assert torch.allclose(out[i], x[i], atol=1e-5) or torch.allclose(out[i], x[i].flip(-1), atol=1e-5)


def test_pca_colour_noise_moves_along_principal_components():
    torch.manual_seed(0)
    base = torch.rand(8, 1, 16, 16)
    images = torch.cat([base, 0.8 * base + 0.1, 0.5 * base], 1)   # strongly correlated RGB
    values, vectors = rgb_principal_components(images)
    assert torch.allclose(vectors.T @ vectors, torch.eye(3), atol=1e-5)
    out = pca_colour_noise(images, values, vectors, generator=torch.Generator().manual_seed(0))
    shift = (out - images)[:, :, 0, 0]
    assert torch.allclose(shift, (out - images)[:, :, 5, 7])   # one offset per image, every pixel
    # the offset is mostly along the top component, since its eigenvalue dominates
    along_top = (shift @ vectors[:, -1]).abs()
    assert (along_top > 0.9 * shift.norm(dim=1)).float().mean() > 0.7


def test_ten_crops_are_corners_centre_and_mirrors():
    x = torch.arange(36, dtype=torch.float32).reshape(1, 1, 6, 6)
    crops = ten_crops(x, 4)
    assert len(crops) == 10 and all(c.shape == (1, 1, 4, 4) for c in crops)
    assert torch.equal(crops[0], x[..., :4, :4])            # top-left corner
    assert torch.equal(crops[4], x[..., 1:5, 1:5])          # centre
    assert torch.equal(crops[5], x.flip(-1)[..., :4, :4])   # first mirrored crop


def test_ten_crop_evaluation_runs_and_is_an_accuracy():
    from alexnet_edu.models import alexnet
    from alexnet_edu.train import evaluate
    torch.manual_seed(0)
    model = alexnet(num_classes=4, image_size=72, width=0.25)
    images = torch.randint(0, 256, (12, 1, 28, 28), dtype=torch.uint8)
    labels = torch.arange(12) % 4
    acc = evaluate(model, images, labels, resolution=72, ten_crop=True)
    assert 0.0 <= acc <= 1.0 and (acc * 12) == round(acc * 12)
