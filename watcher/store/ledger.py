"""The credit ledger: what each poll spent and the balance the API reported.

Budgets are sums over this ledger (this month, this watch), so a restart forgets no
spending; a poll's line is written in the poll's own transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from watcher.store.database import Database
from watcher.store.tables import CreditRow


class Ledger:
    """Credits spent and balances seen."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self, s: Session, at: datetime, watch: str | None, credits: int, remaining: int | None
    ) -> None:
        """In the caller's transaction: one line, unless it says nothing (free, no balance)."""
        if credits or remaining is not None:
            s.add(CreditRow(at=at, watch=watch, credits=credits, remaining=remaining))

    def spent(
        self, *, since: datetime, until: datetime | None = None, watch: str | None = None
    ) -> int:
        """Credits spent in ``[since, until)``, by every watch or by one."""
        with self._db.read() as s:
            query = select(func.coalesce(func.sum(CreditRow.credits), 0)).where(
                col(CreditRow.at) >= since
            )
            if until is not None:
                query = query.where(col(CreditRow.at) < until)
            if watch is not None:
                query = query.where(col(CreditRow.watch) == watch)
            return int(s.exec(query).one() or 0)

    def last_balance(self) -> int | None:
        """The balance the API reported last, if it ever did."""
        with self._db.read() as s:
            row = s.exec(
                select(col(CreditRow.remaining))
                .where(col(CreditRow.remaining).is_not(None))
                .order_by(col(CreditRow.id).desc())
                .limit(1)
            ).first()
            return int(row) if row is not None else None
