"""The form details customers type (bot/profile/details.py): dates, urgency, addresses, phones,
corrections and changes of mind, in the colloquial forms customers use."""
import datetime as dt

import pytest

from bot.profile import details
from bot.profile import business as profile

TODAY = dt.date(2026, 11, 27)      # a Friday


@pytest.mark.parametrize("text,days", [
    ("3天前", 3), ("三天前收到的", 3), ("昨天", 1), ("前天到的", 2), ("大前天", 3),
    ("两周前", 14), ("半个月前", 15), ("十五天前", 15), ("一个礼拜了", 7), ("上周", 7),
    ("11月20日", 7), ("11月20号收到的", 7), ("11.20", 7), ("2026-11-01", 26), ("2026年11月1日", 26),
    ("上个月25号", 33), ("上个月底", 27), ("上月初", 55), ("8号", 19), ("25号到的", 2),
    ("28号", 30),                       # after today: last month's 28th
    ("前几天", 3), ("今天刚收到", 0), ("十几天了", 15), ("一个多月了", 35), ("一个多礼拜", 9),
    ("上周五", 7), ("周三收到的", 2), ("今天刚到", 0), ("刚签收", 0), ("5", 5), ("十", 10),
    ("１０天前", 10), ("十二月一号", None),
])
def test_days_since(text, days):
    if days is None:
        assert details.days_since(text, TODAY) == (TODAY - dt.date(2025, 12, 1)).days
    else:
        assert details.days_since(text, TODAY) == days


@pytest.mark.parametrize("text", ["不记得了", "质量问题", "尺寸不合适", "13月40日", "", "DD202611200088"])
def test_days_since_unclear(text):
    assert details.days_since(text, TODAY) is None


WORDS = profile.load_profile()["urgent_repair_keywords"]
CONTAINED = ("冰箱", "空调", "洗衣机", "饮水机")


@pytest.mark.parametrize("text,product,urgent", [
    ("燃气热水器一直有漏气的味道", "热水器", True),
    ("厨房有煤气味", None, True),
    ("插座冒火花了", None, True),
    ("空调外机冒烟", "空调", True),
    ("水管爆了家里全是水", None, True),
    ("家里停水两天了", None, True),
    ("暖气不热，家里没暖气", None, True),
    ("没有漏气，就是打不着火", "燃气灶", False),
    ("燃气灶打不着火", "燃气灶", False),
    ("不漏气也不冒烟，就是有异响", "热水器", False),
    ("冰箱漏水", "冰箱", False),
    ("冰箱底下一直漏水", None, False),
    ("空调漏水滴到地上", "空调", False),
    ("洗衣机漏水把楼下都淹了", "洗衣机", True),
    # an air conditioner dripping onto the balcony below floods no home; seeping through does
    ("空调一直漏水 滴到楼下阳台了 楼下阿姨都上来敲门了", None, False),
    ("洗衣机漏水 渗到楼下了", None, True),
    ("家里水管漏水 楼下都滴水了", None, True),
    ("冰箱不制冷", "冰箱", False),
    ("电视没声音", "电视", False),
])
def test_urgency_reads_negation_and_object(text, product, urgent):
    assert details.urgency(text, WORDS, CONTAINED, product)[0] is urgent


@pytest.mark.parametrize("text,urgent", [
    # the leak signs denied, in plain words and dialect: an ignition fault, no gas hazard
    ("煤气灶打不燃 也没闻到啥", False), ("燃气灶点火点不着 一点味道都没有", False),
    ("燃气热水器打不起火来 不漏 也没有啥子气味", False), ("燃气灶打火打不着，无异味，没泄漏", False),
    ("俺家燃气灶点不上火 闻不出有啥味儿", False), ("热水器打不着 没漏气 也没闻着煤气味儿", False),
    ("燃气灶不着火 没闻到什么味道", False),
    # a leak or a smell affirmed, or in doubt, stays urgent
    ("燃气灶打不着火 但是闻着有股臭鸡蛋味", True), ("燃气灶不出火 有点呛人", True),
    ("煤气灶没打着 厨房里一股煤气味", True), ("也不知道有没有漏气 燃气灶旁边有点味道", True),
    ("燃气热水器是不是漏气了 嘶嘶的响", True),
])
def test_a_gas_appliance_with_its_leak_signs_denied_is_no_emergency(text, urgent):
    assert details.urgency(text, WORDS, CONTAINED)[0] is urgent


@pytest.mark.parametrize("text", [
    "上海市浦东新区世纪大道100号3栋502", "北京市朝阳区建国路88号1单元302", "朝阳区望京花园3号楼2单元1201",
    "杭州西湖区文三路９９号", "幸福小区5栋801",
])
def test_address_accepted(text):
    assert details.looks_like_address(text)


@pytest.mark.parametrize("text", ["在家", "我在家里等你们", "家里", "公司", "尽快", "不知道", "明天下午", "冰箱不制冷"])
def test_not_an_address(text):
    assert not details.looks_like_address(text)


def test_address_inside_a_message():
    assert details.find_address("地址是上海市浦东新区世纪大道100号3栋502，电话13900112233") == "上海市浦东新区世纪大道100号3栋502"
    assert details.find_address("冰箱坏了，我家在幸福小区5栋801") == "幸福小区5栋801"
    assert details.find_address("冰箱坏了快来修") is None


@pytest.mark.parametrize("text,kind,number", [
    ("13900008765", "mobile", "13900008765"), ("139 0000 8765", "mobile", "13900008765"),
    ("139-0000-8765", "mobile", "13900008765"), ("+86 139 0000 8765", "mobile", "13900008765"),
    ("+8613900008765", "mobile", "13900008765"), ("008613900008765", "mobile", "13900008765"),
    ("１３９００００８７６５", "mobile", "13900008765"), ("电话 139 0000 8765 谢谢", "mobile", "13900008765"),
    ("021-66668888", "landline", "021-66668888"), ("座机 010 8888 6666", "landline", "010-88886666"),
    ("0755-12345678转123", "landline", "0755-12345678转123"),
])
def test_phone_formats(text, kind, number):
    assert details.find_phone(text) == (kind, number)


@pytest.mark.parametrize("text", ["12345", "DD202611200088", "202611250001234", "1390000876", "没有手机"])
def test_not_a_phone(text):
    assert details.find_phone(text) is None


def test_landline_only_when_allowed():
    assert details.find_phone("021-66668888", landline=False) is None


def test_phone_kept_out_of_a_description():
    assert "8765" not in details.strip_phone("师傅态度很差，电话 139 0000 8765")


@pytest.mark.parametrize("text,current,target", [
    ("不投诉了，我要退货", "complaint_form", "return_form"),
    ("算了，还是退货吧", "complaint_form", "return_form"),
    ("算了还是报修吧", "return_form", "repair_form"),
    ("不修了，我要投诉", "repair_form", "complaint_form"),
    ("不退了", "return_form", None),
    ("不换了，退货", "return_form", None),
    ("算了", "complaint_form", None),
    ("算了 还是退货吧 修来修去的麻烦", "repair_form", "return_form"),
    ("退货太麻烦了 还是修吧", "return_form", "repair_form"),
    ("那就帮我修一下", "return_form", "repair_form"),
    ("我要修改地址", "return_form", None),
])
def test_switch_target(text, current, target):
    assert details.switch_target(text, current) == target


@pytest.mark.parametrize("text,kind", [
    ("不换了，退货", "return"), ("退货", "return"), ("换货", "exchange"), ("不退了，换个新的", "exchange"),
    ("想换一个", "exchange"), ("退钱", "return"), ("不想要了退了吧", "return"), ("随便", None),
])
def test_return_type_reads_negation(text, kind):
    assert details.return_type(text) == kind


def test_corrections_name_fields():
    fields = ["product", "fault_description", "address", "phone"]
    assert details.named_fields("电话写错了，是13900112233", fields) == ["phone"]
    assert details.named_fields("地址不对", fields) == ["address"]
    assert details.is_correction("地址改成北京市朝阳区建国路88号")
    assert details.after_correction("地址改成北京市朝阳区建国路88号") == "北京市朝阳区建国路88号"


def test_custom_made_exclusion():
    assert details.is_custom_made("这是定制的沙发", "定制类商品")
    assert not details.is_custom_made("尺寸不合适", "定制类商品")


@pytest.mark.parametrize("text,span", [
    ("十几天前收到的", (11, 19)), ("收到好几天了", (3, 9)), ("前几天刚到", (2, 6)),
    ("一个多星期了", (8, 13)), ("昨天到的", (1, 1)), ("11月20号签收", (7, 7)), ("你好", None),
])
def test_days_range_of_vague_and_exact_answers(text, span):
    assert details.days_range(text, dt.date(2026, 11, 27)) == span


def test_a_vague_answer_straddles_a_window_only_when_it_could_be_either_side():
    today = dt.date(2026, 11, 27)
    assert details.straddles(details.days_range("十多天了", today), 15)
    assert not details.straddles(details.days_range("十多天了", today), 7)       # past 7 whatever it is
    assert details.straddles(details.days_range("有几天了", today), 7)
    assert not details.straddles(details.days_range("三天前", today), 7)


@pytest.mark.parametrize("text,kind", [
    ("算了退了吧，换来换去折腾", "return"), ("来回换太麻烦了 直接退款", "return"),
    ("不想换来换去的，给我退掉", "return"), ("换来换去好烦", None),
])
def test_back_and_forth_is_no_exchange(text, kind):
    assert details.return_type(text) == kind


@pytest.mark.parametrize("text,urgent", [
    ("燃气灶没有漏气 就是打不着火", False), ("煤气灶不漏气，只是火很小", False),
    ("燃气灶没漏气但是有股煤气味", True), ("热水器好像漏气了 一股燃气味", True),
])
def test_a_gas_appliance_is_urgent_only_with_a_leak_not_denied(text, urgent):
    keywords = ["漏气", "燃气", "煤气", "冒烟"]
    assert details.urgency(text, keywords)[0] is urgent


FACTS = profile.load_profile()


@pytest.mark.parametrize("text,kind", [
    ("厨房里一股煤气味", "gas"), ("家裡有瓦斯味", "gas"), ("插座冒火花了", "electric"),
    ("配电箱冒烟了 有烧焦味", "fire"), ("水管爆了家里全是水", "water"),
    ("暖气不热 家里没暖气", None),
])
def test_first_aid_is_chosen_by_what_is_dangerous(text, kind):
    """gas, then sparks, then fire, then water (the profile's order); a cold home needs none."""
    urgent, words = details.urgency(text, WORDS, CONTAINED)
    assert urgent
    from bot.profile import hazards
    assert hazards.safety_kind(words, FACTS["urgent_safety_advice"]) == kind


@pytest.mark.parametrize("text,thing", [
    ("厨房燃气管道好像漏气了", "燃气管道"), ("插座冒火花了", "插座"), ("卫生间水管爆了", "水管"),
    ("家里一股煤气味", "煤气"), ("楼上漏水 天花板在滴", "天花板"), ("到处是水", None),
])
def test_an_emergency_without_a_product_is_filed_under_what_it_is_in(text, thing):
    from bot.profile import hazards
    assert hazards.hazard_object(text, FACTS["urgent_repair_objects"]) == thing


@pytest.mark.parametrize("text,fixed", [
    ("啊啊啊地址打错了 是2栋1806 不是1808🙈", "赣州市章贡区红旗大道36号 阳明国际2栋1806"),
    ("不对 不是1808，是1806", "赣州市章贡区红旗大道36号 阳明国际2栋1806"),
    ("地址不是2栋是3栋", "赣州市章贡区红旗大道36号 阳明国际3栋1808"),
    ("是1806", None), ("不是冰箱 是洗碗机", None),
])
def test_a_part_of_an_address_put_right(text, fixed):
    assert details.patched("赣州市章贡区红旗大道36号 阳明国际2栋1808", text) == fixed


@pytest.mark.parametrize("text,address", [
    ("石家庄 裕华区 槐安东路 恒大城11-2-903 13131468520", "石家庄 裕华区 槐安东路 恒大城11-2-903"),
    ("成都市武侯区科华北路118号 望江苑3栋1单元801", "成都市武侯区科华北路118号 望江苑3栋1单元801"),
    ("洗衣机坏了3天 北京市朝阳区建国路88号", "北京市朝阳区建国路88号"),
    ("ok. address 佛山市禅城区季华五路22号 绿岛湖9座1502, phone 13527916043", "佛山市禅城区季华五路22号 绿岛湖9座1502"),
])
def test_an_address_keeps_the_building_and_room_written_after_a_space(text, address):
    assert details.find_address(text) == address
