"""Seeds derived from a member's seed, so that each random stream has its own generator.

No global RNG is used anywhere in actlab: a result never depends on run order.
"""

from __future__ import annotations

import hashlib

__all__ = ["derive_seed"]


def derive_seed(seed: int, *tags: object) -> int:
    """A 63-bit seed determined by ``seed`` and ``tags`` (e.g. ``(seed, "batches", epoch)``).

    Different tags give unrelated streams, unlike ``seed + k``, which collides with the seed
    of another member.
    """
    text = repr((int(seed), *tags)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 1
