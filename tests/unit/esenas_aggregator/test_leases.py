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


def test_a_kept_lease_stays_open_beside_its_workers_next_lease() -> None:
    """A push with keep_lease (a relay's round whose stragglers are still out) leaves the lease
    open, and its worker may lease again without abandoning it; one kept lease per worker."""
    book = LeaseBook()
    first = book.issue("relay", [3, 1, 2])
    assert book.keep(first).tolist() == [1, 2, 3]
    assert book.abandon("relay").size == 0  # the kept lease is not the worker's current one
    second = book.issue("relay", [7, 8])
    assert book.state(first, "relay").name == "OPEN" and book.state(second, "relay").name == "OPEN"
    assert book.keep(second).tolist() == [7, 8]  # keeping another closes the first
    assert book.state(first, "relay").name == "CLOSED"
    assert book.close(second).tolist() == [7, 8] and book.state(second, "relay").name == "CLOSED"
    assert book.keep(second).size == 0  # nothing to keep once closed
