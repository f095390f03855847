"""Intents and FAQ topics from weighted n-gram features, as one Rasa 3 graph component.

Why not Rasa's own LogisticRegressionClassifier + ResponseSelector: measured on the
project's split and by cross-validation (README, "Understanding Chinese"), three changes
each helped and together they beat both baselines while using no TensorFlow at all:

* **TF-IDF weighting of the featurizers' counts.** CountVectorsFeaturizer hands over raw
  counts; a long message then outweighs a short one and 的/了/吗 outweigh 保修. The counts
  of every upstream featurizer (jieba words, character n-grams, regex hits) are re-weighted
  with sublinear TF, IDF and L2 length normalisation before the linear model sees them.
* **FAQ topics as their own labels while learning intents.** ``faq`` covers 16 topics that
  share little vocabulary; one ``faq`` class has to be a union of them, and an intent such
  as ``inform`` ("换个颜色") steals from it. Each topic is a class during training and the
  best topic's probability stands for ``faq`` when predicting.
* **A topic chooser per retrieval intent, trained on that intent's examples only** (what
  ResponseSelector does, with the same weighted features and a linear model instead of a
  DIET network): as accurate as ResponseSelector here, trains in a second, and keeps
  TensorFlow graphs out of the running Rasa's memory.

* **A dense sentence vector beside the n-grams** (issue 13, 3 Dec), when the pipeline has a
  dense featurizer (``sentence_encoder.SentenceEncoderFeaturizer``, USE-multilingual): a
  second logistic regression on the vector alone, with the same labels, and the two models'
  scores averaged before the softmax (weight ``dense_weight`` for the vector's; a linear
  model on both feature sets, fitted block by block; a weighted geometric mean of the two
  models' probabilities). A joint fit on the concatenation scored lower and took 35 s instead
  of ~7 (README, "Understanding customers").

Saved as plain arrays (IDF, coefficients, intercepts, class names: ``numpy.savez``, read
without pickle) and predicted with two sparse products; fitted with scikit-learn's ``sag``
solver (the same optimum as ``lbfgs`` on these features, in a third of the time). A full
training's classifier step went from ~35 s to ~5 s of CPU (README, issue 13).

Output is exactly what Rasa's LogisticRegressionClassifier and ResponseSelector write
(``intent``, ``intent_ranking``, ``response_selector``), so FallbackClassifier, the
RulePolicy and ``utter_faq/…`` retrieval actions work unchanged.
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Tuple, Type

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier as RasaIntentClassifier
from rasa.nlu.featurizers.featurizer import Featurizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, INTENT, INTENT_RESPONSE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

INTENT_FILE = "intents.npz"
# The training lines themselves, by their normalised text: a message written exactly as a
# training example is given that example's label (an admin's correction of a misunderstood
# line is then understood as taught, whatever the averaged models make of one example in
# thousands). JSON, no pickle.
TAUGHT_FILE = "taught.json"
TAUGHT_SHARE = 0.9
RANKING_LENGTH = 10
# Models trained before the .npz files were skops files: still readable (activation and
# rollback may load an older model). TfidfTransformer keeps its IDF as a sparse diagonal
# matrix, a type skops does not trust by default; nothing else outside skops' defaults.
SKOPS_INTENT_FILE = "intents.skops"
TRUSTED_TYPES = {"scipy.sparse._csr.csr_matrix"}


def weighted_linear_model(c: float, class_weight: Optional[str], solver: str = "sag",
                          tol: float = 1e-4) -> Pipeline:
    """Counts → sublinear TF-IDF (L2-normalised) → multinomial logistic regression."""
    return Pipeline([
        ("tfidf", TfidfTransformer(sublinear_tf=True)),
        ("lr", LogisticRegression(C=c, class_weight=class_weight, solver=solver, tol=tol,
                                  max_iter=3000, random_state=42)),
    ])


@dataclass
class LinearModel:
    """A fitted :func:`weighted_linear_model` as plain arrays: what prediction needs.

    Saved with ``numpy.savez`` and read with ``allow_pickle=False`` (numbers and strings,
    no code), and it predicts with two sparse products instead of scikit-learn's checks
    (the same probabilities as the pipeline's ``predict_proba``)."""
    idf: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    classes_: np.ndarray
    # the dense sentence vector's own linear model (same classes), its scores averaged with the
    # n-grams' (weight dense_weight) before the softmax; None: n-grams only
    dense_coef: Optional[np.ndarray] = None
    dense_intercept: Optional[np.ndarray] = None
    dense_weight: float = 1.0
    _coef_t: Optional[np.ndarray] = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, pipeline: Pipeline, dense: Optional[LogisticRegression] = None,
           dense_weight: float = 1.0) -> "LinearModel":
        lr = pipeline.named_steps["lr"]
        model = cls(pipeline.named_steps["tfidf"].idf_.astype(np.float64), lr.coef_, lr.intercept_,
                    np.asarray(lr.classes_, dtype=str))
        if dense is not None:
            if list(np.asarray(dense.classes_, dtype=str)) != list(model.classes_):
                raise ValueError("the dense model's classes differ from the n-gram model's")
            model.dense_coef, model.dense_intercept = dense.coef_, dense.intercept_
            model.dense_weight = float(dense_weight)
        return model

    def weighted(self, counts: csr_matrix) -> csr_matrix:
        """Sublinear TF × IDF, rows L2-normalised (TfidfTransformer's arithmetic)."""
        x = csr_matrix(counts, dtype=np.float64, copy=True)
        x.eliminate_zeros()
        np.log(x.data, out=x.data)
        x.data += 1.0                                   # sublinear tf: 1 + log(count)
        x.data *= self.idf[x.indices]
        rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
        norms = np.sqrt(np.bincount(rows, weights=x.data * x.data, minlength=x.shape[0]))
        x.data /= norms[rows]
        return x

    def predict_proba(self, counts: csr_matrix, dense: Optional["DenseRows"] = None) -> np.ndarray:
        if self._coef_t is None:
            # sparse × dense needs the classes in the columns of a C-ordered array: with
            # coef.T (a view) scipy copies all of coef on every call (1.4 ms of a 7 ms parse)
            self._coef_t = np.ascontiguousarray(self.coef.T)
        scores = np.asarray(self.weighted(counts) @ self._coef_t) + self.intercept
        if self.dense_coef is not None and dense is not None and dense.present.any():
            if dense.vectors.shape[1] != self.dense_coef.shape[1]:
                raise ValueError(f"dense features of width {dense.vectors.shape[1]}, the model "
                                 f"was trained on {self.dense_coef.shape[1]}")
            # a weighted geometric mean of the two models' probabilities (renormalised):
            # argmax as with the plain sum, but confidences on one model's scale, the scale
            # the fallback threshold and the dialogue's cut-offs were set on (the plain sum
            # made the model sure of nearly everything: README, issue 13, 3 Dec)
            rows = dense.present               # a message without the vector: n-grams only
            scores[rows] += self.dense_weight * (dense.vectors[rows] @ self.dense_coef.T
                                                 + self.dense_intercept)
            scores[rows] /= 1.0 + self.dense_weight
        if self.coef.shape[0] == 1:                     # two classes: one logistic
            p = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.stack([1.0 - p, p], axis=1)
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        return scores / scores.sum(axis=1, keepdims=True)

    def save(self, path: Path) -> None:
        arrays = {"idf": self.idf, "coef": self.coef, "intercept": self.intercept,
                  "classes": self.classes_}
        if self.dense_coef is not None:
            arrays.update(dense_coef=self.dense_coef, dense_intercept=self.dense_intercept,
                          dense_weight=np.asarray(self.dense_weight))
        with path.open("wb") as file:
            np.savez(file, **arrays)

    @classmethod
    def read(cls, path: Path) -> "LinearModel":
        with np.load(path, allow_pickle=False) as saved:
            model = cls(saved["idf"], saved["coef"], saved["intercept"], saved["classes"])
            if "dense_coef" in saved.files:          # models before 3 Dec 2026 have none
                model.dense_coef, model.dense_intercept = saved["dense_coef"], saved["dense_intercept"]
                model.dense_weight = float(saved["dense_weight"])
            return model


@dataclass
class DenseRows:
    """Each message's dense sentence features (all dense featurizers side by side), and
    which messages have them (a message without text gets none)."""
    vectors: np.ndarray
    present: np.ndarray

    def __getitem__(self, rows) -> "DenseRows":
        rows = np.atleast_1d(np.arange(len(self.present))[rows])
        return DenseRows(self.vectors[rows], self.present[rows])


def dense_sentence_features(messages: List[Message]) -> Optional[DenseRows]:
    """The dense sentence-level features of the messages (None: no message has any)."""
    found_per_message, widths, offsets, total = sentence_blocks(messages, sparse=False)
    if not widths:
        return None
    vectors = np.zeros((len(messages), total))
    present = np.zeros(len(messages), dtype=bool)
    for row, found in enumerate(found_per_message):
        for f in found:
            vectors[row, offsets[f.origin]:offsets[f.origin] + widths[f.origin]] = \
                np.asarray(f.features).ravel()
            present[row] = True
    return DenseRows(vectors, present)


def taught_key(text: Optional[str]) -> str:
    """A training line's text as the memory of taught lines keys it (case and spaces folded)."""
    return " ".join((text or "").lower().split())


def as_taught(probs: np.ndarray, classes: np.ndarray, label: Optional[str]) -> np.ndarray:
    """``probs`` with the taught label on top (``TAUGHT_SHARE`` of the mass added to it);
    unchanged when nothing was taught or the label is not one of ``classes``."""
    if label is None:
        return probs
    at = np.flatnonzero(np.asarray(classes) == label)
    if not at.size:
        return probs
    moved = probs * (1 - TAUGHT_SHARE)
    moved[at[0]] += TAUGHT_SHARE
    return moved


def dense_linear_model(c: float, class_weight: Optional[str]) -> LogisticRegression:
    """The dense vector's model: a multinomial logistic regression (lbfgs: 512 dense columns,
    a few seconds on ~7,500 messages; sag converges slowly on them)."""
    return LogisticRegression(C=c, class_weight=class_weight, solver="lbfgs", max_iter=3000)


def sentence_blocks(messages: List[Message], sparse: bool
                    ) -> Tuple[List[List[Any]], Dict[str, int], Dict[str, int], int]:
    """Each message's sentence-level TEXT features of one kind (sparse or dense), and where
    each featurizer's (origin's) block starts when they are laid side by side in pipeline
    order: (features per message, width by origin, offset by origin, total width)."""
    widths: Dict[str, int] = {}
    per_message: List[List[Any]] = []
    for message in messages:
        found = [f for f in message.features
                 if f.attribute == TEXT and f.type == FEATURE_TYPE_SENTENCE
                 and f.is_sparse() == sparse]
        for f in found:
            widths.setdefault(f.origin, f.features.shape[-1])
        per_message.append(found)
    offsets, total = {}, 0
    for origin, width in widths.items():
        offsets[origin] = total
        total += width
    return per_message, widths, offsets, total


def sentence_features(messages: List[Message]) -> csr_matrix:
    """Each message's sentence-level sparse features from all featurizers, side by side in
    pipeline order (as ``Message.get_sparse_features`` combines them), built as one matrix
    rather than stacked message by message. Dense features are not counts (TF-IDF would
    take the logarithm of a sentence vector's components): they have their own model
    (:func:`dense_sentence_features`)."""
    per_message, _widths, offsets, total = sentence_blocks(messages, sparse=True)
    rows, cols, values = [], [], []
    for row, found in enumerate(per_message):
        for f in found:
            block = coo_matrix(f.features)
            cols.append(block.col + offsets[f.origin])
            values.append(block.data)
            rows.append(np.full(len(cols[-1]), row))
    if not rows:
        return csr_matrix((len(messages), total))
    return csr_matrix((np.concatenate(values).astype(np.float64),
                       (np.concatenate(rows), np.concatenate(cols))),
                      shape=(len(messages), total))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class IntentClassifier(RasaIntentClassifier, GraphComponent):
    """Predicts the intent and, for retrieval intents such as ``faq``, the topic's answer."""

    @classmethod
    def required_components(cls) -> List[Type]:
        return [Featurizer]

    @staticmethod
    def required_packages() -> List[Text]:
        return ["sklearn"]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "C": 10.0,                      # inverse L2 strength for the intent model
            "class_weight": "balanced",     # small intents count as much as big ones
            "topics_as_labels": True,       # learn faq/<topic> as classes; best one scores faq
            "topic_C": 10.0,                # the per-retrieval-intent topic choosers
            # scikit-learn's solver: sag fits the same model as lbfgs here (same scores on
            # every set, README issue 13) in a third of the time
            "solver": "sag",
            "tol": 1e-4,
            # dense sentence features (a SentenceEncoderFeaturizer before this step): their
            # own logistic regression, its scores averaged with the n-grams' (weight dense_weight)
            # (0: ignore them); measured in README, issue 13, 3 Dec
            "dense_C": 10.0,
            "dense_weight": 1.0,
        }

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage,
                 resource: Resource) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.intent_model: Optional[LinearModel] = None
        self.topic_models: Dict[str, LinearModel] = {}
        self.taught: Dict[str, str] = {}

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage,
               resource: Resource, execution_context: ExecutionContext) -> "IntentClassifier":
        return cls(config, model_storage, resource)

    # ------------------------------------------------------------ training

    def train(self, training_data: TrainingData) -> Resource:
        examples = [e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)]
        if not examples:
            logger.debug("IntentClassifier: no intent examples, nothing trained")
            return self._resource
        features = sentence_features(examples)
        dense = self._dense(examples)
        if dense is not None and not dense.present.all():
            logger.warning("IntentClassifier: %d of %d examples have no dense features; the "
                           "dense model is not trained", int((~dense.present).sum()), len(examples))
            dense = None
        use_topics = self.config["topics_as_labels"]
        labels = [(e.get(INTENT_RESPONSE_KEY) if use_topics else None) or e.get(INTENT)
                  for e in examples]
        solver = {"solver": self.config["solver"], "tol": self.config["tol"]}
        weight = float(self.config["dense_weight"])

        def fit(rows, targets, c, class_weight):
            model = weighted_linear_model(c, class_weight, **solver).fit(features[rows], targets)
            dense_model = None
            if dense is not None:
                dense_model = dense_linear_model(self.config["dense_C"], class_weight).fit(
                    dense.vectors[rows], targets)
            return LinearModel.of(model, dense_model, weight)

        self.intent_model = fit(slice(None), labels, self.config["C"], self.config["class_weight"])
        seen: Dict[str, set] = defaultdict(set)
        for example, label in zip(examples, labels):
            seen[taught_key(example.get(TEXT))].add(label)
        self.taught = {text: next(iter(found)) for text, found in seen.items() if len(found) == 1 and text}

        by_retrieval_intent: Dict[str, List[int]] = defaultdict(list)
        for index, example in enumerate(examples):
            if example.get(INTENT_RESPONSE_KEY):
                by_retrieval_intent[example.get(INTENT)].append(index)
        for retrieval_intent, rows in by_retrieval_intent.items():
            topics = [examples[i].get(INTENT_RESPONSE_KEY) for i in rows]
            if len(set(topics)) < 2:
                continue                     # one topic: nothing to choose
            self.topic_models[retrieval_intent] = fit(rows, topics, self.config["topic_C"], None)
        self.persist()
        return self._resource

    def _dense(self, messages: List[Message]) -> Optional[DenseRows]:
        if float(self.config["dense_weight"]) == 0:
            return None
        return dense_sentence_features(messages)

    def persist(self) -> None:
        with self._model_storage.write_to(self._resource) as model_dir:
            if self.intent_model is not None:
                self.intent_model.save(model_dir / INTENT_FILE)
            for retrieval_intent, model in self.topic_models.items():
                model.save(model_dir / f"topics.{retrieval_intent}.npz")
            (model_dir / TAUGHT_FILE).write_text(json.dumps(self.taught, ensure_ascii=False),
                                                 encoding="utf-8")

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "IntentClassifier":
        component = cls(config, model_storage, resource)
        try:
            with model_storage.read_from(resource) as model_dir:
                if (model_dir / INTENT_FILE).exists():
                    component.intent_model = LinearModel.read(model_dir / INTENT_FILE)
                    for path in model_dir.glob("topics.*.npz"):
                        name = path.name[len("topics."):-len(".npz")]
                        component.topic_models[name] = LinearModel.read(path)
                    if (model_dir / TAUGHT_FILE).exists():
                        taught = json.loads((model_dir / TAUGHT_FILE).read_text(encoding="utf-8"))
                        component.taught = {str(k): str(v) for k, v in taught.items()}
                elif (model_dir / SKOPS_INTENT_FILE).exists():
                    component._load_skops(model_dir)
        except ValueError as exc:
            logger.warning("IntentClassifier: no usable trained model in %s: %s", resource.name, exc)
        return component

    def _load_skops(self, model_dir: Path) -> None:
        """A model trained before the .npz files: its skops pipelines, as arrays."""
        import skops.io as sio

        def read(path):
            untrusted = sio.get_untrusted_types(file=path)
            unknown = set(untrusted) - TRUSTED_TYPES
            if unknown:              # sklearn's own types only: not our file
                raise ValueError(f"untrusted types in {path.name}: {sorted(unknown)}")
            return LinearModel.of(sio.load(path, trusted=untrusted))
        self.intent_model = read(model_dir / SKOPS_INTENT_FILE)
        for path in model_dir.glob("topics.*.skops"):
            self.topic_models[path.name[len("topics."):-len(".skops")]] = read(path)

    # ------------------------------------------------------------ prediction

    def process(self, messages: List[Message]) -> List[Message]:
        if self.intent_model is None:
            return messages
        features = sentence_features(messages)
        dense = self._dense(messages)
        label_probs = self.intent_model.predict_proba(features, dense)
        labels = self.intent_model.classes_
        for row, message in enumerate(messages):
            taught = self.taught.get(taught_key(message.get(TEXT)))
            label_probs[row] = as_taught(label_probs[row], labels, taught)
            # An intent scores as its most probable class: summing 16 FAQ topics' small
            # shares would make "faq" win every message the model is unsure about.
            intents: Dict[str, float] = defaultdict(float)
            for label, prob in zip(labels, label_probs[row]):
                base = label.partition("/")[0]
                intents[base] = max(intents[base], float(prob))
            ranking = sorted(({"name": name, "confidence": conf} for name, conf in intents.items()),
                             key=lambda item: -item["confidence"])[:RANKING_LENGTH]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set("intent_ranking", ranking, add_to_output=True)
            if self.topic_models:
                self._select_topics(message, features[row],
                                    dense[row] if dense is not None else None, taught)
        return messages

    def _select_topics(self, message: Message, features: csr_matrix,
                       dense: Optional[DenseRows], taught: Optional[str]) -> None:
        """Writes ``response_selector`` as ResponseSelector does: topic, its utter action."""
        selector: Dict[str, Any] = {"all_retrieval_intents": sorted(self.topic_models)}
        for retrieval_intent, model in self.topic_models.items():
            probs = as_taught(model.predict_proba(features, dense)[0], model.classes_, taught)
            order = np.argsort(-probs)
            ranking = [{"id": None, "confidence": float(probs[i]),
                        "intent_response_key": str(model.classes_[i])}
                       for i in order[:RANKING_LENGTH]]
            best = ranking[0]["intent_response_key"]
            selector[retrieval_intent] = {
                "response": {"responses": [], "confidence": ranking[0]["confidence"],
                             "intent_response_key": best, "utter_action": f"utter_{best}"},
                "ranking": ranking,
            }
        message.set("response_selector", selector, add_to_output=True)
