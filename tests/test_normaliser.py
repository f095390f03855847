"""The message normalisers, property by property (hypothesis)."""
import pytest
from hypothesis import example, given, strategies as st

from bot.brain.components.normaliser import normalise
from bot.messages import clean_text

FULL_WIDTH = st.characters(min_codepoint=0xFF01, max_codepoint=0xFF5E)


@given(st.text())
@example("İ")                 # U+0130: str.lower() makes it two characters ("i" + U+0307)
@example("KFİ２０")
def test_normalise_keeps_length_so_entity_offsets_stay_valid(text):
    assert len(normalise(text)) == len(text)


def test_dotted_capital_i_is_kept_and_the_rest_still_lower_cased():
    assert normalise("WiFİ ＯＫ") == "wifİ ok"
    assert normalise("ΟΔΟΣ") == "οδος" or normalise("ΟΔΟΣ") == "οδοσ"


@given(st.text())
@example("İ")
@example("İΣ")
def test_normalise_is_idempotent(text):
    assert normalise(normalise(text)) == normalise(text)


@given(st.text(alphabet=FULL_WIDTH, min_size=1))
def test_full_width_ascii_becomes_half_width(text):
    assert all(ord(ch) < 0x7F for ch in normalise(text))


def test_examples_customers_write():
    assert normalise("ＤＤ２０２６１１２７０００１") == "dd202611270001"
    assert normalise("ＫＦ２６１１２７００４２？") == "kf2611270042?"
    assert normalise("冰箱坏了！！WiFi") == "冰箱坏了!!wifi"


@given(st.text())
def test_clean_text_drops_control_characters_and_is_idempotent(text):
    cleaned = clean_text(text)
    assert all(ch in "\n\t" or ch.isprintable() for ch in cleaned)
    assert clean_text(cleaned) == cleaned and len(cleaned) <= len(text)


@given(st.text(alphabet="😀👍🙏你好 \u200b\x00\x1b", max_size=20))
def test_emoji_and_chinese_survive_cleaning(text):
    kept = [ch for ch in text if ch in "😀👍🙏你好"]
    assert [ch for ch in clean_text(text) if ch in "😀👍🙏你好"] == kept


def test_traditional_becomes_simplified_and_dialect_spellings_standard():
    assert normalise("我要投訴你們的服務態度") == "我要投诉你们的服务态度"
    assert normalise("熱水器壞了 請派人來修") == "热水器坏了 请派人来修"
    assert normalise("俺家木有热水 瞅瞅") == "我家没有热水 看看"
    assert normalise("退貨 ＤＤ２０２６") == "退货 dd2026"


def test_a_traditional_annotation_value_becomes_simplified_in_training():
    """[電視](product) in training data: text and value both simplified, so no synonym
    电视 → 電視 is learned and a customer's 电视 stays 电视 on the ticket."""
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from bot.brain.components.normaliser import TextNormaliser

    message = Message(data={"text": "部電視開唔著", "intent": "request_repair",
                            "entities": [{"start": 1, "end": 3, "value": "電視", "entity": "product"}]})
    TextNormaliser().process_training_data(TrainingData([message]))
    entity = message.get("entities")[0]
    assert message.get("text")[entity["start"]:entity["end"]] == entity["value"] == "电视"


@pytest.mark.parametrize("text,expected", [
    ("床点要腿货 订单4619027735180264", "床点要退货 订单4619027735180264"), ("师傅什么时候来按装", "师傅什么时候来安装"),
    ("我要找人攻客服", "我要找人工客服"), ("我要退宽", "我要退款"), ("上门维休", "上门维修"),
    ("那顺便问一下 物页费是咋算的", "那顺便问一下 物业费是咋算的"), ("门禁咔丢了", "门禁卡丢了"), ("无业游民", "无业游民"),
    # words of their own, a slip across words, two words heard at once: left as written
    ("保修几年", "保修几年"), ("今晚投宿", "今晚投宿"), ("钱退还给我", "钱退还给我"), ("我想退或者换", "我想退或者换"),
    ("包修吗", "包修吗"), ("快的话明天到", "快的话明天到"), ("签收后发现坏了", "签收后发现坏了"),
    # a rare reading (追 tui, 完 kuan, 盒 an) or a word of its own before the tail (未修, 已付款): no slip
    ("帮我追货", "帮我追货"), ("钱退完了吗", "钱退完了吗"), ("盒装牛奶", "盒装牛奶"), ("三天前已付款", "三天前已付款"),
    ("到现在一直未修", "到现在一直未修"), ("这个暗装的插座坏了", "这个暗装的插座坏了"), ("都快第5天了还没到", "都快第5天了还没到"),
])
def test_a_service_word_written_with_a_homophone_slip_is_respelled(text, expected):
    assert normalise(text) == expected


@given(st.text(alphabet="退腿推追货或者投头诉按安装人工攻客服维休修未包保报物业页费我要想找来了的，", max_size=14))
@example("腿货腿货")
def test_respelling_keeps_length_and_is_idempotent(text):
    once = normalise(text)
    assert len(once) == len(text) and normalise(once) == once
