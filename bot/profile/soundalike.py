"""A product named with a homophone slip (热水气 for 热水器, 冰相 for 冰箱, 洗衣几, 空掉): voice
input and pinyin keyboards write a character of the same sound, which no entity extractor
knows. :func:`sound_alike` finds the one catalogue word a run of the text sounds like.

A run counts when it is spelled like the word but for one character (two in words of five or
more), each different character shares a reading with the word's (pypinyin, every reading of a
heteronym, tones ignored: 掉 diao ~ 调 tiao/diao, 几 ji3 ~ 机 ji1), the first character is the
word's own (a slip on the word's head, 查几个 ~ 茶几, is too often a different word), the
different character is no function word (是, 了, 的 …: 电是 is not 电视), the run is not itself a
common word (jieba's dictionary: 电势, 冰山), and it starts where a word of the message starts (停电时 is 停电 +
时, not 电视). Only an unambiguous answer is given: two catalogue words sounded at once (once
the shorter inside a longer one is dropped) give None, and so does a text that spells a
catalogue word exactly (the extractor's business).

Pure (the word list is passed in; pypinyin's and jieba's dictionaries are read on first use);
tested in tests/test_soundalike.py.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import FrozenSet, Iterable, List, Optional, Tuple

_CJK = re.compile(r"[\u4e00-\u9fff]")
# characters no slip writes for a product's: grammar, not sound
FUNCTION_CHARS = frozenset("是的了在吗呢吧啊呀哦嘛不没也都就和与或还很又才把被给让从向对说要会能有个这那么")


@lru_cache(maxsize=4096)
def readings(char: str) -> FrozenSet[str]:
    """Every toneless pinyin reading of one Chinese character (empty for anything else)."""
    if not _CJK.fullmatch(char or ""):
        return frozenset()
    from pypinyin import Style, pinyin

    found = pinyin(char, style=Style.NORMAL, heteronym=True, errors="ignore")
    return frozenset(r for r in (found[0] if found else ()) if r)     # 龦: a CJK code point pypinyin cannot read


def same_sound(a: str, b: str) -> bool:
    return bool(readings(a) & readings(b))


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(60)
    jieba.initialize()
    return jieba


def _word_starts(text: str) -> FrozenSet[int]:
    starts, at = set(), 0
    for token in _jieba().lcut(text):
        starts.add(at)
        at += len(token)
    return frozenset(starts)


# a run jieba counts this often is a word of its own (电势 97, 冰山 280), not a slip (空条 3)
WORD_FREQ = 20


def _is_word(run: str) -> bool:
    return (_jieba().get_FREQ(run) or 0) >= WORD_FREQ


def _slip(run: str, word: str) -> bool:
    if run == word or run[0] != word[0]:
        return False
    differ = [(r, w) for r, w in zip(run, word) if r != w]
    if len(differ) > (2 if len(word) >= 5 else 1):
        return False
    return all(r not in FUNCTION_CHARS and same_sound(r, w) for r, w in differ)


def sound_alike(text: str, words: Iterable[str]) -> Optional[str]:
    """The one word of ``words`` (catalogue words of two or more Chinese characters) that a run
    of ``text`` sounds like but misspells, or None (none, several, or one spelled right)."""
    text = text or ""
    catalogue = sorted({str(w) for w in words if len(str(w)) >= 2 and all(_CJK.match(c) for c in str(w))},
                       key=len, reverse=True)
    if not catalogue or not _CJK.search(text) or any(w in text for w in catalogue):
        return None
    hits: List[Tuple[str, int]] = []
    starts = None
    for word in catalogue:
        for at in range(0, len(text) - len(word) + 1):
            run = text[at:at + len(word)]
            if not _slip(run, word):
                continue
            starts = _word_starts(text) if starts is None else starts
            if at in starts and not _is_word(run):
                hits.append((word, at))
    # a shorter word heard inside a longer one (热水器 in 燃气热水器) is the longer one
    kept = {w for w, at in hits if not any(len(o) > len(w) and oa <= at and at + len(w) <= oa + len(o)
                                           for o, oa in hits)}
    return kept.pop() if len(kept) == 1 else None


@lru_cache(maxsize=4096)
def main_reading(char: str) -> str:
    """A character's everyday toneless reading (追 is zhui, never its rare tui; 完 is wan)."""
    if not _CJK.fullmatch(char or ""):
        return ""
    from pypinyin import Style, pinyin

    found = pinyin(char, style=Style.NORMAL, heteronym=False, errors="ignore")
    return found[0][0] if found and found[0] else ""


# characters that are words of their own before a service word's tail (未修, 为修, 已付款): no slip
RESPELL_NEVER = frozenset("未为已以再在")
# real words and phrases one same-sounding character away from a service word
RESPELL_KEEP = ("暗装", "退签", "前胎", "快滴")


def respell(text: str, words: Iterable[str]) -> str:
    """``text`` with every run that sounds like one of ``words`` but misspells one character
    of it written as the word, same length (腿货 → 退货, 头诉 → 投诉, 按装 → 安装, 人攻 → 人工).

    Unlike a product's slip the different character may be any of the word's (these are a
    handful of service words, each of them two or three characters); its everyday reading is
    the word's (追 zhui is no 退 tui, though pypinyin knows a rare tui), it is no function word
    nor a word of its own before the tail (未修, 已付款), the run starts and ends where jieba's words do (退或者
    is 退 + 或者, no 退货), it is not itself a common word (保修, 投宿 and 退还 stay), and it
    sounds like one word only (包修 is 报修 and 保修: left alone)."""
    if not text or not _CJK.search(text):
        return text
    catalogue = sorted({str(w) for w in words if len(str(w)) >= 2}, key=len, reverse=True)
    # a service word written right is never another's slip (报修 is no 保修 misspelt)
    exact = {i for word in catalogue for m in re.finditer(re.escape(word), text)
             for i in range(m.start(), m.end())}
    spans: List[Tuple[int, str]] = []
    bounds = None
    for at in range(len(text) - 1):
        heard = set()
        for word in catalogue:
            run = text[at:at + len(word)]
            if len(run) < len(word) or run == word:
                continue
            differ = [(r, w) for r, w in zip(run, word) if r != w]
            if len(differ) == 1 and all(r not in FUNCTION_CHARS and r not in RESPELL_NEVER
                                        and main_reading(r) and main_reading(r) == main_reading(w)
                                        for r, w in differ) and run not in RESPELL_KEEP:
                heard.add(word)
        # a shorter word heard inside a longer one (物业 in 物业费) is the longer one
        heard = {w for w in heard if not any(len(o) > len(w) and w in o for o in heard)}
        if len(heard) != 1:
            continue
        word = heard.pop()
        run = text[at:at + len(word)]
        if exact & set(range(at, at + len(word))) or any(at < a + len(w) and a < at + len(word) for a, w in spans):
            continue
        if bounds is None:
            starts = _word_starts(text)
            bounds = starts | {len(text)}
        if at in bounds and at + len(word) in bounds and not _is_word(run):
            spans.append((at, word))
    for at, word in spans:
        text = text[:at] + word + text[at + len(word):]
    return text
