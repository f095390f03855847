"""What customers type, read correctly: dates, ratings, categories, phones."""
import datetime as dt

import pytest
from hypothesis import example, given, strategies as st

from bot.profile import parsing

from bot.profile import privacy

TODAY = dt.date(2026, 11, 27)


@pytest.mark.parametrize("text,days", [
    ("3天前", 3), ("三天前收到的", 3), ("昨天", 1), ("前天到的", 2), ("上周", 7),
    ("两周前", 14), ("半个月前", 15), ("十五天前", 15), ("11月20日", 7), ("11月20号收到的", 7),
    ("2026-11-01", 26), ("5", 5), ("今天刚到", 0), ("一个月前", 30),
])
def test_days_since(text, days):
    assert parsing.days_since(text, TODAY) == days


@pytest.mark.parametrize("text", ["不记得了", "很久以前", "13月40日"])
def test_days_since_unclear(text):
    assert parsing.days_since(text, TODAY) is None


def test_date_later_this_year_means_last_year():
    assert parsing.days_since("12月25日", TODAY) == (TODAY - dt.date(2025, 12, 25)).days


@pytest.mark.parametrize("text,score", [
    ("5分", 5), ("给4星", 4), ("3", 3), ("非常满意", 5), ("一般般吧", 3), ("不满意", 2),
    ("差评！", 1), ("满意", 5), ("三分", 3),
])
def test_rating_score(text, score):
    assert parsing.rating_score(text) == score


def test_rating_unknown():
    assert parsing.rating_score("嗯嗯") is None


@pytest.mark.parametrize("text,score", [
    ("Thanks, 5 stars ⭐⭐⭐⭐⭐", 5), ("⭐⭐⭐", 3), ("⭐️⭐️⭐️⭐️", 4), ("🌟🌟", 2), ("★★★☆☆", 3),
    ("五星", 5), ("5星好评", 5), ("给个三星吧", 3), ("三颗星", 3), ("两星", 2), ("1 star", 1),
    ("4 stars, fast repair", 4), ("five stars!", 5), ("打5分 ⭐⭐⭐⭐⭐", 5),
])
def test_rating_in_stars(text, score):
    assert parsing.rating_score(text) == score


@pytest.mark.parametrize("text", [
    "5 stars ⭐⭐⭐",          # the number and the stars disagree
    "3星还是4星吧",            # two scores
    "⭐⭐⭐⭐⭐⭐",              # more than five
    "10星", "6 stars", "4.5星", "等了15分钟了",
    "两个星期了还没到", "等了三个星期", "两星期",   # weeks, not stars
])
def test_rating_ambiguous_or_off_the_scale_is_none(text):
    assert parsing.rating_score(text) is None


@pytest.mark.parametrize("text,category", [
    ("快递员把冰箱磕坏了", "物流配送"), ("客服态度太差", "服务态度"),
    ("退款一直没到账", "退款售后"), ("沙发开裂了质量太差", "商品质量"), ("其他", "其他"),
])
def test_complaint_category(text, category):
    assert parsing.complaint_category(text) == category


@pytest.mark.parametrize("text,phone", [
    ("13812345678", "13812345678"), ("电话 139 0011 2233 谢谢", "13900112233"),
    ("186-1234-5678", "18612345678"),
])
def test_phone_normalised(text, phone):
    assert privacy.normalise_phone(text) == phone


@pytest.mark.parametrize("text", ["12345", "12812345678", "138123456789", "电话没有"])
def test_not_a_phone(text):
    assert privacy.normalise_phone(text) is None


# Every Unicode digit form: str.isdigit() is true for all of these, int() reads only some.
DIGIT_FORMS = {"3": 3, "３": 3, "٣": 3, "۳": 3, "३": 3, "³": 3, "③": 3, "𝟑": 3, "❸": 3, "➂": 3}


@pytest.mark.parametrize("digit,value", DIGIT_FORMS.items())
def test_every_digit_form_reads_as_its_value(digit, value):
    assert parsing.ascii_digits(digit) == str(value)
    assert parsing.chinese_number(digit) == value
    assert parsing.days_since(digit + "天前", TODAY) == value
    assert parsing.rating_score(digit + "分") == value
    assert parsing.chinese_number(digit * 2) == value * 11


def test_digit_forms_in_numbers_customers_copy():
    assert privacy.normalise_phone("电话１３８１２３４５６７８") == "13812345678"
    assert privacy.normalise_phone("١٣٨١٢٣٤٥٦٧٨") == "13812345678"
    assert parsing.find_order_id("订单ＤＤ２０２６１１２７０００１") == "DD202611270001"
    assert parsing.find_ticket_number("工单kf٢٦١١٢٧١٢٣٤٥٦٧٨") == "KF26112712345678"
    assert parsing.find_ticket_number("KF2611270042") == "KF2611270042"      # old numbers
    assert parsing.find_ticket_number("KF261127004") is None
    assert parsing.days_since("１１月２０日", TODAY) == 7


def test_masking_finds_phones_in_any_digit_form():
    masked = privacy.mask_text("投诉电话１３８１２３４５６７８谢谢")
    assert masked == "投诉电话138****5678谢谢"
    assert "١٢٣٤" not in privacy.mask_text("رقم ١٣٨١٢٣٤٥٦٧٨")


@pytest.mark.parametrize("text", ["十十", "二二十", "十二三", "⑩", pytest.param("¹" * 40, id="40-superscripts"),
                                  pytest.param("1" * 5000, id="5000-digits")])
def test_not_numbers(text):
    assert parsing.chinese_number(text) is None


@given(st.text(max_size=60))
@example("¹")                 # str.isdigit() true, int() fails: crashed chinese_number
@example("①天前")
@example("²⁰²⁶-¹¹-⁰¹")
@example("十十天")            # KeyError in the 十 branch
@example("٣")
def test_parsers_never_crash(text):
    parsing.chinese_number(text)
    parsing.find_order_id(text)
    parsing.find_ticket_number(text)
    parsing.days_since(text, TODAY)
    parsing.rating_score(text)
    parsing.complaint_category(text)
    parsing.return_type(text)
    privacy.normalise_phone(text)
    assert "1" not in privacy.mask_text("").strip()


@given(st.from_regex(r"1[3-9]\d{9}", fullmatch=True), st.text(alphabet="投诉电话是：", max_size=8))
@example("1300000000٠", "")      # \d draws any decimal digit: shown as ASCII once masked
def test_masked_text_hides_every_phone(phone, prefix):
    masked = privacy.mask_text(prefix + phone)
    assert phone not in masked and parsing.ascii_digits(phone)[-4:] in masked


@pytest.mark.parametrize("text,value", [("12", 12), ("0", 0), ("¹", None), ("①", None), ("١٢", None),
                                        ("", None), ("-1", None), ("1" * 19, None), ("1" * 18, int("1" * 18))])
def test_ascii_int_takes_plain_ids_only(text, value):
    assert parsing.ascii_int(text) == value


@pytest.mark.parametrize("text,category", [
    ("不是东西本身的问题，是送货师傅给摔坏的", "物流配送"),          # denied, then what it is
    ("质量倒是没问题，就是客服一直敷衍我", "服务态度"),              # "that part is fine"
    ("申请退款十天了钱还没到账", "退款售后"),                      # 退款 + 没到账 outweigh 还没到
    ("应该算物流配送 不算商品质量", "物流配送"),                   # a named category denied
    ("是不是质量问题啊，刚用就坏了", "商品质量"),                  # 是不是 asks, it denies nothing
    ("快递摔坏了", "物流配送"),                                   # 摔坏 is not also 坏
    ("送货员态度恶劣还骂人", "服务态度"),
])
def test_complaint_category_reads_denials_and_weighs_cues(text, category):
    assert parsing.complaint_category(text) == category


def test_best_category_for_any_business():
    cues = {"噪音": ("噪音", "吵"), "卫生": ("垃圾", "脏", "臭")}
    assert parsing.best_category("不是噪音的事，是楼道垃圾三天没人收，臭死了", cues) == "卫生"
    assert parsing.best_category("楼上太吵了", cues) == "噪音"
    assert parsing.best_category("你好", cues) is None


@pytest.mark.parametrize("text,category", [
    ("柜子少了两块隔板 根本装不上", "商品质量"), ("快递把箱子扔在门口就走了 压扁了", "物流配送"),
    ("安装师傅把墙打坏了还不认账", "服务态度"), ("退货一个月了钱没退", "退款售后"),
])
def test_complaint_cues_of_the_shop(text, category):
    assert parsing.complaint_category(text) == category
