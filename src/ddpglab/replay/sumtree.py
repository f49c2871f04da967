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
        # Flat positions (row start + node) index a 1-D view: faster than 2-D fancy indexing.
        self._flat = self.tree.reshape(-1)
        self._row_start = (np.arange(members) * 2 * self.leaf_offset)[:, None]

    def total(self) -> np.ndarray:
        """Sum of all leaves per member, shape (K,)."""
        return self.tree[:, 1]

    def leaves(self, indices: np.ndarray) -> np.ndarray:
        """Leaf values at ring positions ``indices`` (K, B)."""
        return self._flat[self._row_start + self.leaf_offset + indices]

    def set(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set leaves at ring positions ``indices`` (K, B) to ``values`` and refresh their sums."""
        flat, rows = self._flat, self._row_start
        nodes = indices + self.leaf_offset
        flat[rows + nodes] = values
        for _ in range(self.depth):
            nodes = nodes >> 1
            left = rows + 2 * nodes
            flat[rows + nodes] = flat[left] + flat[left + 1]

    def set_column(self, index: int, values: np.ndarray) -> None:
        """Set leaf ``index`` of every member to ``values`` (K,): one ring slot, all members."""
        node = index + self.leaf_offset
        self.tree[:, node] = values
        for _ in range(self.depth):
            node >>= 1
            self.tree[:, node] = self.tree[:, 2 * node] + self.tree[:, 2 * node + 1]

    def prefix_sum(self, index: np.ndarray) -> np.ndarray:
        """sum(leaves < index) per member, for ``index`` (K, 1) in [0, capacity]."""
        flat, rows = self._flat, self._row_start
        nodes = np.minimum(index, self.leaf_offset - 1) + self.leaf_offset
        total = np.zeros(index.shape)
        for _ in range(self.depth):
            right_child = (nodes & 1).astype(bool)
            # a right child's prefix includes its left sibling's whole subtree
            total += np.where(right_child, flat[rows + nodes - 1], 0.0)
            nodes >>= 1
        return np.where(index >= self.leaf_offset, self.tree[:, 1:2], total)

    def find(self, prefix: np.ndarray) -> np.ndarray:
        """Ring positions i with sum(leaves < i) <= prefix < sum(leaves <= i), per row (K, B)."""
        flat, rows = self._flat, self._row_start
        nodes = np.ones(prefix.shape, dtype=np.int64)
        prefix = prefix.copy()
        for _ in range(self.depth):
            left = 2 * nodes
            left_sum = flat[rows + left]
            go_right = prefix >= left_sum
            prefix -= left_sum * go_right
            nodes = left + go_right
        return nodes - self.leaf_offset
