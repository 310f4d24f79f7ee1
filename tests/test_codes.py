"""Short binary codes: the auto-encoder's codes, Hamming ranking and precision at k."""

import pytest
import torch

from alexnet_edu.codes import (BinaryAutoencoder, hamming_distances, hamming_neighbours, precision_at_k,
                               reconstruction_loss, train_autoencoder)


def bits(*rows):
    return torch.tensor([[c == "1" for c in row] for row in rows])


@pytest.fixture(scope="module")
def synthetic():
    """400 vectors of 64 numbers made from 6 hidden on/off factors plus a little noise: a code of
    a few bits can rebuild them."""
    generator = torch.Generator().manual_seed(0)
    factors = torch.randint(0, 2, (400, 6), generator=generator).float()
    mixing = torch.randn(6, 64, generator=generator)
    return factors @ mixing + 0.05 * torch.randn(400, 64, generator=generator)


def test_codes_are_binary_and_of_the_asked_length(synthetic):
    for n in (8, 32, 48):
        model, _ = train_autoencoder(synthetic, bits=n, epochs=1)
        codes = model.encode(synthetic)
        assert codes.dtype == torch.bool and codes.shape == (400, n)
        assert set(model.binary_code(synthetic).unique().tolist()) <= {0.0, 1.0}
        # encode and the code the decoder sees agree bit for bit
        assert torch.equal(codes, model.binary_code(synthetic).bool())


def test_images_are_flattened():
    images = torch.randint(0, 256, (50, 1, 28, 28), dtype=torch.uint8)
    model, _ = train_autoencoder(images, bits=16, hidden=32, epochs=1)
    assert model.encode(images).shape == (50, 16)
    assert model.mean.shape == (784,)
    scaled = model.scaled(images)
    torch.testing.assert_close(scaled.mean(0), torch.zeros(784), atol=1e-4, rtol=0)
    assert scaled.square().mean().item() == pytest.approx(1, rel=1e-4)   # one scale for all pixels


def test_training_reduces_the_reconstruction_loss(synthetic):
    torch.manual_seed(0)
    scale = (synthetic - synthetic.mean(0)).square().mean().sqrt().item()
    untrained = BinaryAutoencoder(synthetic.mean(0), scale, bits=16, hidden=64)
    before = reconstruction_loss(untrained, synthetic)
    model, losses = train_autoencoder(synthetic, bits=16, hidden=64, epochs=60)
    after = reconstruction_loss(model, synthetic)
    assert before > 0.9          # about the mean square of a scaled vector, or more
    assert after < 0.25 * before, (before, after)
    assert losses[-1] < 0.5 * losses[0] and len(losses) == 60


def test_training_is_repeatable_and_leaves_the_global_generator_alone(synthetic):
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a, losses_a = train_autoencoder(synthetic, bits=8, epochs=2, seed=5)
    assert torch.equal(torch.rand(1), expected)
    b, losses_b = train_autoencoder(synthetic, bits=8, epochs=2, seed=5)
    assert losses_a == losses_b and torch.equal(a.encode(synthetic), b.encode(synthetic))


def test_a_constant_input_gives_no_nan_and_all_constant_inputs_an_error():
    x = torch.randn(40, 5)
    x[:, 2] = 0.0      # e.g. an fc7 unit that never fires
    model, losses = train_autoencoder(x, bits=4, epochs=3)
    assert all(loss == loss for loss in losses) and not model.scaled(x).isnan().any()
    with pytest.raises(ValueError, match="all the same"):
        train_autoencoder(torch.ones(10, 5))


def test_hamming_distances_on_a_hand_made_case():
    queries = bits("0000", "1111")
    pool = bits("0000", "0001", "0111", "1111", "1010")
    assert hamming_distances(queries, pool).tolist() == [[0, 1, 3, 4, 2],
                                                         [4, 3, 1, 0, 2]]


def test_hamming_ranking_is_nearest_first_with_ties_by_index():
    queries = bits("1100", "0011")
    pool = bits("0011", "1000", "1101", "1100", "0111", "0100")
    # distances to 1100: 4, 1, 1, 0, 3, 1   to 0011: 0, 3, 3, 4, 1, 3
    assert hamming_neighbours(queries, pool, k=4).tolist() == [[3, 1, 2, 5], [0, 4, 1, 2]]
    # the same answer when the queries are taken one at a time
    assert hamming_neighbours(queries, pool, k=4, batch_size=1).tolist() == [[3, 1, 2, 5], [0, 4, 1, 2]]


def test_hamming_ranking_agrees_with_a_brute_force_count():
    generator = torch.Generator().manual_seed(0)
    queries = torch.rand(7, 32, generator=generator) > 0.5
    pool = torch.rand(300, 32, generator=generator) > 0.5
    found = hamming_neighbours(queries, pool, k=10)
    for q, row in zip(queries, found):
        counts = [(q != p).sum().item() for p in pool]
        expected = sorted(range(len(pool)), key=lambda i: (counts[i], i))[:10]
        assert row.tolist() == expected


def test_precision_at_k_on_a_hand_made_case():
    pool_labels = torch.tensor([0, 0, 1, 1, 2])
    query_labels = torch.tensor([0, 1, 2])
    neighbours = torch.tensor([[0, 1, 2],     # two of three share class 0
                               [2, 3, 4],     # two of three share class 1
                               [0, 2, 3]])    # none shares class 2
    shares = precision_at_k(neighbours, query_labels, pool_labels)
    torch.testing.assert_close(shares, torch.tensor([2 / 3, 2 / 3, 0.0]))
    assert shares.mean().item() == pytest.approx(4 / 9)


def test_bad_input_says_what_to_do():
    with pytest.raises(TypeError, match="bool"):
        hamming_distances(torch.zeros(2, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="same number of bits"):
        hamming_distances(bits("0101"), bits("010"))
    with pytest.raises(ValueError, match="k=9"):
        hamming_neighbours(bits("01"), bits("01", "10"), k=9)
    with pytest.raises(ValueError, match="positive whole number"):
        train_autoencoder(torch.randn(10, 4), bits=0)
    with pytest.raises(ValueError, match="at least two vectors"):
        train_autoencoder(torch.randn(4))
    with pytest.raises(ValueError, match="one row of indices per query"):
        precision_at_k(torch.tensor([[0]]), torch.tensor([0, 1]), torch.tensor([0]))
