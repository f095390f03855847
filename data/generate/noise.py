"""Noise functions: how real customers bend a clean sentence.

Every function takes ``(text, rng)`` and returns text. They only touch plain text:
:func:`apply_outside_annotations` keeps Rasa's ``[value](entity)`` annotations intact.
"""
from __future__ import annotations

import random
import re
from typing import Callable, List

ANNOTATION = re.compile(r"\[[^\]]+\]\([^)]+\)")

# correct → what a phone keyboard or a hurried customer writes instead
HOMOPHONES = [("在", "再"), ("再", "在"), ("的", "得"), ("的", "地"), ("得", "的"), ("地", "的"),
              ("账", "帐"), ("已经", "以经"), ("已", "己"), ("做", "作"), ("哪", "那"),
              ("吗", "嘛"), ("么", "嚒"), ("已经", "己经"), ("那", "哪")]
DIALECT = [("怎么办", "咋整"), ("怎么办", "咋办"), ("怎么", "咋"), ("怎么样", "咋样"),
           ("什么", "啥"), ("什么", "么子"), ("没有", "木有"), ("没有", "没得"), ("弄", "整"),
           ("修一下", "整整"), ("看看", "瞅瞅"), ("看一下", "瞅一眼"), ("看", "瞅"), ("我", "俺"),
           ("我们", "俺们"), ("吗", "嘛"), ("吗", "不"), ("很", "贼"), ("非常", "老"),
           ("知道", "晓得"), ("不知道", "不晓得"), ("东西", "玩意儿"), ("一下", "一哈"),
           ("是不是", "是伐"), ("这个", "这玩意"), ("干什么", "干啥"), ("为什么", "为啥"),
           ("不要", "不要得"), ("好的", "中"), ("好的", "要得"), ("我的", "俺的"), ("你们", "恁")]
SLANG = ["无语子", "栓Q", "绝绝子", "破防了", "救命", "离谱", "真的会谢", "服了", "家人们",
         "emo了", "芭比Q了", "麻了", "裂开", "yyds", "啊这", "哭死", "好家伙", "一整个无语住",
         "大无语", "我真的会栓Q", "绷不住了", "狗头", "tql", "xswl", "awsl", "orz"]
EMOJI = ["😡", "😤", "😭", "🙏", "👍", "😅", "😂", "🤔", "💔", "🔥", "😊", "👌", "❗", "😓",
         "🥲", "🙄", "😠", "😢", "🤬", "😩", "✌️", "🥺", "😑", "💢", "⚠️", "🆘"]
ENGLISH = [("退货", "return"), ("退款", "refund"), ("订单", "order"), ("投诉", "complain"),
           ("进度", "progress"), ("进度", "update"), ("维修", "repair"), ("换货", "exchange"),
           ("客服", "service"), ("谢谢", "thx"), ("好的", "ok"), ("工单", "ticket"),
           ("快点", "asap"), ("请", "pls"), ("麻烦", "pls"), ("问题", "problem"),
           ("电话", "phone"), ("地址", "address"), ("取消", "cancel"), ("上门", "onsite"),
           ("是的", "yes"), ("不是", "no"), ("师傅", "worker"), ("状态", "status")]
FILLERS = ["那个", "就是", "嗯", "呃", "然后", "就是说", "那个那个", "对吧", "你知道吧", "反正",
           "我跟你说", "喂", "哎"]
POLITE_HEAD = ["您好，", "你好，", "请问", "麻烦您，", "打扰一下，", "亲，", "客服您好，",
               "不好意思，", "劳驾，"]
POLITE_TAIL = ["，谢谢", "，麻烦了", "，辛苦了", "，谢谢您", "，感谢", "哈", "呢", "哦", "~"]
FURIOUS_HEAD = ["到底", "喂！", "我说", "你们", "搞什么！", "能不能快点！", "气死我了，",
                "服了你们了，"]
FURIOUS_TAIL = ["！！！", "！！", "？？？", "!!!", "，快点", "，赶紧的", "，别敷衍我",
                "，到底行不行", "，急死了", "，别再拖了"]
PUNCT = re.compile(r"[，。！？、,.!?~～；;：:]")


def apply_outside_annotations(text: str, fn: Callable[[str], str]) -> str:
    parts, last = [], 0
    for m in ANNOTATION.finditer(text):
        parts.append(fn(text[last:m.start()]))
        parts.append(m.group())
        last = m.end()
    parts.append(fn(text[last:]))
    return "".join(parts)


def _swap(pairs, text: str, rng: random.Random, rate: float) -> str:
    for src, dst in rng.sample(pairs, len(pairs)):
        if src in text and rng.random() < rate:
            text = text.replace(src, dst, 1)
    return text


def homophone(text: str, rng: random.Random) -> str:
    return apply_outside_annotations(text, lambda t: _swap(HOMOPHONES, t, rng, 0.5))


def dialect(text: str, rng: random.Random) -> str:
    return apply_outside_annotations(text, lambda t: _swap(DIALECT, t, rng, 0.6))


def english(text: str, rng: random.Random) -> str:
    def mix(t: str) -> str:
        for src, dst in rng.sample(ENGLISH, len(ENGLISH)):
            if src in t and rng.random() < 0.6:
                t = t.replace(src, f" {dst} ", 1)
        return re.sub(r"  +", " ", t)
    return apply_outside_annotations(text, mix)


def slang(text: str, rng: random.Random) -> str:
    word = rng.choice(SLANG)
    return f"{word} {text}" if rng.random() < 0.4 else f"{text} {word}"


def emoji(text: str, rng: random.Random) -> str:
    marks = "".join(rng.choice(EMOJI) for _ in range(rng.choice([1, 1, 2, 3])))
    return f"{marks}{text}" if rng.random() < 0.2 else f"{text}{marks}"


def voice(text: str, rng: random.Random) -> str:
    """Voice-to-text: no punctuation, fillers, a repeated word."""
    def run_on(t: str) -> str:
        t = PUNCT.sub(" " if rng.random() < 0.5 else "", t)
        return t
    text = apply_outside_annotations(text, run_on)
    if rng.random() < 0.7:
        text = f"{rng.choice(FILLERS)}{rng.choice(['', ' '])}{text}"
    if rng.random() < 0.4:
        text = f"{text}{rng.choice(['', ' '])}{rng.choice(FILLERS)}"
    return re.sub(r"  +", " ", text).strip()


def polite(text: str, rng: random.Random) -> str:
    head = rng.choice(POLITE_HEAD) if rng.random() < 0.7 else ""
    tail = rng.choice(POLITE_TAIL) if rng.random() < 0.6 else ""
    return f"{head}{text}{tail}"


def furious(text: str, rng: random.Random) -> str:
    head = rng.choice(FURIOUS_HEAD) if rng.random() < 0.5 else ""
    return f"{head}{text}{rng.choice(FURIOUS_TAIL)}"


def repeat_punct(text: str, rng: random.Random) -> str:
    mark = rng.choice(["！", "？", "!", "?", "。", "~"])
    return text.rstrip("。！？!?~") + mark * rng.randint(2, 5)


def spacing(text: str, rng: random.Random) -> str:
    """Spaces where a comma belongs, or none at all."""
    return apply_outside_annotations(text, lambda t: PUNCT.sub(rng.choice([" ", ""]), t)).strip()


NOISES: List[Callable[[str, random.Random], str]] = [
    homophone, dialect, english, slang, emoji, voice, polite, furious, repeat_punct, spacing]
WEIGHTS = [3, 3, 2, 1, 2, 3, 2, 2, 1, 3]


# what a customer says before the next thing (好的，那… / 明白了。那如果… / 行，那…): it agrees to
# nothing; the request after it is the message
ACKNOWLEDGEMENTS = ["好的，", "好的 那", "好的，那", "嗯，", "嗯嗯 ", "哦，", "哦哦，那", "明白了。", "明白了，那",
                    "知道了，", "了解，", "收到，", "ok，", "好吧，", "行，", "行吧 那", "可以，", "懂了，那", "对了，",
                    "好滴，", "嗯嗯好的，那"]


def acknowledged(text: str, rng: random.Random) -> str:
    """An acknowledgement of the last answer before the message (``好的，那退款多久到账``)."""
    head = rng.choice(ACKNOWLEDGEMENTS)
    if head.endswith("那") and text.startswith("那"):
        head = head[:-1]
    return f"{head}{text}"


def noisy(text: str, rng: random.Random, max_noises: int = 2) -> str:
    """Zero to ``max_noises`` noise functions, chosen by weight."""
    n = rng.choice([0] + list(range(1, max_noises + 1)) * 2)
    for fn in rng.choices(NOISES, weights=WEIGHTS, k=n):
        text = fn(text, rng)
    return text.strip()
