"""Tables: tickets and their audit trail, conversations and transcripts, webhook dedup.

Words follow what a support team says: a *Ticket* (工单) has *TicketEvents*; a
*Conversation* with one customer on one channel has *Messages* (the transcript).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (JSON, Column, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import declarative_base, relationship

Base = declarative_base()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Ticket(Base):
    __tablename__ = "tickets"

    id = Column(Integer, primary_key=True)
    number = Column(String(16), nullable=False, unique=True)
    kind = Column(String(16), nullable=False)           # complaint | repair | return | callback
    category = Column(String(32), nullable=False)
    priority = Column(String(8), nullable=False, default="normal")  # urgent | high | normal
    status = Column(String(16), nullable=False, default="new")
    channel = Column(String(16), nullable=False)
    customer_id = Column(String(128), nullable=False, index=True)
    description = Column(Text, nullable=False, default="")   # masked copy (bot/store/sealing.py)
    description_encrypted = Column(Text)                     # the clear text, Fernet; None: nothing to mask
    order_id = Column(String(32))
    product = Column(String(32))
    phone_encrypted = Column(Text)
    phone_masked = Column(String(16))
    address_encrypted = Column(Text)
    address_masked = Column(String(64))
    details = Column(JSON, nullable=False, default=dict)
    idempotency_key = Column(String(200), nullable=False, unique=True)
    sla_due_at = Column(DateTime(timezone=True), nullable=False)
    rating = Column(Integer)
    created_at = Column(DateTime(timezone=True), nullable=False, default=_utcnow)
    updated_at = Column(DateTime(timezone=True), nullable=False, default=_utcnow,
                        onupdate=_utcnow)
    # the agents' workspace (issue 15): search by the phone's last 4 digits (the phone itself
    # is encrypted), who has the ticket, when it was resolved/closed, the one escalation
    phone_last4 = Column(String(4))
    assignee_id = Column(Integer, ForeignKey("agents.id"))
    resolved_at = Column(DateTime(timezone=True))
    closed_at = Column(DateTime(timezone=True))
    escalated_at = Column(DateTime(timezone=True))

    events = relationship("TicketEvent", back_populates="ticket", order_by="TicketEvent.id")

    __table_args__ = (Index("ix_tickets_status_due", "status", "sla_due_at"),
                      Index("ix_tickets_created", "created_at"),
                      Index("ix_tickets_phone_last4", "phone_last4"),
                      Index("ix_tickets_order", "order_id"),
                      Index("ix_tickets_assignee", "assignee_id", "status"),
                      Index("ix_tickets_kind_status", "kind", "status", "id"))


class TicketEvent(Base):
    """Append-only history of a ticket: creation, status changes, notes, return calls."""

    __tablename__ = "ticket_events"

    id = Column(Integer, primary_key=True)
    ticket_id = Column(Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False,
                       index=True)
    at = Column(DateTime(timezone=True), nullable=False, default=_utcnow)
    kind = Column(String(24), nullable=False)   # created | status | note | return_call | rating
    actor = Column(String(64), nullable=False)
    from_status = Column(String(16))
    to_status = Column(String(16))
    note = Column(Text)                         # masked copy (bot/store/sealing.py)
    note_encrypted = Column(Text)               # the clear text, Fernet; None: nothing to mask

    ticket = relationship("Ticket", back_populates="events")


class Message(Base):
    """One line of a conversation's transcript (customer, bot or agent)."""

    __tablename__ = "messages"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(128), nullable=False)
    channel = Column(String(16), nullable=False)
    author = Column(String(16), nullable=False)          # customer | bot | agent | system
    text = Column(Text, nullable=False)                  # masked copy (bot/store/sealing.py)
    text_encrypted = Column(Text)                        # the clear text, Fernet; None: nothing to mask
    data = Column(JSON)
    # customer lines only: processing → done, or pending (Rasa was down) → replaying → done
    state = Column(String(12))
    at = Column(DateTime(timezone=True), nullable=False, default=_utcnow)

    __table_args__ = (Index("ix_messages_conversation", "conversation_id", "id"),
                      Index("ix_messages_state", "state"),
                      Index("ix_messages_author_at", "author", "at"))


class ProcessedDelivery(Base):
    """A platform delivery (WeChat MsgId, Telegram update_id) seen once, by any replica."""

    __tablename__ = "processed_deliveries"

    id = Column(Integer, primary_key=True)
    channel = Column(String(16), nullable=False)
    key = Column(String(128), nullable=False)
    reply = Column(Text)
    at = Column(DateTime(timezone=True), nullable=False, default=_utcnow)

    __table_args__ = (UniqueConstraint("channel", "key", name="uq_delivery"),)


# --- Human handoff and the agents' workspace (issue 5) ---------------------------------


class Agent(Base):
    """A person who answers customers: signs in to the console and/or claims in Telegram."""

    __tablename__ = "agents"

    id = Column(Integer, primary_key=True)
    name = Column(String(64), nullable=False, unique=True)
    display_name = Column(String(64), nullable=False, default="")
    role = Column(String(8), nullable=False, default="agent")   # agent | lead | admin
    password_hash = Column(Text)                  # scrypt; None: cannot sign in to the console
    telegram_user_id = Column(String(32), unique=True)
    active = Column(Integer, nullable=False, default=1)
    created_at = Column(DateTime(timezone=True), nullable=False, default=_utcnow)


class AgentSession(Base):
    """A console sign-in: only a hash of the cookie's random token is stored."""

    __tablename__ = "agent_sessions"

    id = Column(Integer, primary_key=True)
    token_hash = Column(String(64), nullable=False, unique=True)
    agent_id = Column(Integer, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False,
                      index=True)
    created_at = Column(DateTime(timezone=True), nullable=False, default=_utcnow)
    expires_at = Column(DateTime(timezone=True), nullable=False)


class Handoff(Base):
    """One stretch of a conversation handled by a person: queued → claimed → closed."""

    __tablename__ = "handoffs"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(128), nullable=False, index=True)
    channel = Column(String(16), nullable=False)
    user_id = Column(String(128), nullable=False)
    ticket_number = Column(String(16))
    reason = Column(String(32), nullable=False, default="request_human")
    priority = Column(String(8), nullable=False, default="normal")
    status = Column(String(8), nullable=False, default="queued")   # queued | claimed | closed
    agent_id = Column(Integer, ForeignKey("agents.id"))
    created_at = Column(DateTime(timezone=True), nullable=False, default=_utcnow)
    claimed_at = Column(DateTime(timezone=True))
    closed_at = Column(DateTime(timezone=True))
    awaiting_rating = Column(Integer, nullable=False, default=0)
    last_read_message_id = Column(Integer, nullable=False, default=0)
    telegram_card_id = Column(String(32))        # the card's message id in the agents' group
    first_reply_at = Column(DateTime(timezone=True))   # the first human reply (reports: FRT)

    __table_args__ = (Index("ix_handoffs_status", "status", "id"),
                      Index("ix_handoffs_created", "created_at"))


class AgentOutbox(Base):
    """Every message that leaves the gateway outside a turn: the agent side (Telegram group,
    WeCom robot) and pushes to customers (agents' replies, notices, late answers).

    Rows of one ``order_key`` (a conversation, a handoff's thread) go out in id order; a row
    that fails waits ``next_attempt_at`` (backoff per row) and holds back only the rows of
    its own key. A row the target refuses for good, or that failed ``KEFU_OUTBOX_MAX_ATTEMPTS``
    times, is dead (``dead_at``, ``last_error``): shown to agents, retried on request.
    (Table ``outbox`` replaced ``agent_outbox`` in revision 0004.)
    """

    __tablename__ = "outbox"

    id = Column(Integer, primary_key=True)
    target = Column(String(40), nullable=False)          # telegram | wecom | customer:<channel>
    handoff_id = Column(Integer)
    order_key = Column(String(160))                      # None: no order with other rows
    payload = Column(JSON, nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False, default=_utcnow)
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(DateTime(timezone=True))    # None: now
    last_error = Column(String(300))
    delivered_at = Column(DateTime(timezone=True))
    dead_at = Column(DateTime(timezone=True))

    __table_args__ = (Index("ix_outbox_waiting", "target", "delivered_at", "dead_at", "id"),
                      Index("ix_outbox_dead", "dead_at"))


Outbox = AgentOutbox


class TelegramLink(Base):
    """Which handoff a message in the agents' group belongs to (for reply-to threads)."""

    __tablename__ = "telegram_links"

    id = Column(Integer, primary_key=True)
    chat_id = Column(String(32), nullable=False)
    message_id = Column(String(32), nullable=False)
    handoff_id = Column(Integer, nullable=False)

    __table_args__ = (UniqueConstraint("chat_id", "message_id", name="uq_telegram_link"),)


class SlaBreach(Base):
    """A ticket's first SLA breach (a clock missed, bot/store/sla_clocks.py), once per ticket."""

    __tablename__ = "sla_breaches"

    id = Column(Integer, primary_key=True)
    ticket_id = Column(Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False,
                       unique=True)
    at = Column(DateTime(timezone=True), nullable=False, default=_utcnow)


# --- Channel connectors (issue 4) -------------------------------------------------------


class PlatformToken(Base):
    """A platform's shared access token (WeChat ``access_token``), one row per app.

    Every gateway replica reads the same row; a refresh is claimed with a short lease
    (compare-and-set on ``lease_until``) so only one replica asks the platform at a time.
    """

    __tablename__ = "platform_tokens"

    name = Column(String(64), primary_key=True)          # e.g. "wechat:<appid>"
    token = Column(Text)
    expires_at = Column(DateTime(timezone=True))
    lease_until = Column(DateTime(timezone=True))        # a refresh is in progress until then
    updated_at = Column(DateTime(timezone=True), nullable=False, default=_utcnow,
                        onupdate=_utcnow)


# --- 微信客服, WeCom customer service (issue 17) --------------------------------------------


class KfCursor(Base):
    """One 微信客服 account's ``kf/sync_msg`` cursor, shared by every gateway replica.

    ``cursor`` moves only after the messages before it are in the transcript. One replica
    at a time pulls (``lease_owner`` until ``lease_until``, compare-and-set); a callback
    counts in ``requested`` and a pass that started after it sets ``served``, so a
    callback that arrives while another replica pulls is never left unread.
    """

    __tablename__ = "kf_cursors"

    open_kfid = Column(String(64), primary_key=True)
    cursor = Column(String(128))                   # next_cursor of the last page written
    sync_token = Column(String(160))               # the last callback's Token (valid 10 min)
    token_at = Column(DateTime(timezone=True))
    requested = Column(Integer, nullable=False, default=0)
    served = Column(Integer, nullable=False, default=0)
    lease_owner = Column(String(64))
    lease_until = Column(DateTime(timezone=True))
    updated_at = Column(DateTime(timezone=True), nullable=False, default=_utcnow,
                        onupdate=_utcnow)


class KfSession(Base):
    """A customer with one 微信客服 account: WeCom's session state and the reply budget.

    WeCom lets the API send only while the session is 0 (new) or 1 (assistant), within
    48 h of the customer's last message and at most 5 times per customer message.
    """

    __tablename__ = "kf_sessions"

    id = Column(Integer, primary_key=True)
    open_kfid = Column(String(64), nullable=False)
    external_userid = Column(String(128), nullable=False)
    service_state = Column(Integer)                # 0-4 as WeCom numbers them; None: unknown
    state_at = Column(DateTime(timezone=True))
    servicer_userid = Column(String(64))
    last_customer_at = Column(DateTime(timezone=True))
    replies = Column(Integer, nullable=False, default=0)   # sent since the last customer message
    updated_at = Column(DateTime(timezone=True), nullable=False, default=_utcnow,
                        onupdate=_utcnow)

    __table_args__ = (UniqueConstraint("open_kfid", "external_userid", name="uq_kf_session"),
                      Index("ix_kf_sessions_user", "external_userid", "last_customer_at"))


class KfOutbox(Base):
    """Replies on their way to a 微信客服 customer (``kf/send_msg``, ``send_msg_on_event``).

    A reply is written here before it is sent and deleted once WeCom took it (or it was
    found unsendable and said so in the transcript), so a gateway that dies mid-send has
    it sent by the next one. ``reserved``: it has taken its place in WeCom's 5-reply budget.
    """

    __tablename__ = "kf_outbox"

    id = Column(Integer, primary_key=True)
    open_kfid = Column(String(64), nullable=False)
    external_userid = Column(String(128), nullable=False)
    conversation_id = Column(String(128), nullable=False)
    kind = Column(String(8), nullable=False, default="text")       # text | welcome
    code = Column(String(128))                                     # the welcome_code
    content = Column(Text, nullable=False)
    msgid = Column(String(32), nullable=False)
    status = Column(String(8), nullable=False, default="queued")   # queued | sending
    reserved = Column(Integer, nullable=False, default=0)
    attempts = Column(Integer, nullable=False, default=0)
    lease_until = Column(DateTime(timezone=True))
    created_at = Column(DateTime(timezone=True), nullable=False, default=_utcnow)

    __table_args__ = (Index("ix_kf_outbox_status", "status", "id"),)


# --- Retraining from real conversations (issue 6) -----------------------------------------


class Annotation(Base):
    """An admin's verdict on one customer line: the intent it meant (it leaves the inbox)."""

    __tablename__ = "annotations"

    id = Column(Integer, primary_key=True)
    message_id = Column(Integer, nullable=False, unique=True)
    conversation_id = Column(String(128), nullable=False)
    intent = Column(String(64), nullable=False)
    example = Column(Text, nullable=False)               # as written to data/nlu/annotated.yml
    actor = Column(String(64), nullable=False)
    at = Column(DateTime(timezone=True), nullable=False, default=_utcnow)


class TrainingRun(Base):
    """One requested training: queued → running → succeeded | failed (with the error)."""

    __tablename__ = "training_runs"

    id = Column(Integer, primary_key=True)
    status = Column(String(12), nullable=False, default="queued")
    mode = Column(String(12), nullable=False, default="full")      # full | finetune
    requested_by = Column(String(64), nullable=False)
    base_model = Column(Text)
    model = Column(Text)
    error = Column(Text)
    seconds = Column(Float)
    created_at = Column(DateTime(timezone=True), nullable=False, default=_utcnow)
    started_at = Column(DateTime(timezone=True))
    finished_at = Column(DateTime(timezone=True))


class ModelActivation(Base):
    """Audit log: a model made live (or rolled back to), by whom, with its scores."""

    __tablename__ = "model_activations"

    id = Column(Integer, primary_key=True)
    at = Column(DateTime(timezone=True), nullable=False, default=_utcnow)
    actor = Column(String(64), nullable=False)
    kind = Column(String(12), nullable=False)                      # activate | rollback
    model = Column(Text, nullable=False)
    previous_model = Column(Text)
    scores = Column(JSON)
    override_reason = Column(Text)


class LookupCounter(Base):
    """Attempts of one key in its current window, shared by every process and replica
    (customers' ticket look-ups by number: bot/store/lookups.py). The key is a hash: a
    conversation id identifies a person and is not kept here in clear."""

    __tablename__ = "lookup_counters"

    key = Column(String(64), primary_key=True)          # blake2b of "<what>:<who>"
    window_start = Column(DateTime(timezone=True), nullable=False)
    count = Column(Integer, nullable=False, default=0)


# --- Hardening (issue 18) -----------------------------------------------------------------


class SignInThrottle(Base):
    """Failed sign-ins per key (``name:``, ``pair:`` name+address, ``addr:``), shared by replicas.

    After a key's free failures each further one pushes ``not_before`` out (a delay that
    doubles up to a cap): an attempt before it is refused without checking the password.
    """

    __tablename__ = "sign_in_throttle"

    key = Column(String(200), primary_key=True)
    failures = Column(Integer, nullable=False, default=0)
    last_failure_at = Column(DateTime(timezone=True))
    not_before = Column(DateTime(timezone=True))


class Lease(Base):
    """A named job that one process across all replicas runs at a time (compare-and-set on
    ``until``; the holder renews it), with the job's own resume point (``cursor``)."""

    __tablename__ = "leases"

    name = Column(String(64), primary_key=True)          # e.g. "telegram-agents-poll"
    owner = Column(String(64))
    until = Column(DateTime(timezone=True))
    cursor = Column(String(64))                          # e.g. the next getUpdates offset



# The service team's workspace (issue 15): SLA clocks, return calls, satisfaction, bot misses.
from bot.store.schema_workspace import (BotMiss, ReportDay, ReportMark, ReportState,  # noqa: E402,F401
                                        ReturnCall, Satisfaction, SlaClock)


class Erasure(Base):
    """Audit log of the right to deletion (bot/store/erasure.py): who erased a customer, when,
    from where, and how much; the customer only as the one-way hash their rows now carry."""

    __tablename__ = "erasures"

    id = Column(Integer, primary_key=True)
    at = Column(DateTime(timezone=True), nullable=False, default=_utcnow)
    actor = Column(String(64), nullable=False)          # the admin's name, or cli:<os user>
    via = Column(String(8), nullable=False)             # console | cli
    subject = Column(String(64), nullable=False)        # anonymous_id(conversation id)
    counts = Column(JSON, nullable=False, default=dict)
    reason = Column(String(200))


# Free text that may hold a phone or an address: masked copy + sealed clear text, on every
# insert and update, whoever writes it (bot/store/sealing.py).
from bot.store import sealing  # noqa: E402

sealing.register(Message, Ticket, TicketEvent)
