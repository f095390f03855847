"""Details a resident gives outside any form (classified ``inform``) start the form they
belong to: a fault is a repair, a grievance a complaint, a bare detail gets "how can I help"."""
from __future__ import annotations

import pytest

from actions.place_forms import routed_form


@pytest.fixture(autouse=True)
def property_business(monkeypatch):
    monkeypatch.setenv("KEFU_BUSINESS", "property")


@pytest.mark.parametrize("text", [
    "5号楼801 厨房下水道堵了 电话13712345678",
    "3栋2单元1201 卫生间水龙头一直滴水",
    "楼道的灯不亮",
    "家里停电了",
    "8-2-301 阳台门关不上",
])
def test_a_fault_told_outside_a_form_is_a_repair(text):
    assert routed_form(text) == "place_repair_form"


@pytest.mark.parametrize("text", ["楼上装修声太吵了", "地下车库的车位被人占了", "保安态度太差"])
def test_a_grievance_told_outside_a_form_is_a_complaint(text):
    assert routed_form(text) == "place_complaint_form"


@pytest.mark.parametrize("text", ["3栋2单元1201", "13712345678", "好的", "地下车库"])
def test_a_bare_detail_starts_nothing(text):
    assert routed_form(text) is None
