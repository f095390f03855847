"""Personal data: erased on request, never in logs in clear."""


import pytest
from sqlalchemy import create_engine, select, text

from bot.store.engine import get_engine
from bot.store.erasure import anonymous_id, erase_customer
from bot.store.schema import AgentOutbox, Handoff, Message, Ticket
from bot.store.tickets import TicketStore

pytestmark = pytest.mark.e2e



def test_erasure_leaves_nothing_of_the_customer(assistant, customer):
    customer.say("快递把我的沙发弄坏了，我要投诉")
    customer.say("没有")
    customer.say("15912345678")
    [ticket] = TicketStore().for_customer(customer.conversation_id)
    customer.say("转人工")                     # a handoff: relayed to the agents' side too
    tracker_url = f"sqlite:///{assistant.tracker_db}"
    tracker = create_engine(tracker_url, future=True)
    with tracker.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM events WHERE sender_id = :s"),
                              {"s": customer.conversation_id}).scalar_one()
    assert before > 0

    counts = erase_customer(customer.conversation_id, tracker_url=tracker_url)
    assert counts["transcript_lines"] > 0 and counts["tickets_anonymised"] == 1   # queued only: no record yet
    assert counts["handoffs_anonymised"] == 1

    with tracker.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events WHERE sender_id = :s"),
                            {"s": customer.conversation_id}).scalar_one() == 0
    with get_engine().connect() as conn:
        assert conn.execute(select(Message.id).where(
            Message.conversation_id == customer.conversation_id)).first() is None
        row = conn.execute(select(Ticket).where(Ticket.number == ticket.number)).one()
        dump = " ".join(str(v) for v in row)
    assert "15912345678" not in dump and "159****5678" not in dump
    assert customer.conversation_id not in dump and anonymous_id(customer.conversation_id) in dump
    assert row.kind == "complaint" and row.category == "物流配送"   # statistics kept
    with get_engine().connect() as conn:
        for table in (Handoff.__table__, AgentOutbox.__table__, Message.__table__):
            dump = " ".join(" ".join(str(v) for v in r) for r in conn.execute(select(table)))
            assert customer.conversation_id not in dump, table.name
            assert "15912345678" not in dump and "沙发弄坏" not in dump, table.name
    tracker.dispose()

