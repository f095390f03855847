"""What else a message mentions (bot/profile/mentions.py) and the colloquial dates, English
words and return kinds added to bot/profile/details.py, in the forms customers write."""
import datetime as dt

import pytest

from bot.profile import details, mentions, parsing

TODAY = dt.date(2026, 11, 27)


@pytest.mark.parametrize("text,days", [
    ("半个月前收到的 能七天无理由退吗", 15),        # the policy named is no date
    ("两天前到的，7天内能退吗", 2),
    ("半个多月了", 18),                             # more than half a month: past a 15-day window
    ("just received it 2 days ago", 2), ("got it a week ago", 7), ("three days ago", 3),
    ("delivered yesterday", 1), ("arrived the day before yesterday", 2), ("last week", 7),
    ("才买了三天就这样", 3), ("大概4天前 received", 4),
])
def test_days_since_colloquial_and_english(text, days):
    assert details.days_since(text, TODAY) == days


def test_more_than_half_a_month_is_past_fifteen_days():
    assert details.days_range("半个多月前收到的", TODAY) == (16, 25)
    assert details.days_range("半个月前收到的", TODAY) == (15, 15)


@pytest.mark.parametrize("text", ["7天无理由退货吗", "I want to return it"])
def test_no_date_in_a_policy_or_a_request(text):
    assert details.days_since(text, TODAY) is None


@pytest.mark.parametrize("text,kind", [
    ("想return", "return"), ("I want a refund", "return"), ("can I exchange it", "exchange"),
    ("don't want to return it, exchange please", "exchange"), ("不换了！退货！退钱！", "return"),
    ("不退了，换个新的", "exchange"),
])
def test_return_type_reads_english_and_negation(text, kind):
    assert details.return_type(text) == kind


@pytest.mark.parametrize("text,product", [
    ("我的fridge不制冷了", "冰箱"), ("my washing machine keeps leaking", "洗衣机"),
    ("the TV is dead", "电视"), ("Air Conditioner 不出冷风", "空调"), ("tvb的节目", None), ("你好", None),
])
def test_english_product(text, product):
    assert mentions.english_product(text) == product


@pytest.mark.parametrize("text,none", [
    ("我要退货！订单号找不到了！", True), ("没有订单号", True), ("单号忘了", True), ("I lost the order number", True),
    ("订单DD663018274459", False), ("找不到客服", False),
])
def test_says_no_order(text, none):
    assert mentions.says_no_order(text) is none


@pytest.mark.parametrize("text,reason", [
    ("你们发的冰箱门是歪的！给我换一台！", "冰箱门是歪的"),
    ("电话15200001212，昨天收到的冰箱，不想要了", "不想要了"),
    ("买的床垫尺寸不对，想退货", "尺寸不对"),
    ("我要退货！订单号找不到了！是我老婆下的单！", None),
    ("退货，订单DD889102736455", None),
    ("电视屏幕中间有一条竖线，想退", "竖线"),
])
def test_reason_in(text, reason):
    found = mentions.reason_in(text)
    if reason is None:
        assert found is None
    else:
        assert found and reason in found and "15200001212" not in found


@pytest.mark.parametrize("text,fault", [("电视 黑屏", True), ("makes loud noise when spinning", True),
                                        ("热水器漏气", True), ("锦江区春熙路6号8楼", False),
                                        ("显示器右边漏光", True)])
def test_mentions_fault(text, fault):
    assert mentions.mentions_fault(text) is fault


def test_questions_and_why_a_phone():
    assert mentions.is_question("修要花钱吗") and mentions.is_question("how long does it take")
    assert not mentions.is_question("幸福小区5栋2单元301")
    assert mentions.asks_why_phone("凭什么给你电话？") and mentions.asks_why_phone("要我手机号干嘛")
    assert not mentions.asks_why_phone("电话13900002468")


@pytest.mark.parametrize("text,category", [
    ("delivery太慢了，下单十天了还没收到", "物流配送"), ("your customer service is rude", "服务态度"),
    ("质量太差", "商品质量"), ("Refund 一直没到", "退款售后"),
])
def test_complaint_category_cues(text, category):
    assert parsing.complaint_category(text) == category


@pytest.mark.parametrize("text,when", [
    ("那你们多久能给个说法", True), ("师傅啥时候上门啊", True), ("退款几天能到", True),
    ("how long will it take", True), ("好的谢谢", False), ("电话13900002468", False),
])
def test_asks_when(text, when):
    assert mentions.asks_when(text) is when


@pytest.mark.parametrize("text,follow", [
    ("那运费呢", True), ("衣柜呢？大件的", True), ("开出来要多久", True), ("超过99呢😅", True),
    ("我上个月在你们这儿买了一台冰箱，现在冷藏室一直结冰，冷冻室不冷", False), ("", False),
    ("明白了。那如果是定制尺寸的衣柜，也适用吗？", True), ("好的，那要是过了七天以后发现质量问题呢", True),
    ("可以开发票吗 我是公司买的 需要写抬头和税号的那种", False),
])
def test_is_follow_up(text, follow):
    assert mentions.is_follow_up(text) is follow


@pytest.mark.parametrize("text,asks", [
    ("收到三天的微波炉不加热 给我换一台", True), ("屏幕裂了 我要退款", True), ("帮我报修一下热水器", True),
    ("投诉！！", True), ("报修吧", True), ("退货是怎么个流程", False),
    ("能换货吗", False), ("退货怎么退", False), ("不要退了", False), ("别投诉了", False),
])
def test_asks_for_service_not_about_it(text, asks):
    assert mentions.asks_for_service(text) is asks


@pytest.mark.parametrize("text", ["the fridge keeps dripping onto the kitchen floor", "dishwasher won't drain, big puddle",
                                  "洗碗机 won't turn on at all"])
def test_a_fault_told_in_english(text):
    assert mentions.mentions_fault(text)


@pytest.mark.parametrize("text", ["沙发一股刺鼻的气味 想退", "床垫味道太冲了 熏得睡不着"])
def test_a_smell_is_a_reason_to_send_back(text):
    assert mentions.reason_in(text)


@pytest.mark.parametrize("text,question", [
    ("在你们这买的热水器 装一下收钱不嘛", True), ("快递发了没", True), ("有没有人在", True), ("运费谁出", True),
    ("衣柜啥时候能到咩", True), ("前几天到的 门关不上", False), ("师傅没来", False), ("修不好了", False),
])
def test_questions_in_dialect_and_a_not_a_forms(text, question):
    assert mentions.is_question(text) is question


@pytest.mark.parametrize("text,left", [
    ("前天到的，没拆封", "没拆封"), ("11月20日签收的 不喜欢", "不喜欢"), ("三天前收到 尺寸不对", "尺寸不对"),
    ("上周五到的", ""), ("yesterday 到的", ""),
])
def test_without_when_leaves_what_else_was_said(text, left):
    assert details.without_when(text).strip(" ,，") == left


@pytest.mark.parametrize("text,days", [
    ("上个月尾收到嘅", 27), ("这个月头到的", 24), ("月初买的", 24), ("月底到的", 27),
])
def test_month_start_and_end_in_any_speech(text, days):
    assert details.days_since(text, TODAY) == days


@pytest.mark.parametrize("text", ["单号我揾唔到喇", "订单号冇咗", "I can't find my order number"])
def test_no_order_number_in_cantonese_and_english(text):
    assert mentions.says_no_order(text)


@pytest.mark.parametrize("text", ["要俺电话弄啥", "留号码有啥用啊", "点解要我电话", "why do you need my phone"])
def test_why_a_phone_in_dialect_and_english(text):
    assert mentions.asks_why_phone(text)


@pytest.mark.parametrize("text", ["那要是买个大书柜呢 那么大的东西是不是要等很久", "如果我住在郊区的话要加钱吗 比较偏"])
def test_a_long_follow_up_that_leans_on_the_answer(text):
    assert mentions.is_follow_up(text)


@pytest.mark.parametrize("text,days", [("用了一周多了", 9), ("两个多月了", 65), ("三天多了", 3)])
def test_a_bit_more_than(text, days):
    assert details.days_since(text, TODAY) == days


@pytest.mark.parametrize("text,reason", [
    ("太硬了 睡不惯", "太硬了，睡不惯"), ("沙发太软 坐着不舒服", "沙发太软，坐着不舒服"),
    ("三天前收到的床垫 太软了 我腰不好睡不了", "太软了，我腰不好睡不了"),
])
def test_too_much_and_not_used_to_it_are_return_reasons(text, reason):
    assert mentions.reason_in(text) == reason


@pytest.mark.parametrize("text", ["太好了谢谢", "等太久了", "我要退货", "我要退太阳能热水器", "我太太买的床垫",
                                  "太原发过来的"])
def test_praise_and_waiting_are_no_return_reasons(text):
    assert mentions.reason_in(text) is None


@pytest.mark.parametrize("text,fault", [("燃气热水器", False), ("电热水器", False), ("热水器不热", True),
                                        ("冰箱", False), ("空调漏水", True)])
def test_a_products_own_name_is_no_fault(text, fault):
    assert mentions.mentions_fault(text) is fault


@pytest.mark.parametrize("text,item", [("沙发这种大件呢", "沙发这种大件"), ("那冰箱呢？", "冰箱"),
                                       ("多久呢", None), ("沙发能退吗呢", None)])
def test_what_about_an_item(text, item):
    assert mentions.what_about(text) == item


@pytest.mark.parametrize("text,forgot", [
    ("工单号我忘了", True), ("不记得工单编号了", True), ("KF号找不到了", True), ("I forgot my ticket number", True),
    ("订单编号不知道在哪看", False), ("工单不知道怎么提交", False),
    ("工单号是KF26112712345678", False), ("订单号忘了", False), ("我忘了说 地址是3栋", False),
])
def test_forgot_ticket(text, forgot):
    assert mentions.forgot_ticket(text) is forgot


@pytest.mark.parametrize("text,fears", [
    ("你们是不是把我电话卖给装修公司了？！天天有人打电话问我家要不要装修！！", True),
    ("我的电话你们不会给别人吧", True), ("我的信息是不是被你们泄露了", True),
    ("天天接到推销电话，是不是你们泄露的", True),
    ("你们卖的冰箱坏了 我电话13900001111", False), ("我要装修 要交多少押金", False), ("电话多少", False),
])
def test_a_worry_that_personal_data_was_sold(text, fears):
    assert mentions.fears_for_data(text) is fears
