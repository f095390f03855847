"""The web chat endpoint refuses malformed input clearly and keeps what it accepts."""
import json
import urllib.error
import urllib.request

import pytest

from bot.store.transcripts import TranscriptStore

pytestmark = pytest.mark.e2e


def post(url, body: bytes):
    request = urllib.request.Request(url + "/api/chat", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"sender": "a b", "message": "hi"}',
                                  b'{"sender": "ok", "message": 5}'])
def test_bad_requests_get_400(assistant, body):
    status, payload = post(assistant.url, body)
    assert status == 400 and payload["error"]


def test_oversized_body_gets_413(assistant):
    status, _ = post(assistant.url, json.dumps({"sender": "big", "message": "长" * 40000}).encode())
    assert status == 413


def test_empty_and_too_long_messages_get_a_polite_answer(assistant):
    status, payload = post(assistant.url, json.dumps({"sender": "empty1", "message": " \u0000 "}).encode())
    assert status == 200 and "空消息" in payload["messages"][0]["text"]
    status, payload = post(assistant.url, json.dumps({"sender": "long1", "message": "啊" * 1500}).encode())
    assert status == 200 and "最多" in payload["messages"][0]["text"]
    assert TranscriptStore().transcript("web:long1")[0]["text"] == "啊" * 1500   # kept


def test_transcript_records_both_sides(assistant):
    post(assistant.url, json.dumps({"sender": "tr1", "message": "你好"}).encode())
    lines = TranscriptStore().transcript("web:tr1")
    assert [l["author"] for l in lines[:2]] == ["customer", "bot"]
