"""Slot fillers: products, faults, numbers in the shapes customers type them."""
from __future__ import annotations

import random

FULL_WIDTH = str.maketrans("0123456789DKFdkf-+ ", "０１２３４５６７８９ＤＫＦｄｋｆ－＋　")

# Product words annotated as `product`; the synonym table in data/nlu/entities.yml maps
# the longer forms to the catalogue word (电冰箱 → 冰箱, 格力空调 → 空调).
PRODUCTS = ["冰箱", "洗衣机", "空调", "沙发", "床垫", "热水器", "电视", "燃气灶", "油烟机",
            "洗碗机", "微波炉", "衣柜", "餐桌", "净水器", "扫地机器人", "电饭煲", "床", "电脑",
            "电冰箱", "燃气热水器", "电热水器", "格力空调", "美的空调", "海尔冰箱", "滚筒洗衣机",
            "电视机", "抽油烟机", "吸油烟机", "席梦思", "电饭锅", "烤箱", "空气净化器", "茶几",
            "书桌", "液晶电视", "挂机空调", "柜机", "双开门冰箱", "集成灶", "消毒柜"]
WEIGHTED_PRODUCTS = PRODUCTS[:18] * 3 + PRODUCTS[18:]

FAULTS = {
    "冰箱": ["不制冷", "冷藏室结冰", "一直嗡嗡响", "门关不严", "漏水", "不启动", "冷冻室不冻"],
    "洗衣机": ["不脱水", "不进水", "漏水", "滚筒不转", "甩干的时候晃得厉害", "门打不开", "显示E3"],
    "空调": ["不制冷", "不制热", "外机噪音大", "漏水", "遥控没反应", "有异味", "显示E1"],
    "热水器": ["不出热水", "打不着火", "漏水", "水温忽冷忽热", "显示E4", "一直报警"],
    "电视": ["黑屏", "有声音没画面", "屏幕闪", "开不了机", "没声音", "遥控失灵"],
    "油烟机": ["吸力变小", "噪音大", "漏油", "灯不亮", "按键失灵"],
    "燃气灶": ["打不着火", "火很小", "有漏气味", "自动熄火"],
    "洗碗机": ["洗不干净", "不排水", "报E4", "漏水"],
    "微波炉": ["不加热", "转盘不转", "一开就跳闸", "冒火花"],
    "净水器": ["一直滴水", "出水有怪味", "滤芯灯一直亮", "不出水"],
    "沙发": ["扶手松了", "皮面开裂", "腿断了", "塌陷了"],
    "床垫": ["塌了一块", "弹簧顶出来了", "有异味", "发霉"],
    "衣柜": ["门掉了", "板子裂了", "抽屉拉不动", "柜门关不上"],
    "电脑": ["开机蓝屏", "开不了机", "键盘失灵", "屏幕花屏"],
}
GENERIC_FAULTS = ["坏了", "不能用了", "出毛病了", "有问题", "用不了了", "出故障了", "罢工了",
                  "不工作了", "有异响", "冒烟了"]
TIMES = ["昨天", "前天", "上周", "三天前", "上个月", "前两天", "上礼拜", "大前天", "10号", "周末",
         "半个月前", "一周前", "刚刚", "今天早上", "11月20号"]
WAIT = ["三天", "一周", "五天", "半个月", "十来天", "好几天", "两个礼拜", "一个多月", "48小时"]
ADDRESSES = ["北京市海淀区中关村大街27号", "上海市徐汇区漕溪北路18号2楼", "深圳市南山区科技园南区5栋",
             "南京市鼓楼区中山北路100号", "武汉市洪山区珞喻路1037号", "西安市雁塔区小寨东路3号4单元",
             "重庆市渝北区金开大道68号", "天津市河西区友谊路20号", "苏州工业园区星湖街328号",
             "长沙市岳麓区麓山南路2号", "郑州市金水区花园路88号", "青岛市市南区香港中路9号"]
NAMES = ["王先生", "李女士", "张三", "陈阿姨", "刘师傅", "赵女士", "我姓周", "孙先生", "我叫吴敏",
         "收件人是郑强", "黄女士", "我老公姓林"]
STAFF = ["快递员", "送货师傅", "安装师傅", "维修师傅", "客服", "配送员", "售后", "你们的人"]


def product_word(rng: random.Random) -> str:
    return rng.choice(WEIGHTED_PRODUCTS)


def fault_for(product: str, rng: random.Random) -> str:
    for key, faults in FAULTS.items():
        if key in product or product in key:
            if rng.random() < 0.8:
                return rng.choice(faults)
    return rng.choice(GENERIC_FAULTS)


def _maybe_full_width(text: str, rng: random.Random, rate: float = 0.12) -> str:
    return text.translate(FULL_WIDTH) if rng.random() < rate else text


def phone(rng: random.Random) -> str:
    digits = "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))
    shape = rng.random()
    if shape < 0.45:
        text = digits
    elif shape < 0.7:
        text = f"{digits[:3]} {digits[3:7]} {digits[7:]}"
    elif shape < 0.9:
        text = f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    else:
        text = f"{digits[:3]} {digits[3:7]}{digits[7:]}"
    return _maybe_full_width(text, rng)


def phone_prefix(rng: random.Random) -> str:
    """What may stand before a phone number outside its annotation."""
    return rng.choice(["", "", "", "", "+86 ", "+86", "+86-", "86 "])


def order_id(rng: random.Random) -> str:
    date = f"2026{rng.randint(9, 12):02d}{rng.randint(1, 28):02d}"
    if rng.random() < 0.6:
        text = rng.choice(["DD", "DD", "dd"]) + date + "".join(rng.choice("0123456789")
                                                             for _ in range(rng.choice([4, 5, 6])))
    else:
        text = date + "".join(rng.choice("0123456789") for _ in range(rng.choice([5, 7, 8, 10])))
    return _maybe_full_width(text, rng)


def ticket_id(rng: random.Random) -> str:
    text = rng.choice(["KF", "KF", "kf", "Kf"]) + f"26{rng.randint(9, 12):02d}{rng.randint(1, 28):02d}" \
        + "".join(rng.choice("0123456789") for _ in range(4))
    return _maybe_full_width(text, rng)
