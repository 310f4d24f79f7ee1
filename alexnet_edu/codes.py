"""Short binary codes for retrieval: an auto-encoder squeezes a vector (fc7's 4,096 numbers, or an
image's 784 pixels) into a few dozen bits, and images are compared by how many bits differ.

The AlexNet paper suggests this for its last hidden layer (section 6.1): Euclidean distance between
4,096-dimensional real vectors is inefficient, and an auto-encoder trained to compress them to short
binary codes should retrieve much better than one trained on raw pixels (Krizhevsky & Hinton, 2011).

The code layer is a sigmoid whose output is rounded to 0 or 1 on the way forward; on the way back the
rounding is skipped, as if it were the identity (a "straight-through" gradient), so the decoder learns
to reconstruct from the very bits that retrieval compares. Everything here runs in seconds on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BinaryAutoencoder", "hamming_distances", "hamming_neighbours", "precision_at_k",
           "reconstruction_loss", "train_autoencoder"]


class BinaryAutoencoder(nn.Module):
    """vector → ``bits`` binary units → vector, with one hidden layer of ``hidden`` ReLUs each side.

    Inputs are flattened (a uint8 image batch (N, 1, 28, 28) becomes (N, 784)), centred on the mean
    training vector ``mean`` and divided by one number, ``scale`` (the training vectors' standard
    deviation over all their entries), both stored with the model. One scale for every entry keeps the
    geometry of the vectors: the squared reconstruction error is the squared Euclidean distance between
    a vector and its reconstruction, divided by ``scale`` squared. The decoder reconstructs the scaled
    vector.
    """

    def __init__(self, mean: torch.Tensor, scale: float, bits: int = 32, hidden: int = 64):
        super().__init__()
        size = mean.numel()
        if not scale > 0:
            raise ValueError(f"scale={scale}: the training vectors are all the same, so there "
                             "is nothing to encode; pass vectors that differ")
        self.register_buffer("mean", mean.flatten().float())
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.encoder = nn.Sequential(nn.Linear(size, hidden), nn.ReLU(), nn.Linear(hidden, bits))
        self.decoder = nn.Sequential(nn.Linear(bits, hidden), nn.ReLU(), nn.Linear(hidden, size))

    def scaled(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1).float() - self.mean) / self.scale

    def binary_code(self, x: torch.Tensor) -> torch.Tensor:
        """The code as floats 0.0 or 1.0; gradients pass the rounding as if it were not there."""
        p = torch.sigmoid(self.encoder(self.scaled(x)))
        return p + (p.round() - p).detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.binary_code(x))

    @torch.no_grad()
    def encode(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Bool codes (N, bits): bit i is set where the code unit's sigmoid is above 0.5."""
        return torch.cat([self.encoder(self.scaled(chunk)) > 0 for chunk in x.split(batch_size)])


def _check_vectors(x: torch.Tensor, what: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or len(x) < 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what}: expected a tensor of at least two vectors, shape (N, ...), got {shape}; "
                         "pass the whole training set, e.g. hidden_features(...) or data.train_images")


def train_autoencoder(x: torch.Tensor, bits: int = 32, *, hidden: int = 64, epochs: int = 10,
                      batch_size: int = 128, lr: float = 1e-3,
                      seed: int = 0) -> tuple[BinaryAutoencoder, list[float]]:
    """A :class:`BinaryAutoencoder` fitted to the rows of ``x`` (mean squared error of the scaled
    vector, Adam), and its training loss after each epoch (the mean over that epoch's batches).
    ``seed`` fixes the initial weights and the order of the batches."""
    _check_vectors(x, "train_autoencoder")
    if not (isinstance(bits, int) and bits > 0):
        raise ValueError(f"bits={bits!r}: ask for a positive whole number of bits, e.g. 32")
    x = x.flatten(1).float()
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BinaryAutoencoder(x.mean(0), (x - x.mean(0)).square().mean().sqrt().item(), bits,
                                  hidden).to(x.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for _ in range(epochs):
        total = 0.0
        order = torch.randperm(len(x), generator=generator).to(x.device)
        for batch in x[order].split(batch_size):
            loss = nn.functional.mse_loss(model(batch), model.scaled(batch))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / len(x))
    return model.eval(), losses


@torch.no_grad()
def reconstruction_loss(model: BinaryAutoencoder, x: torch.Tensor) -> float:
    """Mean squared error of the scaled rows of ``x`` rebuilt from their binary codes."""
    return nn.functional.mse_loss(model(x), model.scaled(x)).item()


def hamming_distances(queries: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """(len(queries), len(pool)) integers: in how many bits each query's code differs from each
    pool code. Codes are bool (N, bits), as :meth:`BinaryAutoencoder.encode` returns them."""
    if queries.dtype != torch.bool or pool.dtype != torch.bool:
        raise TypeError(f"codes must be bool tensors (N, bits), got {queries.dtype} and {pool.dtype}: "
                        "use BinaryAutoencoder.encode, or compare with > 0.5 first")
    if queries.dim() != 2 or pool.dim() != 2 or queries.shape[1] != pool.shape[1]:
        raise ValueError(f"codes of shapes {tuple(queries.shape)} and {tuple(pool.shape)}: both must be "
                         "(N, bits) with the same number of bits")
    q, p = queries.float(), pool.float()
    # a bit differs where the query has 1 and the pool 0, or 0 and 1: two small products, exact
    return (q @ (1 - p).T + (1 - q) @ p.T).round().long()


def hamming_neighbours(queries: torch.Tensor, pool: torch.Tensor, k: int = 5,
                       batch_size: int = 256) -> torch.Tensor:
    """Indices (len(queries), k) of the ``k`` pool codes nearest to each query in Hamming distance,
    nearest first. Distances are whole numbers and often tie: among equals, the lower pool index
    comes first, so the result does not depend on chance."""
    if not 0 < k <= len(pool):
        raise ValueError(f"k={k}: ask for between 1 and {len(pool)} neighbours (the pool's size)")
    order = torch.arange(len(pool), device=pool.device)
    found = []
    for chunk in queries.split(batch_size):
        key = hamming_distances(chunk, pool) * len(pool) + order   # distance first, then index
        found.append(key.topk(k, largest=False).indices)
    return torch.cat(found)


def precision_at_k(neighbours: torch.Tensor, query_labels: torch.Tensor,
                   pool_labels: torch.Tensor) -> torch.Tensor:
    """For each query, the fraction of its retrieved pool items (a row of ``neighbours``, k indices)
    that share its label; ``.mean()`` of it is precision at k over the queries."""
    if neighbours.dim() != 2 or len(neighbours) != len(query_labels):
        raise ValueError(f"neighbours {tuple(neighbours.shape)}: expected one row of indices per query "
                         f"({len(query_labels)} queries)")
    return (pool_labels[neighbours] == query_labels[:, None]).float().mean(dim=1)
