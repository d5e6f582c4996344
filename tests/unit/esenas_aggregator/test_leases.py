"""esenas_aggregator.leases: a lease's items are kept sorted, and which results a lease holds is
found by binary search, as np.isin would find it."""

from __future__ import annotations

import numpy as np
from esenas_aggregator.leases import LeaseBook, held_mask


def test_held_mask_is_isin_on_a_closed_leases_items() -> None:
    rng = np.random.default_rng(0)
    book = LeaseBook()
    for trial in range(300):
        items = rng.choice(5_000, size=int(rng.integers(0, 20)), replace=False)
        lease = book.issue(f"w{trial}", items)
        held = book.close(lease)
        assert np.array_equal(held, np.sort(items))
        # a worker's results: some of its items (any order, repeated), and some it never held
        sent = np.concatenate([rng.permutation(items)[: int(rng.integers(0, items.size + 1))],
                               rng.integers(0, 5_000, int(rng.integers(0, 4))), items[:1]]).astype(np.uint32)
        assert np.array_equal(held_mask(sent, held), np.isin(sent.astype(np.int64), held)), trial
