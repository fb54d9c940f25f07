"""Fixtures for the accounting tests (helpers live in ``acct_helpers``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from adapters.ledger_sqlite import SqliteLedgerStore


@pytest.fixture
def store() -> Iterator[Callable[[], SqliteLedgerStore]]:
    made: list[SqliteLedgerStore] = []

    def _make() -> SqliteLedgerStore:
        s = SqliteLedgerStore(":memory:")
        made.append(s)
        return s

    yield _make
    for s in made:
        s.close()
