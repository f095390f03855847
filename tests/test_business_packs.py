"""Business packs (KEFU_BUSINESS): one setting picks everything a business states and is
trained on; a new pack is a copy; make validate names what is missing by file and key."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bot.business.checks import problems
from bot.business.cli import new
from bot.profile import pack as packs
from bot.profile import places
from bot.training import assemble
from bot.training.model_cache import INPUTS, data_hash

ROOT = Path(__file__).resolve().parent.parent


def project_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    for entry in INPUTS:
        src, dst = ROOT / entry, copy / entry
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        elif src.exists():
            shutil.copy(src, dst)
    return copy


def test_the_setting_picks_the_pack_and_the_default_is_the_shop(monkeypatch):
    assert packs.load().name == "shop"
    monkeypatch.setenv("KEFU_BUSINESS", "property")
    assert packs.load().title == "示例花园物业服务中心"
    from bot.profile.business import load_profile
    assert load_profile()["property_fee"]["yuan_per_sqm_month"] == 2.5
    monkeypatch.setenv("KEFU_BUSINESS", "bakery")
    with pytest.raises(packs.PackError, match="no business pack 'bakery'"):
        packs.load()


def test_both_packs_are_complete():
    assert problems(packs.load("shop")) == []
    assert problems(packs.load("property")) == []


def test_the_property_domain_has_a_location_and_no_orders_or_products():
    domain = assemble.domain_of(packs.load("property"))
    entities = {assemble.entry_name(e) for e in domain["entities"]}
    assert "location" in entities and not {"order_id", "product"} & entities
    assert "return_form" not in domain["forms"]
    assert domain["forms"]["place_repair_form"]["required_slots"] == ["location", "fault_description", "phone"]
    buttons = [b["title"] for b in domain["responses"]["utter_ask_complaint_category"][0]["buttons"]]
    assert buttons == ["噪音", "卫生", "安保", "停车", "服务态度", "设施", "其他"]


def test_each_business_has_its_own_model_key_and_editing_a_pack_changes_only_its_own(tmp_path):
    copy = project_copy(tmp_path)
    shop, prop = data_hash(copy, business="shop"), data_hash(copy, business="property")
    assert shop != prop
    profile = copy / "businesses" / "property" / "profile.yml"
    profile.write_text(profile.read_text(encoding="utf-8").replace("2.5", "2.8"), encoding="utf-8")
    assert data_hash(copy, business="property") != prop
    assert data_hash(copy, business="shop") == shop


def test_a_new_pack_is_a_copy_that_validates_and_a_broken_one_names_file_and_key(tmp_path):
    copy = project_copy(tmp_path)
    folder = new("clinic", "property", root=copy, title="示例诊所")
    pack = packs.load("clinic", root=copy)
    assert folder == copy / "businesses" / "clinic" and pack.title == "示例诊所"
    assert pack.files["profile"] == "businesses/clinic/profile.yml"
    assert problems(pack) == []
    profile = yaml.safe_load((folder / "profile.yml").read_text(encoding="utf-8"))
    del profile["parking"]["monthly_card_yuan"]
    (folder / "profile.yml").write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    (folder / "messages.yml").write_text("stopped: 好的\n", encoding="utf-8")
    found = problems(packs.load("clinic", root=copy))
    assert ("businesses/clinic/faq_answers.yml: uses {parking[monthly_card_yuan]} but "
            "businesses/clinic/profile.yml has no parking.monthly_card_yuan") in found
    assert any(line.startswith("businesses/clinic/messages.yml: handoff_in_hours: missing (the actions say it: "
                               "actions/service.py:") for line in found)


def test_a_copy_of_the_shop_takes_the_shops_files_into_its_own_folder(tmp_path):
    copy = project_copy(tmp_path)
    folder = new("outlet", "shop", root=copy)
    pack = packs.load("outlet", root=copy)
    assert all(path.startswith("businesses/outlet/") for path in pack.files.values())
    assert (folder / "profile.yml").read_text(encoding="utf-8") == (ROOT / "businesses" / "shop" / "profile.yml").read_text(encoding="utf-8")
    assert problems(pack) == []


@pytest.mark.parametrize("text, kind, parts", [
    ("3栋2单元1201厨房漏水", "home", {"building": "3", "unit": "2", "room": "1201"}),
    ("我家在5号楼801室", "home", {"building": "5", "room": "801"}),
    ("B座12楼燃气味很重", "home", {"building": "B", "floor": "12"}),
    ("8-2-301门口", "home", {"building": "8", "unit": "2", "room": "301"}),
    ("电梯里困人了！！3号楼电梯", "shared", {"building": "3", "place": "电梯"}),
    ("地下车库顶上滴水", "shared", {"place": "地下车库"}),
])
def test_locations_are_read_as_homes_or_shared_places(text, kind, parts):
    found = places.find_location(text, packs.load("property") and
                                 yaml.safe_load(packs.load("property").path("profile").read_text(encoding="utf-8"))["shared_places"])
    assert found.kind == kind and found.parts == parts


def test_no_location_when_none_is_named():
    assert places.find_location("家里水管爆了", ["电梯"]) is None
