"""Sum trees for K members, vectorized over batches: the index behind prioritized replay."""

from __future__ import annotations

import numpy as np


class SumTrees:
    """One binary sum tree per member over ``capacity`` leaves, stored as a (K, 2 L) array.

    Leaves live at positions L .. L + capacity - 1 (L the next power of two), node n holds
    tree[n] = tree[2n] + tree[2n + 1], and tree[1] is the total. Prefix-sum searches walk
    the log2(L) levels once for a whole (K, B) batch of indices. An update adds each
    changed leaf's difference to its log2(L) ancestors in one scatter-add rather than
    recomputing them level by level: a dozen numpy calls instead of a hundred, which is
    most of prioritized replay's cost at small K. The sums then carry float rounding of
    the order of 1e-16 per update; :meth:`rebuild` recomputes them exactly.
    """

    def __init__(self, members: int, capacity: int):
        self.leaf_offset = 1 << max(1, (capacity - 1).bit_length())
        self.depth = self.leaf_offset.bit_length() - 1
        self.tree = np.zeros((members, 2 * self.leaf_offset), dtype=np.float64)
        # Flat positions (row start + node) index a 1-D view: faster than 2-D fancy indexing.
        self._flat = self.tree.reshape(-1)
        self._row_start = (np.arange(members) * 2 * self.leaf_offset)[:, None]
        self._ancestor_shifts = np.arange(1, self.depth + 1)  # node >> j: its j-th ancestor

    def total(self) -> np.ndarray:
        """Sum of all leaves per member, shape (K,)."""
        return self.tree[:, 1]

    def leaves(self, indices: np.ndarray) -> np.ndarray:
        """Leaf values at ring positions ``indices`` (K, B)."""
        return self._flat[self._row_start + self.leaf_offset + indices]

    def set(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set leaves at ring positions ``indices`` (K, B) to ``values`` and refresh their
        sums; an index repeated within a row keeps its last value."""
        positions = (self._row_start + self.leaf_offset + indices).ravel()
        ordered = np.sort(positions)
        first_of_run = np.ones(ordered.shape, dtype=bool)
        np.not_equal(ordered[1:], ordered[:-1], out=first_of_run[1:])
        changed = ordered[first_of_run]  # each leaf once
        before = self._flat[changed]
        self._flat[positions] = values.ravel()
        self._add_to_ancestors(changed, self._flat[changed] - before)

    def set_column(self, index: int, values: np.ndarray) -> None:
        """Set leaf ``index`` of every member to ``values`` (K,): one ring slot, all members."""
        positions = self._row_start[:, 0] + self.leaf_offset + index
        before = self._flat[positions]
        self._flat[positions] = values
        self._add_to_ancestors(positions, self._flat[positions] - before)

    def _add_to_ancestors(self, positions: np.ndarray, delta: np.ndarray) -> None:
        """tree[a] += delta_i for every ancestor a of each leaf at flat ``positions`` (n,)."""
        row_size = 2 * self.leaf_offset
        nodes = positions % row_size
        ancestors = (positions - nodes)[:, None] + (nodes[:, None] >> self._ancestor_shifts)
        # Leaves share ancestors: add.at sums every contribution, where += keeps one.
        np.add.at(self._flat, ancestors.ravel(), np.repeat(delta, self.depth))

    def rebuild(self) -> None:
        """Recompute every internal node exactly from the leaves, level by level."""
        level = self.leaf_offset
        while level > 1:
            children = self.tree[:, level : 2 * level]
            self.tree[:, level // 2 : level] = children[:, 0::2] + children[:, 1::2]
            level //= 2

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

    #: Depth at which :meth:`find` starts walking; the levels above it hold few nodes.
    SEARCH_FROM_DEPTH = 10

    def find(self, prefix: np.ndarray) -> np.ndarray:
        """Ring positions i with sum(leaves < i) <= prefix < sum(leaves <= i), per row (K, B).

        The nodes at depth d = min(depth, SEARCH_FROM_DEPTH) split the leaves into 2^d
        consecutive ranges; one binary search of each member's running sum over them picks
        the range (with the prefix left inside it), replacing d levels of the walk; the
        walk then descends the remaining levels for the whole batch at once.
        """
        flat, rows = self._flat, self._row_start
        start_depth = min(self.depth, self.SEARCH_FROM_DEPTH)
        first = 1 << start_depth
        running = np.cumsum(self.tree[:, first : 2 * first], axis=1)
        nodes = np.empty(prefix.shape, dtype=np.int64)
        prefix = prefix.copy()
        for k, (row_running, row_prefix) in enumerate(zip(running, prefix, strict=True)):
            # side="right" skips empty ranges; a prefix at the total stays in the last one.
            j = np.minimum(np.searchsorted(row_running, row_prefix, side="right"), first - 1)
            prefix[k] -= np.where(j > 0, row_running[j - 1], 0.0)
            nodes[k] = first + j
        for _ in range(self.depth - start_depth):
            left = 2 * nodes
            left_sum = flat[rows + left]
            go_right = prefix >= left_sum
            prefix -= left_sum * go_right
            nodes = left + go_right
        return nodes - self.leaf_offset
