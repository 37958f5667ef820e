"""A random stream that is the same on every platform and every library version.

The sparse head connections and the Fourier-feature matrix are regenerated from the seed
when a model is loaded, so they must not depend on PyTorch's or NumPy's generators (whose
streams may change between releases). SplitMix64 (Steele, Lea & Flood 2014) is a few lines
of unsigned 64-bit arithmetic; NumPy's uint64 operations wrap exactly like C's.
"""

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix64(seed: int, count: int, stream: int = 0) -> np.ndarray:
    """`count` uint64 values of SplitMix64 started from (seed, stream)."""
    start = np.uint64((seed * 0x100000001B3 + stream * 0xC2B2AE3D27D4EB4F) % 2**64)
    with np.errstate(over="ignore"):
        z = start + _GOLDEN * np.arange(1, count + 1, dtype=np.uint64)
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def uniform(seed: int, count: int, stream: int = 0) -> np.ndarray:
    """`count` float64 values in [0, 1) from the top 53 bits of the stream."""
    return (splitmix64(seed, count, stream) >> np.uint64(11)).astype(np.float64) / 2.0**53


def normal(seed: int, count: int, stream: int = 0) -> np.ndarray:
    """`count` standard normal values (Box–Muller on the uniform stream)."""
    half = (count + 1) // 2
    u = uniform(seed, 2 * half, stream)
    u1, u2 = 1.0 - u[:half], u[half:]  # u1 in (0, 1]: log is finite
    r = np.sqrt(-2.0 * np.log(u1))
    return np.concatenate([r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)])[:count]


def choose_subsets(seed: int, rows: int, population: int, k: int, stream: int = 0) -> np.ndarray:
    """For each of `rows` rows, `k` distinct indices out of `population`, sorted ascending.

    Every row draws a random key per candidate and keeps the k smallest keys (a uniform
    k-subset); a stable sort makes ties, if any, resolve the same way everywhere.
    """
    if not 1 <= k <= population:
        raise ValueError(f"k={k} must be between 1 and population={population}")
    if k == population:
        return np.tile(np.arange(population, dtype=np.int64), (rows, 1))
    keys = splitmix64(seed, rows * population, stream).reshape(rows, population)
    chosen = np.argsort(keys, axis=1, kind="stable")[:, :k]
    return np.sort(chosen, axis=1).astype(np.int64)
