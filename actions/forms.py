"""Validation for the complaint, repair and return forms: a clear re-ask, nothing wrong stored."""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.profile import parsing

from bot.profile import privacy

from bot.profile import business as profile

NO_ORDER = ("没有", "没", "无", "不知道", "忘了", "记不得", "没订单", "不记得", "没有订单号")
ADDRESS_CUES = re.compile(r"[省市区县镇乡村路街道巷号栋幢楼层室单元小区弄苑园里]")
FILLER = re.compile(r"(我要|我想|想要|帮我|麻烦|请|你们|给我|一下|投诉|报修|维修|修理|上门|派人|师傅|来修|"
                    r"安装|申请|处理|的|了|吧|啊|呀|呢|！|!|。|，|,|\s)")


def _substance(text: str) -> str:
    """What is left of a message after the request words: is there a description in it?"""
    return FILLER.sub("", text or "")


def _is_form_start(tracker: Tracker) -> bool:
    return tracker.get_slot("requested_slot") is None


def valid_order_id(value: Any) -> Optional[str]:
    return parsing.find_order_id(str(value or ""))


def validate_phone_value(value: Any, dispatcher: CollectingDispatcher) -> Dict[Text, Any]:
    phone = privacy.normalise_phone(str(value or ""))
    if phone:
        return {"phone": phone}
    dispatcher.utter_message(text="这个手机号好像不对哦，请输入11位大陆手机号（1开头，例如 138 0000 0000）。")
    return {"phone": None}


class ValidateComplaintForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_complaint_form"

    async def extract_complaint_category(self, dispatcher, tracker: Tracker, domain) -> Dict:
        if _is_form_start(tracker) and not tracker.get_slot("complaint_category"):
            category = parsing.complaint_category(tracker.latest_message.get("text", ""))
            if category:
                return {"complaint_category": category}
        return {}

    async def extract_complaint_description(self, dispatcher, tracker: Tracker, domain) -> Dict:
        text = tracker.latest_message.get("text", "")
        if _is_form_start(tracker) and len(_substance(text)) >= 6:
            return {"complaint_description": text}
        return {}

    def validate_complaint_category(self, value, dispatcher, tracker, domain) -> Dict:
        category = parsing.complaint_category(str(value))
        if category is None and str(value).strip() in ("5", "其它"):
            category = parsing.OTHER_CATEGORY
        if category is None:
            options = {"1": "商品质量", "2": "物流配送", "3": "服务态度", "4": "退款售后"}
            category = options.get(str(value).strip())
        return {"complaint_category": category or parsing.OTHER_CATEGORY}

    def validate_complaint_description(self, value, dispatcher, tracker, domain) -> Dict:
        if len(str(value or "").strip()) < 2:
            dispatcher.utter_message(text="请再多说几句具体情况，方便我们尽快处理。")
            return {"complaint_description": None}
        return {"complaint_description": str(value).strip()[:1000]}

    def validate_order_id(self, value, dispatcher, tracker, domain) -> Dict:
        order_id = valid_order_id(value)
        if order_id:
            return {"order_id": order_id}
        if any(word in str(value) for word in NO_ORDER):
            return {"order_id": "无"}
        dispatcher.utter_message(text="订单号格式不太对：应为12-20位数字，或DD开头加数字。没有订单号请回复“没有”。")
        return {"order_id": None}

    def validate_phone(self, value, dispatcher, tracker, domain) -> Dict:
        return validate_phone_value(value, dispatcher)


class ValidateRepairForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_repair_form"

    async def extract_fault_description(self, dispatcher, tracker: Tracker, domain) -> Dict:
        text = tracker.latest_message.get("text", "")
        product = tracker.get_slot("product") or ""
        if _is_form_start(tracker) and len(_substance(text).replace(product, "")) >= 3:
            return {"fault_description": text}
        return {}

    def validate_product(self, value, dispatcher, tracker, domain) -> Dict:
        text = str(value or "").strip()
        if not 1 <= len(text) <= 30:
            dispatcher.utter_message(text="请告诉我是哪件商品，比如“冰箱”“空调”“沙发”。")
            return {"product": None}
        return {"product": text}

    def validate_fault_description(self, value, dispatcher, tracker, domain) -> Dict:
        text = str(value or "").strip()
        if len(text) < 2:
            dispatcher.utter_message(text="请简单描述一下故障现象，比如“不制冷”“漏水”“开不了机”。")
            return {"fault_description": None}
        urgent = any(str(word) in text for word in profile.load_profile()["urgent_repair_keywords"])
        return {"fault_description": text[:1000], "urgency": "urgent" if urgent else "normal"}

    def validate_address(self, value, dispatcher, tracker, domain) -> Dict:
        text = str(value or "").strip()
        if len(text) < 6 or not ADDRESS_CUES.search(text):
            dispatcher.utter_message(text="地址好像不完整，请写到街道门牌，例如“上海市浦东新区世纪大道100号3栋502”。")
            return {"address": None}
        return {"address": text[:200]}

    def validate_phone(self, value, dispatcher, tracker, domain) -> Dict:
        return validate_phone_value(value, dispatcher)


class ValidateReturnForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_return_form"

    async def extract_return_type(self, dispatcher, tracker: Tracker, domain) -> Dict:
        if _is_form_start(tracker) and not tracker.get_slot("return_type"):
            kind = parsing.return_type(tracker.latest_message.get("text", ""))
            if kind:
                return {"return_type": kind}
        return {}

    def validate_order_id(self, value, dispatcher, tracker, domain) -> Dict:
        order_id = valid_order_id(value)
        if order_id:
            return {"order_id": order_id}
        dispatcher.utter_message(text="退换货需要订单号：12-20位数字，或DD开头加数字，可在“我的订单”里找到。")
        return {"order_id": None}

    def validate_return_type(self, value, dispatcher, tracker, domain) -> Dict:
        kind = value if value in ("return", "exchange") else parsing.return_type(str(value))
        if kind is None:
            dispatcher.utter_message(text="请回复“退货”或“换货”。")
        return {"return_type": kind}

    def validate_return_reason(self, value, dispatcher, tracker, domain) -> Dict:
        text = str(value or "").strip()
        if len(text) < 2:
            dispatcher.utter_message(text="请简单说一下原因，例如“质量问题”或“尺寸不合适”。")
            return {"return_reason": None}
        return {"return_reason": text[:500]}

    def validate_days_since_receipt(self, value, dispatcher, tracker, domain) -> Dict:
        if isinstance(value, (int, float)):
            return {"days_since_receipt": float(value)}
        today = profile.now().astimezone(profile.shop_tz()).date()
        days = parsing.days_since(str(value), today)
        if days is None:
            dispatcher.utter_message(text="没看懂收货时间，可以回复“3天前”“昨天”或“11月20日”。")
            return {"days_since_receipt": None}
        return {"days_since_receipt": float(days)}
