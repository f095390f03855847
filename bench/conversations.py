"""Realistic multi-turn Chinese conversations for the load benchmark.

The same scripts the end-to-end tests walk through: FAQ questions, a complaint form to its
ticket, repairs (normal and urgent), a return, and ticket status checks. A simulated
customer plays one script per conversation (a fresh sender id each time, as a new shop
visitor would be), then the next script.
"""
from __future__ import annotations

from typing import List, Tuple

SCRIPTS: List[Tuple[str, List[str]]] = [
    ("faq", ["你好", "买的东西几天之内可以退货啊？", "运费怎么算的", "保修期是多久？", "谢谢"]),
    ("complaint", ["快递员态度太差了，还把我的冰箱磕坏了，我要投诉", "DD202611200088",
                   "138 1234 5678", "我的投诉处理到哪一步了"]),
    ("repair", ["洗衣机不脱水了，麻烦派个师傅上门修一下", "北京市朝阳区建国路88号1单元302",
                "18612345678"]),
    ("faq2", ["七天无理由退货吗", "保修几年", "运费怎么算"]),
    ("urgent_repair", ["我要报修", "热水器", "燃气热水器一直有漏气的味道",
                       "上海市浦东新区世纪大道100号3栋502", "13900112233"]),
    ("status", ["我的工单到哪了", "查一下KF0000000000的进度"]),
    ("return", ["申请退货，订单号202611250001234", "尺寸不合适", "3天前"]),
]

TURNS_PER_ROUND = sum(len(turns) for _, turns in SCRIPTS)
