"""Issue 6 end to end: an admin fixes what the bot misunderstood, retrains for real,
compares, activates, and the same message is understood; models swap under load with no
failed customer message; rollback; only admins get in.

The retraining runs in a temporary copy of the project's data (``KEFU_ADMIN_PROJECT``) so
the repository's data/nlu is never touched, and as a fine-tune of the live model
(``rasa train --finetune --epoch-fraction 0.2``, see README: 训练), the fastest real
retrain measured on these machines.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from bot.training.annotations import ANNOTATED
from bot.gateway.app import openapi_document
from bot.gateway.router import BUSY_TEXT, SLOW_TEXT
from tests.conftest import Customer
from tests.handoff_helpers import AgentClient, make_agent, wait_until

pytestmark = pytest.mark.e2e

# Lines the default assistant got wrong when this was written (fallback / another intent);
# the test uses those the live model really misunderstands (at least one).
CANDIDATES = {"快递员态度太差": "complain", "地址填错了": "faq/order_change",
              "东西坏了谁负责": "complain", "我不想要了": "request_return"}


@pytest.fixture(scope="module")
def boss(admin_stack):
    name, password = make_agent("boss", role="admin")
    return AgentClient(admin_stack.url).login(name, password)


def _inbox_item(boss, text, *, after=0):
    status, body = boss.call("GET", "/api/admin/inbox")
    assert status == 200, body
    return next((i for i in body["items"] if i["text"] == text and i["id"] > after), None)


def _wait_training(boss, run_id):
    seen_progress = []

    def done():
        _, body = boss.call("GET", "/api/admin/train")
        run = next(r for r in body["runs"] if r["id"] == run_id)
        if run["status"] == "running" and "expected_seconds" in run:
            seen_progress.append(run)
        return run if run["status"] in ("succeeded", "failed") else None
    run = wait_until(done, 900, "training")
    return run, seen_progress


def _compare(boss, candidate):
    status, body = boss.call("POST", "/api/admin/compare", {"candidate": candidate})
    assert status == 202, body

    def done():
        _, body = boss.call("GET", "/api/admin/compare")
        return body if not body.get("running") and (body.get("result") or body.get("error")) else None
    body = wait_until(done, 900, "comparison")
    assert not body.get("error"), body["error"]
    return body["result"]


STATE = {}


def _swap_call(boss, path, body):
    """Activation and rollback wait for Rasa to load the model (tens of seconds here)."""
    request = urllib.request.Request(boss.base_url + path, data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    try:
        with boss.opener.open(request, timeout=600) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_annotate_retrain_compare_activate_and_the_message_is_understood(admin_stack, boss):
    customer = Customer(admin_stack.url, "admin-e2e-1")
    for text in CANDIDATES:
        customer.say(text)
    items = wait_until(lambda: all(_inbox_item(boss, t) for t in CANDIDATES) and
                       {t: _inbox_item(boss, t) for t in CANDIDATES}, 30, "the inbox items")
    wrong = [t for t, item in items.items() if item["intent"] != CANDIDATES[t]]
    assert wrong, "the live model understands every candidate line already"
    target = wrong[0]
    STATE["target"] = target
    flagged = boss.call("GET", "/api/admin/inbox?filter=low")[1]["items"] + \
        boss.call("GET", "/api/admin/inbox?filter=fallback")[1]["items"]
    assert any(i["text"] in wrong for i in flagged)
    for text in wrong:
        status, body = boss.call("POST", "/api/admin/annotate",
                                 {"message_id": items[text]["id"], "intent": CANDIDATES[text]})
        assert status == 200, body
        assert _inbox_item(boss, text) is None                  # it left the inbox
    annotated = (admin_stack.project / ANNOTATED).read_text(encoding="utf-8")
    assert f"- intent: {CANDIDATES[target]}\n  examples: |\n" in annotated and f"    - {target}\n" in annotated

    live_before = boss.call("GET", "/api/admin/models")[1]["live"]
    status, body = boss.call("POST", "/api/admin/train", {"mode": "finetune"})
    assert status == 202, body
    run, progress = _wait_training(boss, body["run"])
    assert run["status"] == "succeeded", run["error"]
    print(f"\nfine-tune retrain took {run['seconds']} s")
    assert progress, "the running training showed its elapsed/expected time"
    # the live model is untouched by training
    assert boss.call("GET", "/api/admin/models")[1]["live"] == live_before

    result = _compare(boss, run["model"])
    print("comparison:", json.dumps(result["scores"]), "worse:", result["worse"])
    fixed = {f["text"]: f["set"] for f in result["newly_fixed"]}
    # the annotated lines are scored apart (the candidate trained on them) and never decide
    taught = result["by_set"]["annotated"]
    in_file = annotated.count("\n    - ")           # the lines taught (earlier ones included)
    assert 1 <= taught["candidate"]["examples"] <= max(in_file, len(wrong)), (taught, annotated)
    assert taught["candidate"]["intent_accuracy"] >= taught["live"]["intent_accuracy"], taught
    assert target not in {b["text"] for b in result["newly_broken"]}
    # offline the live model may already have had it right (the inbox saw it in a conversation)
    assert fixed.get(target) == "annotated" or taught["live"]["intent_accuracy"] == 1.0, result["newly_fixed"]
    assert set(result["verdict_sets"]) == {"own_split", "blind_report"}
    assert result["by_set"]["blind_report"]["candidate"]["examples"] > 500
    assert result["examples"] > 200 and "per_intent" in result
    status, png = 0, b""
    with urllib.request.urlopen(urllib.request.Request(
            admin_stack.url + "/api/admin/compare/confusion.png",
            headers={"Cookie": "; ".join(f"{c.name}={c.value}" for c in boss.jar)})) as resp:
        status, png = resp.status, resp.read()
    assert status == 200 and png.startswith(b"\x89PNG")

    body = {"model": run["model"]}
    if result["worse"]:
        status, refused = boss.call("POST", "/api/admin/activate", body)
        assert status == 409 and "worse" in refused["error"]
        body["reason"] = "e2e: fine-tune of a few epochs, the annotated fixes matter more"
    status, activated = _swap_call(boss, "/api/admin/activate", body)
    assert status == 200, activated
    assert activated["activation"]["model"] == run["model"]
    assert activated["activation"]["actor"] == boss.me["name"]
    assert boss.call("GET", "/api/admin/models")[1]["live"] == run["model"]

    last = max(i["id"] for i in boss.call("GET", "/api/admin/inbox")[1]["items"] or [{"id": 0}])
    again = Customer(admin_stack.url, "admin-e2e-2")
    again.say(target)
    item = wait_until(lambda: _inbox_item(boss, target, after=last), 30, "the new inbox item")
    assert item["intent"] == CANDIDATES[target] and not item["fallback"]
    STATE.update(candidate=run["model"], original=live_before)
    print(f"misunderstood, annotated and now understood: {target} → {CANDIDATES[target]}")


def test_models_swap_under_load_without_a_failed_message(admin_stack, boss):
    assert STATE, "needs the retrained candidate"
    stop, results, errors = threading.Event(), [], []

    def customer_loop(n):
        c = Customer(admin_stack.url, f"load-{n}")
        phrases = ["你好", "运费怎么算", "保修几年", "谢谢"]
        i = 0
        while not stop.is_set():
            try:
                reply = c.say(phrases[i % len(phrases)])
                results.append(reply)
            except Exception as exc:          # an HTTP error or a dropped connection
                errors.append(repr(exc))
            i += 1
            time.sleep(1.0)                      # under the per-conversation rate limit

    threads = [threading.Thread(target=customer_loop, args=(n,), daemon=True) for n in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: len(results) >= 8, 120, "load before the swap")
    status, body = _swap_call(boss, "/api/admin/rollback", {"reason": "swap under load (test)"})
    assert status == 200, body
    count = len(results)
    wait_until(lambda: len(results) >= count + 8, 120, "load between the swaps")
    status, body = _swap_call(boss, "/api/admin/activate",
                              {"model": STATE["candidate"], "reason": "swap under load (test)"})
    assert status == 200, body
    count = len(results)
    wait_until(lambda: len(results) >= count + 8, 120, "load after the swaps")
    stop.set()
    for t in threads:
        t.join(timeout=90)
    failed = [r for r in results if BUSY_TEXT in r or not r.strip()]
    slow = [r for r in results if SLOW_TEXT in r]
    print(f"\nswap under load: {len(results)} answered, {len(errors)} errors, {len(failed)} busy/empty, "
          f"{len(slow)} answered late (held during the swap)")
    assert errors == [] and failed == []


def test_rollback_restores_the_previous_model_and_is_audited(admin_stack, boss):
    assert STATE, "needs the retrained candidate"
    assert boss.call("GET", "/api/admin/models")[1]["live"] == STATE["candidate"]
    status, body = _swap_call(boss, "/api/admin/rollback", {})
    assert status == 200, body
    models = boss.call("GET", "/api/admin/models")[1]
    assert models["live"] == STATE["original"]
    log = models["activations"]
    assert log[0]["kind"] == "rollback" and log[0]["model"] == STATE["original"]
    assert all(a["actor"] == boss.me["name"] for a in log[:4])
    last = max(i["id"] for i in boss.call("GET", "/api/admin/inbox")[1]["items"] or [{"id": 0}])
    Customer(admin_stack.url, "admin-e2e-3").say(STATE["target"])
    item = wait_until(lambda: _inbox_item(boss, STATE["target"], after=last), 30, "the new inbox item")
    assert item["intent"] != CANDIDATES[STATE["target"]]     # the old model's misunderstanding is back


ADMIN_OPS = [(p, m) for p, item in openapi_document()["paths"].items() if p.startswith("/api/admin")
             for m in item if m in ("get", "post")]


def test_agents_and_anonymous_requests_are_refused_on_every_admin_endpoint(assistant):
    from tests.test_api_contract import request as raw_request

    name, password = make_agent("plain")
    agent = AgentClient(assistant.url).login(name, password)
    assert len(ADMIN_OPS) == 11
    for path, method in ADMIN_OPS:
        body = {"message_id": 1, "intent": "greet", "model": "x", "mode": "full"} if method == "post" else None
        status, _ = raw_request(assistant.url + path, method, body)
        assert status == 401, f"anonymous {method.upper()} {path} → {status}"
        status, _ = agent.call(method.upper(), path, body)
        assert status == 403, f"agent {method.upper()} {path} → {status}"
