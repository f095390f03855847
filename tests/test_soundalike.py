"""A product written with a homophone slip (voice input, pinyin keyboards) is still the product."""
import pytest

from bot.profile import mentions
from bot.profile.soundalike import readings, same_sound, sound_alike

CATALOGUE = ["冰箱", "洗衣机", "空调", "热水器", "燃气热水器", "电视", "茶几", "微波炉", "电饭煲", "沙发", "床",
             "油烟机", "净水器"]


@pytest.mark.parametrize("text,product", [
    ("冰相不制冷了", "冰箱"),
    ("我妈家的冰想一直响", "冰箱"),
    ("洗衣几不脱水", "洗衣机"),
    ("滚筒洗衣鸡转不动了", "洗衣机"),
    ("空掉不制冷", "空调"),
    ("卧室空条滴水", "空调"),
    ("热水汽不出热水", "热水器"),
    ("燃气热水气漏气了 一股味", "燃气热水器"),      # the longer word heard, not 热水器 inside it
    ("微波路不转", "微波炉"),
    ("电饭宝煮不熟饭", "电饭煲"),
    ("沙法塌了一块", "沙发"),
    ("油烟鸡声音很大", "油烟机"),
])
def test_a_slip_of_the_same_sound_is_the_product(text, product):
    assert sound_alike(text, CATALOGUE) == product


@pytest.mark.parametrize("text", [
    "冰箱不制冷",                # spelled right: the extractor's business
    "帮我查几个订单",            # 查几 ~ 茶几: a slip on the word's first character is another word
    "我想查几个问题",
    "停电时好时坏",              # 电时 ~ 电视, but the words are 停电 + 时
    "电是坏了吗",                # 是 is grammar, never a slip for 视
    "这个电势差怎么算",          # 电势 is a word of its own
    "窗户关不上",                # 窗 ~ 床: one-character products are never guessed
    "你好 在吗",
    "my fridge is broken",
    "",
])
def test_no_guess_without_a_clear_slip(text):
    assert sound_alike(text, CATALOGUE) is None


def test_two_products_sounded_at_once_are_no_answer():
    assert sound_alike("冰相和空掉都坏了", CATALOGUE) is None
    assert sound_alike("冰相坏了", ["冰箱", "冰相机"]) == "冰箱"


def test_readings_ignore_tones_and_know_every_reading():
    assert {"tiao", "diao"} <= readings("调")
    assert same_sound("几", "机") and same_sound("掉", "调") and not same_sound("箱", "冰")
    assert readings("a") == frozenset() and readings("") == frozenset()
    assert readings("龦") == frozenset()           # CJK, but pypinyin has no reading: no crash


def test_a_character_without_a_reading_is_no_crash():
    assert sound_alike("冰龦坏了", CATALOGUE) is None


def test_the_shop_profile_catalogue_is_used():
    assert mentions.named_product("我家燃气热水气漏气了") == "燃气热水器"
    assert mentions.named_product("冰相不制冷") == "冰箱"
    assert mentions.named_product("my washer won't drain") == "洗衣机"
    assert mentions.named_product("订单号DD123456789012") is None


def test_a_catalogue_word_the_extractor_missed_is_the_product():
    assert mentions.named_product("大冬天的家里的壁挂炉坏了没暖气了") == "壁挂炉"
    assert mentions.named_product("燃气热水器打不着火") == "燃气热水器"       # not the 热水器 inside it
    assert mentions.named_product("冰箱和洗衣机都坏了") == "洗衣机"            # the last named
    assert mentions.named_product("我在电脑上下的单") is None                  # 电脑 is where one orders
