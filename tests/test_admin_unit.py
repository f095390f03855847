"""The admin loop's pieces without a running stack: inbox join, masking, clean annotation
YAML, new FAQ topics, the activation rule and model pruning (issue 6)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bot.profile.privacy import mask_customer_text
from bot.training import activation, annotations, cli, inbox
from bot.training import trainer as training
from bot.training.project import AdminError, results_dir


def _line(store, conversation, text):
    from bot.store.transcripts import TranscriptStore
    return TranscriptStore().append(conversation, "web", "customer", text, state="done")


def _user(text, intent, confidence, ts, faq=None):
    parse = {"intent": {"name": intent, "confidence": confidence}}
    if faq:
        parse["response_selector"] = {"faq": {"response": {"intent_response_key": faq}}}
    return {"event": "user", "text": text, "timestamp": ts, "parse_data": parse}


def test_masking_phones_orders_addresses():
    text = "我的手机13812345678，订单DD202611250001，地址北京市朝阳区建国路88号3单元"
    masked = mask_customer_text(text)
    assert "13812345678" not in masked and "138****5678" in masked
    assert "DD202611250001" not in masked and "DD20****01" in masked
    assert "建国路88号" not in masked
    assert mask_customer_text("订单 123456789012345 到哪了").count("****") == 1


def test_inbox_joins_transcripts_with_tracker_turns(project):
    a = _line(None, "web:a", "快递员态度太差")
    b = _line(None, "web:a", "快递员态度很差，我要投诉")
    c = _line(None, "web:b", "转人工 我电话13812345678")
    events = {
        "web:a": [_user("快递员态度太差", "nlu_fallback", 0.45, 100.0),
                  {"event": "action", "name": "action_handle_fallback"},
                  {"event": "bot", "text": "抱歉，我没太明白"},
                  _user("快递员态度很差，我要投诉", "complain", 0.97, 130.0),
                  {"event": "action", "name": "complaint_form"}],
        "web:b": [_user("转人工 我电话13812345678", "request_human", 0.99, 50.0),
                  {"event": "action", "name": "action_request_human"}],
    }
    lines = inbox.customer_lines(10)
    items = {i["id"]: i for i in inbox.build_inbox(lines, events, set())}
    assert items[a]["fallback"] and items[a]["rephrased"] and items[a]["low_confidence"]
    assert items[a]["next"] == ["抱歉，我没太明白"]
    assert not items[b]["fallback"] and items[b]["intent"] == "complain"
    assert items[c]["handoff"] and "13812345678" not in items[c]["text"]
    only = inbox.build_inbox(lines, events, set(), "handoff")
    assert [i["id"] for i in only] == [c]
    assert a not in [i["id"] for i in inbox.build_inbox(lines, events, {a})]


def test_annotations_are_clean_sorted_deduplicated_yaml(project):
    first = _line(None, "web:c", "快递员态度太差")
    second = _line(None, "web:c", "地址填错了 13812345678")
    third = _line(None, "web:d", "快递员态度太差")
    annotations.annotate(first, "complain", actor="root")
    annotations.annotate(second, "faq/order_change", actor="root")
    annotations.annotate(third, "complain", actor="root")           # the same text again: no duplicate
    text = (project / annotations.ANNOTATED).read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    assert [b["intent"] for b in doc["nlu"]] == ["complain", "faq/order_change"]
    assert text.count("快递员态度太差") == 1
    assert "13812345678" not in text and "138****5678" in text
    before = text
    annotations.annotate(first, "complain", actor="root")           # idempotent: byte-identical file
    assert (project / annotations.ANNOTATED).read_text(encoding="utf-8") == before
    # one text, one intent: re-annotating moves it
    annotations.annotate(first, "inform", actor="root")
    doc = yaml.safe_load((project / annotations.ANNOTATED).read_text(encoding="utf-8"))
    assert {b["intent"] for b in doc["nlu"]} == {"inform", "faq/order_change"}
    # annotated messages leave the inbox
    assert {first, second, third} <= inbox.annotated_ids()


def test_annotation_with_entity_and_refusals(project):
    line = _line(None, "web:e", "冰箱门关不上了")
    result = annotations.annotate(line, "request_repair", actor="root",
                            entities=[{"value": "冰箱", "entity": "product"}])
    assert result["example"] == "[冰箱](product)门关不上了"
    with pytest.raises(AdminError):
        annotations.annotate(line, "no_such_intent", actor="root")
    with pytest.raises(AdminError):
        annotations.annotate(line, "request_repair", actor="root", entities=[{"value": "洗衣机", "entity": "product"}])
    existing = _line(None, "web:e", "你好")          # a training example of greet already
    with pytest.raises(AdminError, match="already"):
        annotations.annotate(existing, "goodbye", actor="root")


def test_new_faq_topic_writes_answer_and_renders_response(project):
    line = _line(None, "web:f", "可以帮忙礼品包装吗")
    annotations.annotate(line, "faq/gift_wrap", actor="root", answer="可以的，下单时备注「礼品包装」即可，免费。")
    answers = yaml.safe_load((project / "businesses" / "shop" / "faq_answers.yml").read_text(encoding="utf-8"))
    assert answers["gift_wrap"].startswith("可以的")
    rendered = yaml.safe_load((project / "data" / "responses" / "rendered.yml").read_text(encoding="utf-8"))
    assert "utter_faq/gift_wrap" in rendered["responses"]
    assert "faq/gift_wrap" in annotations.known_intents(project)
    with pytest.raises(AdminError, match="exists"):
        annotations.add_faq_topic("gift_wrap", "again", project)


def test_activation_refused_when_worse_unless_reason(project):
    model = project / "models" / "kefu-candidate.tar.gz"
    model.write_bytes(b"x")
    live = project / "models" / "kefu-live.tar.gz"
    live.write_bytes(b"y")
    with pytest.raises(AdminError, match="compare"):
        activation.check_activation(str(model), str(live), None)
    work = results_dir() / "compare-kefu-candidate"
    work.mkdir(parents=True)
    scores = {"candidate": {"intent_accuracy": 0.8}, "live": {"intent_accuracy": 0.9}}
    (work / "comparison.json").write_text(json.dumps({"worse": ["intent_accuracy"], "scores": scores}))
    with pytest.raises(AdminError, match="worse"):
        activation.check_activation(str(model), str(live), "  ")
    ok = activation.check_activation(str(model), str(live), "the test split is outdated")
    assert ok["reason"] == "the test split is outdated"
    row = activation.record_activation(str(model), str(live), "root", "activate", ok["scores"], ok["reason"])
    assert row["override_reason"] == "the test split is outdated" and row["actor"] == "root"
    assert activation.rollback_target(str(model)) == str(live)


def test_prune_keeps_the_configured_number(project, monkeypatch):
    from bot.store.engine import get_engine, retrying
    from bot.store.schema import TrainingRun

    monkeypatch.setenv("KEFU_KEEP_MODELS", "2")
    paths = []
    for n in range(4):
        path = project / "models" / f"kefu-{n}.tar.gz"
        path.write_bytes(b"m")
        paths.append(str(path))
        retrying(lambda s, p=str(path): s.add(TrainingRun(status="succeeded", mode="full",
                                                          requested_by="t", model=p)),
                 engine=get_engine())
    previous = None
    for path in paths:
        activation.record_activation(path, previous, "root", "activate", None, None)
        previous = path
    assert [Path(p).exists() for p in paths] == [False, False, True, True]


def test_one_training_at_a_time_second_request_is_told_it_is_queued(project, monkeypatch):
    import threading

    release, started = threading.Event(), []

    def fake_training(run_id, progress=None):
        started.append(run_id)
        release.wait(30)
        training.update_run(run_id, status="succeeded", seconds=1.0)
    monkeypatch.setattr(training, "run_training", fake_training)
    trainer = training.Trainer()
    first = trainer.request("root")
    assert first["queued_behind"] == 0
    for _ in range(100):
        if started:
            break
        threading.Event().wait(0.05)
    second = trainer.request("root")
    assert second["queued_behind"] == 1 and "排队" in second["message"]
    runs = {r["id"]: r for r in trainer.status()["runs"]}
    assert runs[second["run"]]["status"] == "queued" and runs[second["run"]]["position"] == 1
    release.set()
    for _ in range(200):
        if len(started) == 2:
            break
        threading.Event().wait(0.05)
    assert started == [first["run"], second["run"]]


def test_cli_inbox_reads_rasa_sql_tracker_store_and_annotates(project, tmp_path, capsys):
    import sqlite3

    line = _line(None, "web:cli", "快递员态度太差 13812345678")
    db = tmp_path / "trackers.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, type_name TEXT,"
                     " timestamp REAL, intent_name TEXT, action_name TEXT, data TEXT)")
        for event in (_user("快递员态度太差 13812345678", "nlu_fallback", 0.45, 10.0),
                      {"event": "action", "name": "action_handle_fallback"}):
            conn.execute("INSERT INTO events (sender_id, type_name, data) VALUES (?, ?, ?)",
                         ("web:cli", event["event"], json.dumps(event)))
    assert cli.main(["--trackers", str(db), "inbox", "--filter", "fallback"]) == 0
    out = capsys.readouterr().out
    assert f"{line}\tnlu_fallback\t0.45" in out and "138****5678" in out and "13812345678" not in out
    assert cli.main(["--actor", "ops", "annotate", str(line), "complain", "--text", "快递员态度太差"]) == 0
    assert "快递员态度太差" in (project / annotations.ANNOTATED).read_text(encoding="utf-8")
    capsys.readouterr()
    assert cli.main(["--trackers", str(db), "inbox"]) == 0
    assert capsys.readouterr().out == ""
    assert cli.main(["annotate", str(line), "no_such_intent"]) == 2


def test_a_run_left_running_by_a_dead_process_is_marked_failed(project, tmp_path, monkeypatch):
    from bot.store.engine import get_engine, retrying
    from bot.store.schema import TrainingRun

    run_id = retrying(lambda s: (s.add(r := TrainingRun(status="running", mode="full",
                                                         requested_by="t")), s.flush(), r.id)[2],
                      engine=get_engine())
    monkeypatch.setattr(training, "TRAIN_LOCK", tmp_path / "train.lock")
    assert training.mark_interrupted() == 1
    assert training.get_run(run_id)["status"] == "failed"


@pytest.fixture
def fake_rasa():
    """A local stand-in for Rasa's HTTP API (``GET /status``, ``PUT /model``, token in the query)."""
    from aiohttp import web

    from bot.gateway.ports import free_port
    from tests.fakes import ThreadedServer

    state = {"model_file": None, "puts": [], "put_status": 204}

    async def status(request):
        if request.query.get("token") != "s3cret":
            return web.json_response({"message": "no token"}, status=401)
        return web.json_response({"model_file": state["model_file"], "model_id": "x"})

    async def put_model(request):
        if request.query.get("token") != "s3cret":
            return web.json_response({"message": "no token"}, status=401)
        body = await request.json()
        state["puts"].append(body["model_file"])
        if state["put_status"] != 204:
            return web.json_response({"message": "cannot load"}, status=state["put_status"])
        state["model_file"] = Path(body["model_file"]).name     # Rasa reports the bare file name
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/status", status)
    app.router.add_put("/model", put_model)
    server = ThreadedServer(app, free_port()).start()
    state["url"] = server.url
    yield state
    server.stop()


def test_cli_activates_and_rolls_back_through_rasa_http_api(project, fake_rasa, monkeypatch, capsys):
    monkeypatch.setenv("KEFU_RASA_TOKEN", "s3cret")
    live = project / "models" / "kefu-live.tar.gz"
    live.write_bytes(b"y")
    candidate = project / "models" / "kefu-candidate.tar.gz"
    candidate.write_bytes(b"x")
    fake_rasa["model_file"] = live.name
    url = ["--rasa-url", fake_rasa["url"], "--actor", "ops"]
    # never compared: refused before Rasa is asked to load anything
    assert cli.main(url + ["activate", str(candidate)]) == 2
    assert fake_rasa["puts"] == []
    assert cli.main(url + ["activate", str(candidate), "--reason", "hotfix"]) == 0
    assert fake_rasa["puts"] == [str(candidate.resolve())]
    row = activation.activations(1)[0]
    assert (row["kind"], row["actor"], row["model"], row["previous_model"], row["override_reason"]) == \
        ("activate", "ops", str(candidate.resolve()), str(live), "hotfix")
    assert cli.main(url + ["rollback"]) == 0
    assert fake_rasa["puts"][-1] == str(live) and fake_rasa["model_file"] == live.name
    assert activation.activations(1)[0]["kind"] == "rollback"
    # Rasa refuses the load: an error, nothing recorded
    fake_rasa["put_status"] = 500
    count = len(activation.activations())
    capsys.readouterr()
    assert cli.main(url + ["activate", str(candidate), "--reason", "again"]) == 1
    assert "500" in capsys.readouterr().err and len(activation.activations()) == count
    # a wrong token: Rasa's 401 on /status is an error too
    monkeypatch.setenv("KEFU_RASA_TOKEN", "wrong")
    assert cli.main(url + ["rollback"]) == 1
