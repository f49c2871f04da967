"""Sum trees for K members, vectorized over batches: the index behind prioritized replay."""

from __future__ import annotations

import numpy as np


class SumTrees:
    """One binary sum tree per member over ``capacity`` leaves, stored as a (K, 2 L) array.

    Leaves live at positions L .. L + capacity - 1 (L the next power of two), node n holds
    tree[n] = tree[2n] + tree[2n + 1], and tree[1] is the total. Updates and prefix-sum
    searches walk the log2(L) levels once for a whole (K, B) batch of indices.
    """

    def __init__(self, members: int, capacity: int):
        self.leaf_offset = 1 << max(1, (capacity - 1).bit_length())
        self.depth = self.leaf_offset.bit_length() - 1
        self.tree = np.zeros((members, 2 * self.leaf_offset), dtype=np.float64)
        self._members = np.arange(members)[:, None]

    def total(self) -> np.ndarray:
        """Sum of all leaves per member, shape (K,)."""
        return self.tree[:, 1]

    def leaves(self, indices: np.ndarray) -> np.ndarray:
        """Leaf values at ring positions ``indices`` (K, B)."""
        return self.tree[self._members, indices + self.leaf_offset]

    def set(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set leaves at ring positions ``indices`` (K, B) to ``values`` and refresh their sums."""
        nodes = indices + self.leaf_offset
        k = np.broadcast_to(self._members, nodes.shape)
        self.tree[k, nodes] = values
        for _ in range(self.depth):
            nodes = nodes >> 1
            self.tree[k, nodes] = self.tree[k, 2 * nodes] + self.tree[k, 2 * nodes + 1]

    def find(self, prefix: np.ndarray) -> np.ndarray:
        """Ring positions i with sum(leaves < i) <= prefix < sum(leaves <= i), per row (K, B)."""
        nodes = np.ones(prefix.shape, dtype=np.int64)
        k = np.broadcast_to(self._members, nodes.shape)
        prefix = prefix.copy()
        for _ in range(self.depth):
            left = 2 * nodes
            left_sum = self.tree[k, left]
            go_right = prefix >= left_sum
            prefix -= np.where(go_right, left_sum, 0.0)
            nodes = left + go_right
        return nodes - self.leaf_offset
