"""The property-service centre (KEFU_BUSINESS=property) through the gateway, with its really
trained model: residents ask about fees, report repairs and complain; the answers carry the
property pack's facts and promises, and the tickets hold what they said.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine

from bot.gateway.ports import free_port
from bot.profile import places
from bot.profile.pack import load
from bot.store.tickets import TicketStore
from tests.conftest import Customer

pytestmark = pytest.mark.e2e

PACK = load("property")
FACTS = yaml.safe_load(PACK.path("profile").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def property_stack(business_models, stack_env):
    from bot.gateway.launch import Stack

    work = Path(stack_env["_work"]) / "property"
    work.mkdir(exist_ok=True)
    env = {k: v for k, v in stack_env.items() if not k.startswith("_")}
    env.update(KEFU_BUSINESS="property", KEFU_DATABASE_URL=f"sqlite:///{work}/property.db")
    stack = Stack(model=business_models("property"), gateway_port=free_port(), rasa_port=free_port(),
                  action_port=free_port(), log_dir=work / "logs", tracker_db=str(work / "trackers.db"),
                  env=env)
    stack.start(timeout=240)
    stack.tickets = TicketStore(create_engine(env["KEFU_DATABASE_URL"], future=True))
    yield stack
    stack.stop()


@pytest.fixture
def resident(property_stack, request):
    name = request.node.name.replace("[", "-").replace("]", "")[:50]
    return Customer(property_stack.url, f"p-{name}")


def tickets_of(stack, resident):
    return stack.tickets.for_customer(resident.conversation_id, open_only=False)


def test_the_property_fee_question_is_answered_with_the_profiles_rate(resident):
    reply = resident.say("物业费怎么收费的？一平米多少钱")
    assert f"{FACTS['property_fee']['yuan_per_sqm_month']:g} 元".replace(" ", "") in reply.replace(" ", "")
    assert "按季度" in reply


def test_someone_stuck_in_a_lift_is_dispatched_within_30_minutes_with_the_location(property_stack, resident):
    reply = resident.say("电梯里困人了！3号楼电梯，快来人")
    for _ in range(3):                      # the form asks what it still needs (the phone)
        if "工单号" in reply:
            break
        reply = resident.say("13812345678")
    assert "30分钟" in reply and "工单号" in reply, reply
    [ticket] = tickets_of(property_stack, resident)
    full = property_stack.tickets.find(ticket.number, unmasked=True)
    assert ticket.kind == "repair" and ticket.priority == "urgent"
    assert "3号楼电梯" in full.address and full.details["location_kind"] == "shared"
    assert (ticket.sla_due_at - ticket.created_at).total_seconds() == 30 * 60


def test_a_leak_at_home_gets_the_24_hour_promise_and_the_home_is_stored(property_stack, resident):
    reply = resident.say("我要报修")
    assert "哪里" in reply or "位置" in reply or "楼栋" in reply, reply
    reply = resident.say("3栋2单元1201")
    reply = resident.say("卫生间的水龙头一直滴水，关不紧")
    reply = resident.say("我电话是 139 1234 5678")
    assert "24小时" in reply and "工单号" in reply, reply
    [ticket] = tickets_of(property_stack, resident)
    assert ticket.priority == "normal" and "1234" not in reply.split("联系您")[-1][:8]
    home = places.find_location(property_stack.tickets.find(ticket.number, unmasked=True).address)
    assert home.kind == "home" and home.parts == {"building": "3", "unit": "2", "room": "1201"}
    assert ticket.details["building"] == "3"
    assert ticket.address != "3栋2单元1201"          # shown masked, stored encrypted


def test_a_noise_complaint_is_filed_as_noise(property_stack, resident):
    reply = resident.say("我要投诉，楼上天天半夜蹦迪，吵得根本睡不着")
    for _ in range(3):
        if "工单号" in reply:
            break
        reply = resident.say("13812345678")
    assert "工单号" in reply and "噪音" in reply, reply
    [ticket] = tickets_of(property_stack, resident)
    assert ticket.kind == "complaint" and ticket.category == "噪音"


def test_a_return_request_is_refused_politely_and_files_nothing(property_stack, resident):
    reply = resident.say("我买的东西想退货")
    assert "抱歉" in reply and "退" in reply
    assert tickets_of(property_stack, resident) == []


def test_check_ticket_finds_the_repair(property_stack, resident):
    reply = resident.say("5号楼801 厨房下水道堵了 电话13712345678")
    for _ in range(3):
        if "工单号" in reply:
            break
        reply = resident.say("13712345678")
    [ticket] = tickets_of(property_stack, resident)
    reply = resident.say("我的报修处理到哪一步了")
    assert ticket.number in reply and "报修" in reply, reply
