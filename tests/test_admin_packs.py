"""The admins' retraining loop serves the business it runs for (KEFU_BUSINESS), and its
comparison is honest (issues 13 and 16): candidate and live are scored on the held-out split and
the frozen blind report set, with the annotated items (which the candidate trained on) apart,
and only the first two decide "worse". No Rasa here: rasa's outputs are written by hand."""
from __future__ import annotations

import json
from pathlib import Path


from bot.training import annotations, compare, trainer


def test_a_copy_holds_every_packs_held_out_and_blind_report_sets(project):
    for folder in ("tests/nlu", "tests/nlu_blind/report", "tests/nlu_property",
                   "tests/nlu_blind_property/report"):
        assert any((project / folder).glob("*.yml")), folder


def test_the_property_office_annotates_into_its_own_training_data(project, monkeypatch):
    assert annotations.annotated_path(project) == Path("data/nlu/annotated.yml")
    monkeypatch.setenv("KEFU_BUSINESS", "property")
    assert annotations.annotated_path(project) == Path("businesses/property/data/nlu/annotated.yml")
    known = annotations.known_intents(project)
    assert "request_repair" in known and any(i.startswith("faq/") for i in known)
    sets = compare.test_sets(project)
    assert sets["own_split"] == project / "tests/nlu_property"
    assert sets["blind_report"] == project / "tests/nlu_blind_property/report"


def test_retraining_trains_the_packs_assembled_domain_data_and_pipeline(project, monkeypatch):
    monkeypatch.setenv("KEFU_BUSINESS", "property")
    commands = []

    def fake_stream(cmd, cwd, progress, log):
        commands.append(cmd)
        if "train" in cmd:
            out = Path(cmd[cmd.index("--out") + 1])
            (out / (cmd[cmd.index("--fixed-model-name") + 1] + ".tar.gz")).write_bytes(b"model")
        return 0, ""
    monkeypatch.setattr(trainer, "_stream", fake_stream)
    run = trainer.run_training(trainer.create_run("root", "full"))
    assert run["status"] == "succeeded", run
    assert Path(run["model"]).name.startswith("property-")
    validate, train = commands
    for cmd in (validate, train):
        assert cmd[cmd.index("--data") + 1] == "businesses/property/data"
        assert cmd[cmd.index("--domain") + 1] == "var/build/property/domain.yml"
        assert cmd[cmd.index("--config") + 1] == "var/build/property/config.yml"
    assembled = (project / "var/build/property/config.yml").read_text(encoding="utf-8")
    assert "LocationExtractor" in assembled             # the pack's own component is trained


def _summary(predictions, faq=None):
    return {"predictions": {t: {"expected": e, "predicted": p} for t, (e, p) in predictions.items()},
            "faq_predictions": faq or {}, "per_intent": {}}


def test_set_scores_by_hand():
    summary = _summary({"a": ("greet", "greet"), "b": ("greet", "stop"), "c": ("stop", "stop"),
                        "d": ("faq", "faq"), "elsewhere": ("stop", "greet")},
                       faq={"d": ("faq/shipping", "faq/returns")})
    scores = compare.set_scores(summary, {"a", "b", "c", "d"})
    assert scores["examples"] == 4 and scores["intent_accuracy"] == 0.75
    # greet: tp 1, fn 1 → 2/3; stop: tp 1, fp 1 → 2/3; faq: 1
    assert scores["intent_macro_f1"] == round((2 / 3 + 2 / 3 + 1) / 3, 4)
    assert scores["faq_response_accuracy"] == 0.0


def test_the_annotated_items_never_decide_the_verdict_and_the_blind_set_does(project, monkeypatch):
    taught = ["管道工说明天来", "还要等多久啊师傅"]
    (project / annotations.ANNOTATED).write_text(
        'version: "3.1"\nnlu:\n- intent: inform\n  examples: |\n' + "".join(f"    - {t}\n" for t in taught),
        encoding="utf-8")
    sets = compare.test_sets(project)
    assert set(sets) == {"own_split", "blind_report", "annotated"}
    own = sorted(compare.texts_of(sets["own_split"]))[:20]
    blind = sorted(compare.texts_of(sets["blind_report"]) - set(own))[:20]
    members = {"own_split": set(own), "blind_report": set(blind), "annotated": set(taught)}
    monkeypatch.setattr(compare, "texts_of", lambda path: members[next(
        name for name, p in sets.items() if p == path)])
    monkeypatch.setattr(compare, "confusion_png", lambda predictions, path: None)

    def run(blind_candidate_right: int):
        def fake(data, model, out):
            live = "live" in Path(model).name
            rows = {t: ("inform", "inform") for t in own}
            rows.update({t: ("inform", "inform" if live or i < blind_candidate_right else "stop")
                         for i, t in enumerate(blind)})
            rows.update({t: ("inform", "stop" if live else "inform") for t in taught})
            return _summary(rows)
        monkeypatch.setattr(compare, "evaluate_model", fake)
        return compare.compare(project / "models/shop-candidate.tar.gz", project / "models/shop-live.tar.gz")

    annotations_only = run(20)        # level on both sets, better on what it was taught
    assert annotations_only["verdict"] == "not_worse"
    assert {r["set"] for r in annotations_only["newly_fixed"]} == {"annotated"}
    assert annotations_only["by_set"]["annotated"]["candidate"]["intent_accuracy"] == 1.0
    worse = run(14)                   # 6 of 20 blind lines broken: worse, though "fixed" grew
    assert worse["verdict"] == "worse" and worse["worse_on"] == ["blind_report"]
    assert worse["by_set"]["blind_report"]["candidate"]["intent_accuracy"] == 0.7
    assert {r["set"] for r in worse["newly_broken"]} == {"blind_report"}
    saved = json.loads((Path(worse["confusion_png"]).parent / "comparison.json").read_text())
    assert saved["worse"] == worse["worse"]
