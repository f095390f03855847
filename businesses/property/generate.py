"""``python businesses/property/generate.py [--check]``: the property pack's generated NLU data.

Templates × slot fillers (homes, shared places, faults, phones, ticket numbers) × the shared
noise functions (data/generate/noise.py: typos, dialect, slang, emoji, voice-to-text, polite
and furious registers), seeded and reproducible; writes data/nlu/generated.yml of this pack.
Written from the contract and the property handbook, never from the blind sets.
"""
from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "data" / "generate"))
sys.path.insert(0, str(ROOT))

import noise  # noqa: E402
import slots  # noqa: E402

from bot.brain.components.normaliser import normalise  # noqa: E402

SEED = 29
TARGET = HERE / "data" / "nlu" / "generated.yml"
PER_TEMPLATE = 4
CN = "一二三四五六七八九十"

PLACES = ["电梯", "车库", "地下车库", "大堂", "楼道", "走廊", "楼梯间", "天台", "楼顶", "地下室", "单元门",
          "小区门口", "东门", "南门", "北门", "西门", "中心花园", "花园", "绿化带", "游乐场", "健身区", "垃圾房",
          "垃圾站", "水泵房", "配电房", "消防通道", "电梯厅", "快递柜", "充电桩", "停车场", "门岗"]
QUALIFIED = ["电梯", "楼道", "大堂", "单元门", "楼顶", "楼梯间", "电梯厅", "地下室"]
# said after a place and left outside its annotation (``[车库](location)入口``, ``[B座](location)门口``)
AFTER_PLACE = ["", "", "", "", "入口", "门口", "里", "旁边", "那边"]
FAULTS_HOME = ["厨房水管漏水", "卫生间下水道堵了", "马桶堵了", "天花板渗水", "墙皮脱落", "墙面裂缝", "门锁坏了",
               "窗户关不上", "阳台推拉门卡住了", "地漏反味", "水龙头一直滴水", "暖气片不热", "空开老跳闸",
               "插座没电", "灯不亮了", "防盗门打不开", "水压特别低", "热水出不来", "楼上往下渗水", "外墙渗水",
               "可视对讲坏了", "入户门关不严", "地砖空鼓", "吊顶掉了一块", "排风扇不转"]
FAULTS_SHARED = ["灯坏了", "感应灯不亮", "门禁刷卡没反应", "门关不上", "一直异响", "按钮失灵", "有积水", "顶上滴水",
                 "道闸抬不起来", "监控不亮", "地面塌了一块", "栏杆松了", "消防栓漏水", "充电桩用不了", "门禁人脸识别不了"]
URGENT = ["电梯里困人了", "有人被困在电梯里", "电梯卡在两层中间里面有人", "水管爆了", "家里跑水了", "水漫到客厅了",
          "闻到很大的燃气味", "好像漏气了", "整栋楼停电了", "家里突然没电了", "停水了一滴水都没有", "配电箱冒烟了",
          "插座冒火花", "楼道里有烧焦味冒烟", "下水道反水淹了", "化粪池冒了"]
NOISE_SOURCES = ["楼上半夜蹦迪", "邻居装修电钻一直响", "广场舞音响太吵", "楼下狗天天叫", "隔壁半夜唱K",
                 "施工声从早到晚", "楼上小孩天天跑跳", "半夜有人拖椅子"]
COMPLAINT_CUES = {
    "噪音": NOISE_SOURCES,
    "卫生": ["垃圾好几天没人清", "保洁根本不打扫", "到处是狗屎", "垃圾桶臭死了", "有老鼠蟑螂", "地一个星期没拖"],
    "安保": ["保安不拦陌生人", "外卖员随便进", "晚上没人巡逻", "家里电动车被偷了", "门岗没人值班", "监控是摆设"],
    "停车": ["车位被人占了", "有人乱停车堵路", "消防通道停满了车", "停车费乱收", "电动车乱停"],
    "服务态度": ["前台态度很差", "保安爱答不理", "维修师傅很不耐烦", "客服推来推去踢皮球", "工作人员骂人"],
    "设施": ["健身器材坏了没人修", "路灯坏了一个月", "游乐设施生锈了", "长椅断了", "充电桩坏了好久"],
}
STAFF = ["保安", "保洁", "前台", "管家", "维修师傅", "物业经理", "工作人员"]


def num(rng: random.Random, lo: int, hi: int, chinese: float = 0.1) -> str:
    n = rng.randint(lo, hi)
    return CN[n - 1] if n <= 10 and rng.random() < chinese else str(n)


def room(rng: random.Random) -> str:
    return f"{rng.randint(1, 33)}{rng.randint(1, 4):02d}"


def home(rng: random.Random) -> str:
    b = num(rng, 1, 28)
    shape = rng.random()
    if shape < 0.3:
        return f"{b}栋{num(rng, 1, 4)}单元{room(rng)}" + rng.choice(["", "", "室"])
    if shape < 0.5:
        return f"{b}号楼{room(rng)}" + rng.choice(["", "", "室"])
    if shape < 0.62:
        return f"{rng.choice('ABCDEF')}座{rng.randint(2, 32)}楼"
    if shape < 0.75:
        return f"{rng.randint(1, 28)}-{rng.randint(1, 4)}-{room(rng)}"
    if shape < 0.85:
        return f"{b}号楼{num(rng, 1, 4)}单元{room(rng)}"
    if shape < 0.9:
        return f"{b}幢{room(rng)}"
    if shape < 0.95:
        return f"{b}{rng.choice(['栋', '号楼'])}{num(rng, 1, 4)}单元"
    return f"{rng.choice('ABCDEF')}座{room(rng)}"


def shared(rng: random.Random) -> str:
    if rng.random() < 0.08:                 # a building alone (``A座那边``, ``10号楼下面``)
        return rng.choice([f"{num(rng, 1, 28)}号楼", f"{num(rng, 1, 28)}栋", f"{rng.choice('ABCD')}座"])
    if rng.random() < 0.35:
        b = rng.choice([f"{num(rng, 1, 28)}号楼", f"{num(rng, 1, 28)}栋", f"{rng.choice('ABCD')}座"])
        return b + rng.choice(QUALIFIED)
    return rng.choice(PLACES)


TEMPLATES = {
    "request_repair": [
        "{home}{fh} 麻烦派人来修", "我家{fh}，住{home}，能上门看看吗", "报修 {home} {fh}", "{fh}了 {home} 师傅啥时候能来",
        "你好 我是{home}的业主 {fh} 想报个修", "{pub}{fs} 你们派人处理一下", "{pub}{fs}，报修", "报修：{pub}{fs}",
        "{home} {fh} 急", "家里{fh}，地址{home}，电话{ph}", "请物业来修下{fh}", "我要报修，{fh}", "能不能派个维修工来 {fh}",
        "{pub}的{fs2}坏了 好几天了", "{home}{fh}，明天上午有空来修吗", "我们单元{fs}，麻烦修一下", "{u}", "{u} {loc}",
        "{loc} {u} 快来人", "救命 {loc}{u}", "{u}！！！快派人", "紧急报修 {loc} {u}", "{home}{u} 电话{ph}",
        "报修一下 {fh}", "维修 {home}", "家里{fh}找谁修", "物业能修{fh}吗 我在{home}", "上门维修 {fh}",
    ],
    "complain": [
        "我要投诉 {c}", "投诉 {c}", "{c} 你们物业管不管", "{loc}{c} 我要投诉", "{c}，反映好几次了没人管 投诉",
        "投诉一下你们的{staff} {cs}", "{staff}{cs} 太过分了", "对物业服务很不满 {c}", "我要反映问题 {c}",
        "{c} 再不处理我打12345", "{loc}那边{c} 投诉", "投诉邻居 {noise}", "{noise} 物业能不能管管", "投诉卫生 {loc}{cw}",
        "举报 {loc}有人{cp}", "给你们提个意见 {c}", "这服务也太差了 {c}", "我要投诉 住在{home} {noise}",
    ],
    "check_ticket": [
        "我报修的怎么还没人来", "查一下我的工单 {t}", "{t} 处理到哪一步了", "上次投诉的有结果了吗", "我的报修进度",
        "工单{t}什么时候处理", "维修师傅到底什么时候来", "昨天报的修有人接单没", "帮我看看投诉处理得怎样了",
        "查工单", "之前报的{fh}修好没有安排", "单号{t}", "我的投诉受理了吗", "进度怎么样了 {t}",
    ],
    "request_human": [
        "转人工", "我要找前台", "有没有真人", "找物业客服", "帮我接人工", "我要和物业经理说", "让工作人员联系我",
        "人工服务", "叫你们管家来", "不要机器人 找个人", "转前台", "我要跟真人说话", "打电话给我 {ph}",
    ],
    "request_return": [
        "我要退货", "买的东西想退了", "申请退款", "这个商品我要换货", "订单退一下", "快递买错了能退吗",
        "退货退款怎么弄", "我想把买的灯退掉", "退钱", "上周买的东西不想要了 退掉", "能帮我换个货吗",
    ],
    "rate_service": [
        "满意", "非常满意", "5分", "给个好评", "一般般吧", "不满意", "差评", "3分", "师傅挺好的 五星",
        "服务还不错 4分", "太差了 1分", "打个分 5", "回访说的事挺满意的",
    ],
    "stop": [
        "算了", "不修了", "不报了", "取消", "不投诉了", "先不弄了", "不用了 我自己修好了", "撤销", "不办了",
        "算了算了", "不要了 取消吧", "先这样吧不报修了",
    ],
    "inform": [
        "{home}", "在{home}", "我家是{home}", "{pub}", "就在{pub}", "电话{ph}", "{ph}", "手机号是{ph}", "{home} {ph}",
        "地址{home}", "住{home}", "位置是{pub}", "{fh}", "是{fs}", "{ph} 姓{name}", "我是{home}的业主", "{home}，{name}先生",
        "联系电话 {ph}", "打这个号 {ph}", "{name}女士 {ph}", "房号{home}", "我住在{home}", "{home}业主 电话{ph}",
        "在{pub}这里", "{pub}那块", "下午在家 {ph}", "明天上午都在家", "随时可以来", "周末有人", "{home} 白天家里有老人",
    ],
    "out_of_scope": [
        "明天天气怎么样", "讲个笑话", "推荐个股票", "附近有什么好吃的", "今天油价多少", "帮我订个外卖", "你会唱歌吗",
        "世界杯谁赢了", "给我写首诗", "房价会涨吗", "哪个学校好", "帮我叫个车",
    ],
    "greet": ["你好", "您好", "在吗", "hi", "哈喽", "物业你好", "有人吗", "早上好", "晚上好", "你好 物业"],
    "goodbye": ["再见", "拜拜", "好的再见", "没事了 拜", "先这样 再见", "bye", "下次再聊"],
    "thank": ["谢谢", "多谢", "辛苦了", "谢谢你们", "感谢物业", "好的谢谢", "麻烦了 谢谢", "thx"],
    "affirm": ["是的", "对", "好的", "可以", "没问题", "嗯嗯", "对的", "行", "确认", "ok"],
    "deny": ["不是", "不对", "没有", "不用", "不需要", "否", "不是这个", "没"],
    "bot_challenge": ["你是机器人吗", "是真人吗", "你是AI吧", "我在跟机器说话吗", "你是人工还是自动回复"],
}
FAQ = {
    "property_fee": ["物业费多少钱一平", "物业费怎么交", "物业费是按月还是按季度", "物业费能用微信交吗", "一平米物业费多少",
                     "物业费可以支付宝付吗", "交物业费去哪", "物业费标准是多少", "这季度物业费怎么缴", "物业费贵不贵啊"],
    "parking": ["月租车位多少钱", "临时停车怎么收费", "停车卡怎么办", "外来车辆停车收费吗", "车牌在哪登记",
                "停车半小时收钱吗", "办个月卡多少钱", "停车费怎么算", "访客停车免费多久"],
    "renovation": ["装修要申报吗", "装修押金多少", "装修几点可以施工", "周末能装修吗", "装修需要提前几天登记",
                   "装修噪音时间有规定吗", "装修申请怎么办", "电钻几点能用", "我要装修怎么办手续"],
    "access_card": ["门禁卡怎么办", "门禁卡丢了怎么办", "再办一张门禁卡多少钱", "租户能办门禁卡吗", "办门禁卡带什么",
                    "门禁卡挂失", "门卡补办", "多配一张门卡要钱吗"],
    "move_out_pass": ["搬家要放行条吗", "放行条怎么开", "搬东西出小区要什么手续", "开放行条要多久", "搬大件出去怎么办",
                      "租户搬家需要业主签字吗", "搬家具出门保安不让"],
    "utilities": ["停水会提前通知吗", "水电费在哪交", "电费交给物业吗", "停电通知在哪看", "水费怎么交",
                  "计划停电会提前说吗", "什么时候停水"],
    "repair_scope": ["维修收费吗", "户内维修要钱吗", "电梯维修要业主出钱吗", "过了保修期修东西收费吗", "公共区域坏了收钱吗",
                     "家里修水管要付费吗", "维修费怎么算", "哪些维修是免费的"],
    "service_hours": ["物业几点上班", "前台几点下班", "晚上有人值班吗", "周末前台开门吗", "紧急维修24小时吗",
                      "服务中心工作时间", "几点能去办事"],
    "response_time": ["留言多久回复", "多久能回电话", "你们回复要多久", "线上留言什么时候有人回", "多长时间给我回电"],
    "complaint_process": ["投诉怎么处理", "投诉多久有回复", "投诉流程是什么", "投诉了会回访吗", "投诉有人管吗",
                          "投诉后多长时间答复"],
    "privacy": ["我的信息会泄露吗", "个人信息怎么保护", "能删除我的资料吗", "你们会卖我电话吗", "业主信息安全吗"],
    "contact_channels": ["怎么联系物业", "物业电话多少", "有微信公众号吗", "可以打电话吗", "服务热线是多少", "在哪能找到你们"],
}


def fill(template: str, rng: random.Random) -> str:
    category = rng.choice(list(COMPLAINT_CUES))
    values = {
        "home": f"[{home(rng)}](location)", "pub": f"[{shared(rng)}](location){rng.choice(AFTER_PLACE)}",
        "loc": f"[{home(rng) if rng.random() < 0.5 else shared(rng)}](location)",
        "fh": rng.choice(FAULTS_HOME), "fs": rng.choice(FAULTS_SHARED), "fs2": rng.choice(["门禁", "灯", "道闸", "对讲"]),
        "u": rng.choice(URGENT), "ph": f"[{slots.phone(rng)}](phone)", "t": f"[{slots.ticket_id(rng)}](ticket_id)",
        "c": rng.choice(COMPLAINT_CUES[category]), "cs": rng.choice(COMPLAINT_CUES["服务态度"]).split("态度")[-1] or "态度差",
        "staff": rng.choice(STAFF), "noise": rng.choice(NOISE_SOURCES), "cw": rng.choice(COMPLAINT_CUES["卫生"]),
        "cp": rng.choice(["乱停车", "高空抛物", "占用消防通道", "遛狗不拴绳", "私搭乱建"]), "name": rng.choice("张王李赵刘陈"),
    }
    return template.format(**values)


# Small talk is the same whoever answers: the shop's hand-written examples of these intents
# (data/nlu/core.yml) are taken as they are, each once more through one noise function.
SHARED_INTENTS = ("greet", "goodbye", "thank", "affirm", "deny", "bot_challenge", "stop",
                  "out_of_scope", "request_human", "rate_service")
SHARED_SOURCE = ROOT / "data" / "nlu" / "core.yml"


def shared_examples() -> dict:
    import yaml

    body = yaml.safe_load(SHARED_SOURCE.read_text(encoding="utf-8")) or {}
    found = {}
    for block in body.get("nlu") or []:
        if block.get("intent") in SHARED_INTENTS:
            texts = [line[2:].strip() for line in block["examples"].splitlines() if line.startswith("- ")]
            # no shop entity in the property data: order numbers dropped, products as plain words
            texts = [noise.ANNOTATION.sub(lambda m: m.group(0)[1:m.group(0).index("]")], t)
                     for t in texts if "(order_id)" not in t]
            found[block["intent"]] = texts
    return found


OWN_SPLIT = ROOT / "tests" / "nlu_property"
HELD_OUT = "held out"


def held_out() -> set:
    """The own split's texts (normalised, annotations removed): never generated as training
    examples, or the split would score lines the model was trained on (data_check: leaks)."""
    import yaml

    found = set()
    for file in sorted(OWN_SPLIT.glob("*.yml")):
        for block in (yaml.safe_load(file.read_text(encoding="utf-8")) or {}).get("nlu") or []:
            for line in str(block.get("examples", "")).splitlines():
                if line.strip().startswith("- "):
                    text = line.strip()[2:]
                    found.add(normalise(noise.ANNOTATION.sub(lambda m: m.group(0)[1:m.group(0).index("]")], text)))
    return found


def generate() -> dict:
    rng = random.Random(SEED)
    out = defaultdict(list)
    seen = dict.fromkeys(held_out(), HELD_OUT)     # the same random draws: held-out lines only skipped
    for intent, texts in sorted(shared_examples().items()):
        for text in texts:
            for variant in (text, noise.noisy(text, rng, max_noises=1)):
                key = normalise(variant)
                if seen.setdefault(key, intent) == intent and variant not in out[intent]:
                    out[intent].append(variant)
    for intent, templates in sorted(TEMPLATES.items()):
        for template in templates:
            needs = "{" in template
            for _ in range(PER_TEMPLATE if needs else 1):
                text = fill(template, rng)
                for variant in (text, noise.noisy(text, rng)):
                    key = normalise(noise.ANNOTATION.sub(lambda m: m.group(0)[1:m.group(0).index("]")], variant))
                    if seen.setdefault(key, intent) != intent or variant in out[intent]:
                        continue
                    out[intent].append(variant)
    for topic, questions in sorted(FAQ.items()):
        label = f"faq/{topic}"
        for question in questions:
            for variant in (question, noise.noisy(question, rng, max_noises=1)):
                key = normalise(variant)
                if seen.setdefault(key, label) == label and variant not in out[label]:
                    out[label].append(variant)
    return out


def render(examples: dict) -> str:
    n = sum(len(v) for v in examples.values())
    lines = ["# GENERATED by businesses/property/generate.py: do not edit by hand.",
             f"# Templates × slot fillers × noise, seed {SEED}; {n} examples.", 'version: "3.1"', "nlu:"]
    for label in sorted(examples):
        lines.append(f"- intent: {label}")
        lines.append("  examples: |")
        lines += [f"    - {text}" for text in examples[label]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = render(generate())
    if args.check:
        return 0 if TARGET.exists() and TARGET.read_text(encoding="utf-8") == text else 1
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(text, encoding="utf-8")
    print(f"{TARGET.relative_to(ROOT)}: {text.count(chr(10) + '    - ')} examples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
