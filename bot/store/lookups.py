"""Attempt counters in SQL, shared by every process and replica: "at most N per hour".

A :class:`LookupLimiter` counts attempts per key in fixed windows (``lookup_counters``), so a
limit holds across the action server's and the gateways' processes and survives restarts.
It limits customers' ticket look-ups by number (:class:`TicketLookup`, who may see which
ticket): ticket numbers cannot be enumerated from one conversation. Keys are stored hashed
(a conversation id is an identifier of a person: it is not kept here in clear).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from bot.store.engine import get_engine, retrying
from bot.store.schema import LookupCounter
from bot.store.tickets import TicketStore, TicketView


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def hashed(key: str) -> str:
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=32).hexdigest()


class LookupLimiter:
    def __init__(self, engine=None, *, limit: int, window: dt.timedelta) -> None:
        self.engine = engine or get_engine()
        self.limit, self.window = limit, window

    def attempt(self, key: str, now: dt.datetime | None = None) -> bool:
        """Count one attempt for ``key``; False (and not counted) when the window's are used up."""
        now = now or dt.datetime.now(dt.timezone.utc)
        digest = hashed(key)

        def work(session) -> bool:
            row = session.get(LookupCounter, digest, with_for_update=True)
            if row is None:
                # a new key: forget the long-expired ones while here (the table stays small)
                session.execute(delete(LookupCounter).where(
                    LookupCounter.window_start < now - 24 * self.window))
                session.add(LookupCounter(key=digest, window_start=now, count=1))
                session.flush()
                return True
            if _aware(row.window_start) <= now - self.window:
                row.window_start, row.count = now, 1
                return True
            if row.count >= self.limit:
                return False
            row.count += 1
            return True

        try:
            return retrying(work, engine=self.engine)
        except IntegrityError:      # another process inserted the same new key first
            return retrying(work, engine=self.engine)


# --- customers looking up a ticket by its number ----------------------------------------

SHOWN = "shown"                  # the customer's own ticket, or the check matched
CHECK_NEEDED = "check_needed"    # someone else's (or no such) ticket: ask for the check digits
NO_MATCH = "no_match"            # no ticket with this number *and* these check digits
LIMITED = "limited"              # too many look-ups from this conversation: try later
LOOKUPS_PER_HOUR = 10            # look-ups of tickets a conversation did not file itself


@dataclass(frozen=True)
class LookupResult:
    outcome: str
    ticket: Optional[TicketView] = None     # set only when SHOWN (masked: no personal data)


class TicketLookup:
    """Who may see a ticket found by its number, as a service desk checks it.

    The conversation that filed it (the same channel identity) sees it. Anyone else sees it
    only with the last 4 digits of the phone the ticket was filed with. Look-ups of tickets a
    conversation did not file count against ``LOOKUPS_PER_HOUR`` (shared by every replica),
    and an unknown number is answered exactly as a known one with a wrong check: neither the
    answers nor their count tell whether a number exists.
    """

    def __init__(self, tickets: TicketStore, limiter: LookupLimiter | None = None) -> None:
        self.tickets = tickets
        self.limiter = limiter or LookupLimiter(tickets.engine, limit=LOOKUPS_PER_HOUR,
                                                window=dt.timedelta(hours=1))

    def by_number(self, number: str, *, customer_id: str,
                  check_digits: Optional[str] = None) -> LookupResult:
        ticket = self.tickets.find(number)
        if ticket is not None and ticket.customer_id == customer_id:
            return LookupResult(SHOWN, ticket)
        if not self.limiter.attempt(f"ticket-lookup:{customer_id}"):
            return LookupResult(LIMITED)
        if not check_digits:
            return LookupResult(CHECK_NEEDED)
        phone = self.tickets.find(number, unmasked=True).phone if ticket is not None else None
        expected = (phone or "")[-4:]
        if len(expected) == 4 and hmac.compare_digest(expected, check_digits):
            return LookupResult(SHOWN, ticket)
        return LookupResult(NO_MATCH)
