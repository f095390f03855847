"""What else a customer's message mentions: a product in English, a missing order number, a
fault, the reason for a return, a question rather than an answer.

Pure functions (no Rasa, no I/O), used by the form validators in ``actions/`` and tested in
tests/test_mentions_parsing.py. Text is read through ``details.fold`` (full-width forms and
every digit ASCII) first.
"""
from __future__ import annotations

import re
from typing import List, Optional

from bot.profile.details import PHONE_ANY, fold

# --- a product named in English ("my fridge不制冷") ------------------------------------------
_ENGLISH_PRODUCTS = (
    ("washing machine", "洗衣机"), ("washer", "洗衣机"), ("dishwasher", "洗碗机"),
    ("refrigerator", "冰箱"), ("fridge", "冰箱"), ("freezer", "冰箱"),
    ("air conditioner", "空调"), ("air conditioning", "空调"), ("aircon", "空调"), ("a/c", "空调"),
    ("television", "电视"), ("tv", "电视"), ("water heater", "热水器"), ("boiler", "热水器"),
    ("sofa", "沙发"), ("couch", "沙发"), ("mattress", "床垫"), ("microwave", "微波炉"),
    ("range hood", "油烟机"), ("cooker hood", "油烟机"), ("rice cooker", "电饭煲"),
    ("water purifier", "净水器"), ("robot vacuum", "扫地机器人"), ("wardrobe", "衣柜"),
    ("laptop", "电脑"), ("computer", "电脑"), ("stove", "燃气灶"), ("gas hob", "燃气灶"),
)


def english_product(text: str) -> Optional[str]:
    """The catalogue word for a product named in English (``fridge`` → 冰箱), or None."""
    lowered = fold(text).lower()
    for word, product in _ENGLISH_PRODUCTS:
        if re.search(r"(?<![a-z])" + re.escape(word) + r"s?(?![a-z])", lowered):
            return product
    return None


def named_product(text: str) -> Optional[str]:
    """A product the extractor did not find: named in English (``fridge`` → 冰箱) or with a
    homophone slip of a catalogue word (热水气 → 热水器, 冰相 → 冰箱; the business profile's
    ``product_words``, bot/profile/soundalike.py), or None."""
    english = english_product(text)
    if english:
        return english
    from bot.profile.soundalike import sound_alike

    words = product_words()
    return catalogue_word(fold(text), words) or sound_alike(fold(text), words)


def product_words() -> List[str]:
    """The business profile's catalogue words (``product_words``), longest first."""
    from bot.profile.business import load_profile

    return sorted((str(w) for w in load_profile().get("product_words") or ()), key=len, reverse=True)


def catalogue_word(text: str, words) -> Optional[str]:
    """The catalogue word the text spells (the last named; 燃气热水器, not the 热水器 inside it),
    for a product the extractor missed (家里的壁挂炉坏了), or None."""
    found = [(m.start(), m.end(), w) for w in words if len(w) >= 2 for m in re.finditer(re.escape(w), text)]
    kept = [f for f in found if not any(o[0] <= f[0] and f[1] <= o[1] and o != f for o in found)]
    return max(kept)[2] if kept else None


# --- "I have no order number" said in passing ("订单号找不到了！") ------------------------------
_NO_ORDER = re.compile(
    r"(?:订单号?|单号|order(?:\s*(?:number|no\.?|id))?)[^，,。！!？?\d]{0,4}(?:找不到|找不着|找不见|搵唔到|揾唔到|冇|唔知|唔记得|不见了|没有|不知道|忘了|忘记|记不得|"
    r"不记得|记不清|丢了|删了|查不到|没存|没留|没保存|not sure|don't have|lost|can't find)|"
    r"(?:没有|没|找不到|找不着|不知道|忘了|忘记了?|不记得|记不得|记不清|查不到|no|don't have|lost|can't find)\s*(?:the\s+|my\s+)?"
    r"(?:订单号|订单|单号|order\s*(?:number|no\.?|id)?)", re.I)


def says_no_order(text: str) -> bool:
    """The customer says they have no order number (``订单号找不到了``, ``没有单号``)."""
    return bool(_NO_ORDER.search(fold(text)))


_FORGOT_TICKET = re.compile(
    r"(?:工单号|工单编号|记录编号|kf号?)[^，,。！!？?\d]{0,4}(?:忘了|忘记|忘掉|不记得|记不得|记不清|找不到|找不着|丢了|没记|"
    r"没存|不知道|删了)|(?:忘了|忘记了?|不记得|记不清|找不到|不知道|没记)(?:我的|那个)?(?:工单号|工单编号|记录编号)|"
    r"(?i:forgot (?:my |the )?ticket|lost (?:my |the )?ticket)", re.I)


def forgot_ticket(text: str) -> bool:
    """The customer has no ticket number to give (``工单号我忘了``, ``不记得编号了``)."""
    return bool(_FORGOT_TICKET.search(fold(text)))


# --- a fault ("黑屏", "makes loud noise") ----------------------------------------------------
FAULT = re.compile(
    r"坏|不|没|漏|响|异|冒|烧|停|卡|断|裂|慢|热|冷|跳闸|报错|故障|问题|失灵|掉|松|堵|臭|味|闪|黑屏|花屏|蓝屏|白屏|死机|"
    r"歪|变形|凹|塌|陷|鼓包|渗|滴|抖|晃|噪|吵|锈|霉|爆(?!款|品|单|满|料)|淹|竖线|横线|亮线|条纹|漏光|打不开|关不上|"
    r"(?i:noise|noisy|leak|broken|break|not working|doesn't work|won't|stopped|dead|crack|smell|smoke|spark|"
    r"no power|not cool|not heat|error|stuck|flicker|loud|drip|puddle|won't (?:turn on|start|close|drain))")


def mentions_fault(text: str) -> bool:
    """The text tells a fault; a product's own name is none (燃气热水器 has 热, 冷柜 冷: the
    profile's ``product_words`` are left out first)."""
    folded = fold(text)
    for word in product_words():
        folded = folded.replace(word, " ")
    return bool(FAULT.search(folded))


# --- the reason for a return, told with the request ("冰箱门是歪的！给我换一台！") -----------
_REASON = re.compile(
    r"质量|尺寸|不合适|不想要|不要了|不喜欢|颜色|色差|坏|破|不符|不一样|买错|拍错|大了|小了|太大|太小|多买|少件|缺|瑕疵|划|刮|"
    r"故障|不制冷|不好用|有问题|发错|用不了|不能用|异味|味道|气味|味儿|股[\u4e00-\u9fa5]{0,3}味|焦味|糊味|烧焦|冒烟|熏|甲醛|刺鼻|臭|歪|斜|变形|凹|裂|碎|脏|旧|假|漏|响|闪|黑屏|"
    r"不亮|不转|不加热|坏点|塌|陷|掉漆|掉色|脱落|起皮|生锈|少了|缺了|涂层|不热|不冷|不凉|不响|不动|没反应|失灵|不工作|"
    r"不出水|不出风|打不开|关不上|合不上|装不上|竖线|横线|亮线|条纹|漏光|亮点|暗点|碎屏|花屏|"
    # a verb that cannot reach its result (关不严, 拧不紧, 推不动, 合不拢): a defect
    r"不脱水|不甩干|[\u4e00-\u9fa5]不(?:严|紧|拢|动|稳|住|亮|干净|平)|"
    # too much of something (太软了, 太硬, 太吵, 太重) and not used to it (睡不惯, 用不习惯, 不舒服)
    r"(?<!太)太(?!好|棒|感谢|谢谢|麻烦|久|晚|早|太|阳|原|平|空|极|湖|古|仓|和)[\u4e00-\u9fa5]|[睡用穿坐吃看听]不(?:惯|习惯|了)|不习惯|不舒服|"
    r"(?i:don't like|do not like|not like|wrong|size|fit|broken|damaged|defect|faulty|leak|not working|doesn't work|"
    r"changed my mind|don't need|don't want)")
_NOT_REASON = re.compile(r"订单号码?|订单|单号|电话号码|电话|手机号码?|手机|号码|地址|(?i:order|phone|address)")
_REQUEST = re.compile(r"我要|我想|(?<!不)想要|能不能|可不可以|可以吗|行不行|给我|帮我|麻烦|申请|办理|"
                      r"退货|退款|退钱|退掉|退了|换货|换一台|换一个|换个|换台|换新的?|退换|退|换|(?i:return|refund|exchange|please)")


def reason_in(text: str) -> Optional[str]:
    """The clauses of a message that say why the item goes back (a defect, a dislike), or None:
    request words, order numbers, phones and dates are no reason."""
    folded = PHONE_ANY.sub(" ", fold(text))
    folded = re.sub(r"(?i)dd\d+|\d{12,20}", " ", folded)
    kept = []
    # a space between Chinese words parts clauses as a comma does (太软了 我腰不好睡不了)
    for clause in re.split(r"[，,。！!？?；;~～\n]+|(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])", folded):
        clause = _NOT_REASON.sub("", clause).strip(" :：是")
        rest = _REQUEST.sub("", clause)
        if len(re.sub(r"[\s的了吧啊呀呢哦嘛😭🙏😂]", "", rest)) >= 2 and _REASON.search(clause):
            kept.append(clause)
    return "，".join(kept)[:500] if kept else None


# --- a question rather than an answer ("修要花钱吗") ------------------------------------------
_QUESTION = re.compile(r"吗|么[？?]?$|[？?]|呢[\s。~～]*$|多少钱|多少|多久|多长时间|(?<![前这没好有才])几天|几点|几号|怎么|如何|为什么|为啥|凭什么|是不是|要不要|收费|免费|谁|哪|"
                       # A-not-A (能不能, 有没有) and the dialects' question tails (要钱不嘛, 发了没, 咩, 冇)
                       r"([\u4e00-\u9fa5])[不没]\1|(?:不|没|没有)[嘛吗啊呀哦噻撒咯]?[\s。!！~～]*$|嘛[\s。!！~～]*$|咩|冇|伐[\s。]*$|"
                       r"(?i:how|what|why|when|can i|do i|is it)")


def is_question(text: str) -> bool:
    folded = fold(text)
    return bool(_QUESTION.search(folded) or _WHEN.search(folded))      # 啥时候来人 asks too


_WHY_PHONE = re.compile(r"(凭什么|为什么|为啥|干嘛|干什么|干啥|弄啥|做啥|咋还|怎么还|还要|做咩|点解).{0,6}(电话|手机|号码|联系方式)|"
                        r"(电话|手机|号码|联系方式).{0,6}(干嘛|干什么|干啥|弄啥|做啥|做什么|有什么用|有啥用|做咩|搞么子)|"
                        r"(?i:why (?:do you )?need my (?:phone|number)|what do you need my (?:phone|number) for)")


def asks_why_phone(text: str) -> bool:
    """``凭什么给你电话？``: the customer asks why a phone number is needed."""
    return bool(_WHY_PHONE.search(fold(text)))


# the customer gives up on the assistant (你这也不会那也不会, 答非所问, 人工智障, 说了等于没说)
_BOT_FAILS = re.compile(r"(?:这|啥|什么|那)也不会|(?:啥|什么)都不会|都不懂|听不懂(?:人话|我说)|答非所问|牛头不对马嘴|"
                        r"人工智障|智障|笨死|太笨|好笨|真笨|白问|说了等于没说|没用的机器人|机器人(?:没用|真没用|太差)|"
                        r"(?i:useless bot|you don't understand|not helpful at all)")


def gives_up_on_bot(text: str) -> bool:
    """``唉呀 你这也不会那也不会 咋整啊``: the assistant is not helping, in the customer's words."""
    return bool(_BOT_FAILS.search(fold(text)))


_DATA = r"(?:电话|号码|手机号?|个人信息|信息|资料|隐私|住址)"
_SOLD = r"(?:卖|出卖|泄露|泄漏|外泄|透露|流出|共享|(?:给|交给)了?(?:别人|外人|第三方|其他人|别的公司))"
_FEARS_FOR_DATA = re.compile(_DATA + r"[^，,。！!？?\d]{0,8}" + _SOLD + "|" + _SOLD + r"了?[^，,。！!？?\d]{0,4}" + _DATA + "|"
                             r"(?:骚扰|推销)电话[^。！!？?]{0,14}(?:泄露|泄漏|卖)")


_OUT_OF_WARRANTY = re.compile(r"过保|过了保修|保修期外|出了保修|不在保修期|保修期过了|超过保修|超出保修|(?i:out of warranty)")


_UTILITY_BILL = re.compile(r"水费|电费|燃气费|煤气费|水电费|水电燃气")


def names_utility_bill(text: str) -> bool:
    """``我家电费是交给物业的吗``: water, power or gas bills (paid to the utilities, not the office)."""
    return bool(_UTILITY_BILL.search(fold(text)))


def out_of_warranty(text: str) -> bool:
    """``过保呢``, ``保修期过了修要钱吗``: what a repair costs after the warranty, not the warranty."""
    return bool(_OUT_OF_WARRANTY.search(fold(text)))


def fears_for_data(text: str) -> bool:
    """``你们是不是把我电话卖给装修公司了``, ``我的电话你们不会给别人吧``: a worry that personal data
    was sold or passed on (the privacy answer, whatever trade the message also names)."""
    return bool(_FEARS_FOR_DATA.search(fold(text)))


# --- "when?" about something promised ("多久给我答复", "师傅啥时候来") -----------------------
_WHEN = re.compile(r"多久|多长时间|多少时间|多少天|(?<![前这没好有才])几天|几个小时|几小时|什么时候|啥时候|啥时|几时|何时|几点|"
                   r"(?<![了等很])好久(?=来|到|能|可以|会|有人|发|送|装|修|回)|"
                   r"要等多久|等多久|(?i:how long|when will|when can|when do|how soon)")


def asks_when(text: str) -> bool:
    """The customer asks how long or when (``多久给我答复啊``, ``师傅好久来``, ``how long``)."""
    return bool(_WHEN.search(fold(text)))


# --- a follow-up to the answer just given ("沙发呢", "不满99呢", "那好久来装") ------------------
_NOT_COUNTED = re.compile(r"[\s\W_]|[\U0001F300-\U0001FAFF\u2600-\u27BF]")


_LEANS_ON = re.compile(r"^(?:那|那么|那要是|要是|如果|假如|万一|还有|另外|再问一下|顺便问|那如果|那我|(?i:and|what if|then|also))|呢")


# an acknowledgement of the answer before the follow-up (明白了。那如果… / 好的，那…): no part of it
_ACK_LEAD = re.compile(r"^(?:好的|好滴|好吧|好|行吧|行|嗯+|哦+|噢+|明白了?|知道了|了解了?|收到|懂了|可以|(?i:ok|okay))"
                       r"(?:[，,。.!！~～\s]+|(?=那))")


def without_acknowledgement(text: str) -> str:
    """The message without a leading acknowledgement (``明白了。那如果…`` → ``那如果…``)."""
    return _ACK_LEAD.sub("", text, count=1)


def is_follow_up(text: str, longest: int = 16) -> bool:
    """A message that leans on what was just said: short (``多久能开出来``: at most ``longest``
    characters, no emoji or punctuation counted) or elliptical at any length (``沙发呢``,
    ``那要是买个大衣柜呢 那么大个东西是不是要等好久``). Whether it is about the topic just
    answered is for the classifier's ranking to say."""
    folded = without_acknowledgement(fold(text).strip())
    core = _NOT_COUNTED.sub("", folded)
    return 0 < len(core) <= longest or leans_on_answer(text)


def leans_on_answer(text: str) -> bool:
    """Elliptical: ``那…``, ``要是…``, ``…呢``: it means little without the answer just given."""
    folded = without_acknowledgement(fold(text).strip())
    return bool(_NOT_COUNTED.sub("", folded) and _LEANS_ON.search(folded))


_WHAT_ABOUT = re.compile(r"^(?:那|那么|还有)?(.+?)呢[\s。.?？!！~～]*$")


def what_about(text: str) -> Optional[str]:
    """``沙发这种大件呢`` / ``那冰箱呢``: "and what about X?", the question just answered asked
    again of X; X, or None when the message asks something of its own (``沙发能退吗呢``, ``多久呢``)."""
    match = _WHAT_ABOUT.match(fold(text).strip())
    if not match or is_question(match.group(1)):
        return None
    return match.group(1)


# --- asking for a form's service, not about it ("要换货", "给我退了", not "能换货吗") -----------
_ASKS_FOR = re.compile(
    r"(?<![不别没])(?:我要|我想|想要|要|想|帮我|给我|申请|麻烦|需要|得|直接|必须)(?:给我|帮我|办理?|申请|个|马上|赶紧|立刻)?"
    r"(?:退货|退款|退掉|退了|退钱|换货|换一个|换个|换台|换一台|换新|退换|报修|维修|修一下|修理|上门修|投诉)|"
    r"(?i:i want (?:a |to )?(?:refund|return|exchange|repair|complain))")


_BARE_SERVICE = re.compile(r"(?:投诉|报修|维修|退货|换货|退换货|(?i:refund|return|exchange|repair|complaint))(?:一下|吧|啊|呀)?")


def asks_for_service(text: str) -> bool:
    """The message asks for a return, an exchange, a repair or a complaint (``一用就漏水 要换货``,
    or just ``换货！``), rather than asking about one (``可以换货吗``)."""
    folded = fold(text)
    return bool(_ASKS_FOR.search(folded) or _BARE_SERVICE.fullmatch(_NOT_COUNTED.sub("", folded)))


# --- really stopping ("算了", "不投诉了"), when the classifier is not sure it is a stop ------------
_STOP = re.compile(r"算了|取消|不办了|不弄了|不用了|不需要了|先这样|就这样吧|没事了|不聊了|退出|结束|"
                   r"(?:不|别|甭)(?:再)?(?:想)?(?:投诉|报修|修|维修|退|换|退货|换货|退换|办|弄|要|登记|问)了|"
                   r"(?i:never ?mind|cancel|forget it|stop)")


def says_stop(text: str) -> bool:
    """The message says to stop (``算了``, ``不投诉了``, ``取消吧``), whatever else it says."""
    return bool(_STOP.search(fold(text)))
