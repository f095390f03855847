"""The property pack's location entity: the address grammar's spans (bot/profile/places.py),
the Rasa component that annotates them (bot/brain/components/location_extractor.py) and the
pack's pipeline entry that adds it (bot/training/assemble.py)."""
from __future__ import annotations

import pytest
import yaml
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.brain.components.location_extractor import LocationExtractor, learned_places
from bot.profile import pack as packs
from bot.profile import places
from bot.training import assemble

PLACES = yaml.safe_load(packs.load("property").path("profile").read_text(encoding="utf-8"))["shared_places"]


@pytest.mark.parametrize("text, span, kind", [
    ("3栋2单元501的水管爆了", "3栋2单元501", "home"),
    ("我家3号楼1单元1002室卫生间漏水", "3号楼1单元1002室", "home"),
    ("5-2-301 停电了", "5-2-301", "home"),
    ("住在8栋2-301", "8栋2-301", "home"),
    ("b座12楼燃气味很重", "b座12楼", "home"),
    ("C座1506插座冒火花", "C座1506", "home"),
    ("七号楼2904", "七号楼2904", "home"),
    ("2单元501的灯", "2单元501", "home"),
    ("3单元802 暖气不热", "3单元802", "home"),
    ("10号楼1单元门口", "10号楼1单元", "home"),
    ("电梯里困人了！3号楼电梯 快来", "3号楼电梯", "shared"),    # the precise one, not the first
    ("5栋楼顶的防水层坏了", "5栋楼顶", "shared"),
    ("3栋2单元楼道灯坏了", "3栋2单元楼道", "shared"),
    ("地下车库B区 靠近电梯口", "地下车库", "shared"),           # the first of equals
    ("小区东门的道闸抬不起来", "小区东门", "shared"),
    ("车库入口被堵了", "车库", "shared"),
    ("A座那边的狗天天叫", "A座", "home"),
])
def test_the_span_a_message_is_about(text, span, kind):
    found = places.best_span(text, PLACES)
    assert text[found.start:found.end] == span and found.location.text == span
    assert found.location.kind == kind


@pytest.mark.parametrize("text", ["电话13712345678", "打12345投诉", "5楼和6楼之间", "家里水管爆了",
                                  "137-1234-5678", "2026-12-02"])
def test_no_span_where_no_location_is_named(text):
    assert places.best_span(text, PLACES) is None


def test_places_are_learned_from_annotations_but_not_homes_or_numbers():
    learned = learned_places(["27号楼凉亭", "5号楼801", "儿童乐园", "三零一", "3栋2单元1201", "电梯"], ["电梯"])
    assert set(learned) == {"电梯", "凉亭", "儿童乐园"}


@pytest.fixture
def extractor(tmp_path):
    def build(**config):
        storage = LocalModelStorage(tmp_path)
        resource = Resource(f"location_{len(config)}")
        return LocationExtractor.create({**LocationExtractor.get_default_config(), **config}, storage,
                                        resource, ExecutionContext(None)), storage, resource
    return build


def message(text, intent="request_repair", entities=()):
    return Message(data={"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": list(entities)})


def locations(msg):
    return [(e["value"], e["extractor"]) for e in msg.get("entities") if e["entity"] == "location"]


def test_the_extractor_replaces_a_learned_location_and_keeps_it_only_when_it_finds_none(extractor):
    component, _, _ = extractor(places=["电梯", "车库"])
    crf = {"entity": "location", "start": 0, "end": 3, "value": "3号楼", "extractor": "CRFEntityExtractor"}
    phone = {"entity": "phone", "start": 8, "end": 19, "value": "13712345678", "extractor": "RegexEntityExtractor"}
    [found] = component.process([message("3号楼电梯坏了 电话13712345678", entities=[crf, phone])])
    assert locations(found) == [("3号楼电梯", "LocationExtractor")]
    assert any(e["entity"] == "phone" for e in found.get("entities"))
    [kept] = component.process([message("凉亭那边漏雨", entities=[dict(crf, value="凉亭", end=2)])])
    assert locations(kept) == [("凉亭", "CRFEntityExtractor")]
    strict, _, _ = extractor(places=["电梯"], keep_learned=False)
    [dropped] = strict.process([message("凉亭那边漏雨", entities=[dict(crf, value="凉亭", end=2)])])
    assert locations(dropped) == []


def test_questions_get_no_location_and_the_estates_name_is_no_place(extractor):
    component, _, _ = extractor(places=["花园", "车库"], ignore_intents=["faq"], not_places="示例花园")
    asked, greeted, reported = component.process([
        message("车库月卡多少钱", intent="faq"), message("请问是示例花园物业吗", intent="greet"),
        message("示例花园的中心花园有人乱扔垃圾", intent="complain")])
    assert locations(asked) == [] and locations(greeted) == []
    assert locations(reported) == [("中心花园", "LocationExtractor")]


def test_the_lexicon_learned_in_training_is_what_the_loaded_model_uses(extractor):
    component, storage, resource = extractor(places=["电梯"])
    annotated = Message(data={"text": "凉亭的顶漏了", "intent": "request_repair", "entities": [
        {"entity": "location", "start": 0, "end": 2, "value": "凉亭"}]})
    component.train(TrainingData([annotated]))
    loaded = LocationExtractor.load(LocationExtractor.get_default_config(), storage, resource, ExecutionContext(None))
    [found] = loaded.process([message("凉亭的灯坏了")])
    assert locations(found) == [("凉亭", "LocationExtractor")]


def test_the_property_pack_adds_the_extractor_after_the_crf_with_its_profiles_places():
    pack = packs.load("property")
    steps = yaml.safe_load((pack.root / assemble.assemble(pack).config).read_text(encoding="utf-8"))["pipeline"]
    names = [s["name"] for s in steps]
    at = names.index("bot.brain.components.location_extractor.LocationExtractor")
    assert names[at - 1] == "CRFEntityExtractor"
    assert "地下车库" in steps[at]["places"] and steps[at]["not_places"] == "示例花园"
    shop = packs.load("shop")
    assert "bot.brain.components.location_extractor.LocationExtractor" not in [
        s["name"] for s in yaml.safe_load((shop.root / assemble.assemble(shop).config).read_text(encoding="utf-8"))["pipeline"]]


def test_a_pack_component_after_a_missing_step_or_profile_key_names_the_pack_file():
    pack = packs.load("property")
    broken = packs.Pack(**{**pack.__dict__, "manifest": {"pipeline": [{"name": "X", "after": "NoSuchStep"}]}})
    with pytest.raises(packs.PackError, match=r"pack.yml: pipeline\[0\].after"):
        assemble.with_pack_components(broken, [{"name": "CRFEntityExtractor"}])
    broken = packs.Pack(**{**pack.__dict__, "manifest": {"pipeline": [
        {"name": "X", "after": "CRFEntityExtractor", "places": "profile:no_such_key"}]}})
    with pytest.raises(packs.PackError, match="has no no_such_key"):
        assemble.with_pack_components(broken, [{"name": "CRFEntityExtractor"}])


@pytest.mark.parametrize("text, parts", [
    ("住在8栋2-301 厨房漏水", {"building": "8", "unit": "2", "room": "301"}),
    ("2单元501的灯不亮", {"unit": "2", "room": "501"}),
])
def test_the_forms_read_the_same_homes(text, parts):
    found = places.find_location(text, PLACES)
    assert found.kind == "home" and found.parts == parts and found.complete_home


def test_editing_the_address_grammar_changes_the_property_models_cache_key(tmp_path):
    import shutil
    from pathlib import Path

    from bot.training.model_cache import INPUTS, data_hash

    root, copy = Path(__file__).resolve().parent.parent, tmp_path / "project"
    for entry in INPUTS:
        src, dst = root / entry, copy / entry
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        elif src.exists():
            shutil.copy(src, dst)
    before = data_hash(copy, business="property")
    grammar = copy / "bot" / "profile" / "places.py"
    grammar.write_text(grammar.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert data_hash(copy, business="property") != before


def test_make_validate_names_a_pack_component_placed_after_a_missing_step(tmp_path):
    from bot.business.checks import problems

    pack = packs.load("property")
    manifest = {**pack.manifest, "pipeline": [{"name": "X", "after": "NoSuchStep"}]}
    broken = packs.Pack(**{**pack.__dict__, "manifest": manifest})
    assert any("pipeline[0].after" in p and "NoSuchStep" in p for p in problems(broken))
