"""Sentence-level n-gram counts of a message's text, as one Rasa 3 graph component.

What two of Rasa's ``CountVectorsFeaturizer`` steps gave the intent classifier (jieba word
counts and character 1–3-grams inside tokens), computed the same way (tokens' lemmas,
digits → ``__NUMBER__``, lower case, tokens joined by spaces; ``\\b\\w+\\b`` words,
``char_wb`` n-grams padded at token edges), but

* **sentence features only.** ``bot/brain/components/intent_classifier.py`` reads only the
  sentence-level row; CountVectorsFeaturizer also builds a token × vocabulary matrix per
  message and featurizes the responses' and actions' texts, none of which anything in
  ``config.yml`` reads (the CRF uses its own token features);
* **one batch.** The vocabulary is fitted and every training message transformed in one
  scikit-learn call per block, not two ``transform`` calls per message and attribute;
* **one graph step for all blocks.** Rasa fingerprints every step's whole output (all
  messages, tokens and features) for its training cache: one step instead of two is one
  pass less.

Measured (README, "Understanding customers", issue 13): same features, same scores, and
the featurizer steps of a full training went from ~20 s to ~1 s of CPU.

Each block of ``blocks`` is ``{analyzer: word|char_wb|char, min_ngram, max_ngram, min_df,
over: tokens|text}``: ``over: tokens`` reads the tokens joined by spaces (as
CountVectorsFeaturizer does); ``over: text`` reads the normalised message as written, so
character n-grams cross token boundaries (digit runs become one ``0``).
"""
from __future__ import annotations

import json
import logging
import re
from typing import Any, Dict, List, Optional, Text

import numpy as np
import scipy.sparse
from sklearn.feature_extraction.text import CountVectorizer

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.sparse_featurizer.sparse_featurizer import SparseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

VOCABULARY_FILE = "vocabularies.json"
DEFAULT_BLOCKS = [
    {"analyzer": "word"},
    {"analyzer": "char_wb", "min_ngram": 1, "max_ngram": 3},
]
_NUMBER = re.compile(r"\b[0-9]+\b")
_DIGITS = re.compile(r"[0-9]+")


def block_settings(block: Dict[Text, Any]) -> Dict[Text, Any]:
    settings = {"analyzer": "word", "min_ngram": 1, "max_ngram": 1, "min_df": 1, "over": "tokens",
                **block}
    if settings["analyzer"] not in ("word", "char_wb", "char"):
        raise ValueError(f"NgramFeaturizer: analyzer {settings['analyzer']!r}: word, char_wb or char")
    if settings["over"] not in ("tokens", "text"):
        raise ValueError(f"NgramFeaturizer: over {settings['over']!r}: tokens or text")
    return settings


def vectorizer(settings: Dict[Text, Any], vocabulary: Optional[List[str]] = None) -> CountVectorizer:
    return CountVectorizer(
        analyzer=settings["analyzer"], ngram_range=(settings["min_ngram"], settings["max_ngram"]),
        token_pattern=r"(?u)\b\w+\b" if settings["analyzer"] == "word" else None,
        lowercase=True, min_df=settings["min_df"] if vocabulary is None else 1,
        vocabulary=vocabulary, dtype=np.float64)


def document(message: Message, over: str) -> Optional[str]:
    """The string a block counts n-grams in (None: the message has no text)."""
    text = message.get(TEXT)
    if not text:
        return None
    if over == "text":
        return _DIGITS.sub("0", text.lower())
    tokens = message.get(TOKENS_NAMES[TEXT]) or []
    return " ".join(_NUMBER.sub("__NUMBER__", t.lemma or t.text).lower() for t in tokens)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class NgramFeaturizer(SparseFeaturizer, GraphComponent):
    """Counts of words and character n-grams: one sparse sentence feature, the blocks side by side."""

    @classmethod
    def required_components(cls) -> List[type]:
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {**SparseFeaturizer.get_default_config(), "blocks": DEFAULT_BLOCKS}

    @staticmethod
    def required_packages() -> List[Text]:
        return ["sklearn"]

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        for block in config.get("blocks") or []:
            block_settings(block)

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 execution_context: ExecutionContext,
                 vocabularies: Optional[List[List[str]]] = None) -> None:
        config = {**self.get_default_config(), **config}
        SparseFeaturizer.__init__(self, execution_context.node_name, config)
        self._model_storage = model_storage
        self._resource = resource
        self.blocks = [block_settings(b) for b in config["blocks"]]
        self.vectorizers: List[CountVectorizer] = (
            [vectorizer(s, v) for s, v in zip(self.blocks, vocabularies)] if vocabularies else [])

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "NgramFeaturizer":
        return cls(config, model_storage, resource, execution_context)

    def train(self, training_data: TrainingData) -> Resource:
        messages = [m for m in training_data.training_examples if m.get(TEXT)]
        self.vectorizers = []
        for settings in self.blocks:
            model = vectorizer(settings)
            docs = [document(m, settings["over"]) for m in messages]
            try:
                model.fit(docs)
            except ValueError:              # nothing to count (no text, or all below min_df)
                model = vectorizer(settings, ["__none__"])
            self.vectorizers.append(model)
        self.persist()
        return self._resource

    def persist(self) -> None:
        vocabularies = [sorted(v.vocabulary_, key=v.vocabulary_.get) for v in self.vectorizers]
        with self._model_storage.write_to(self._resource) as model_dir:
            (model_dir / VOCABULARY_FILE).write_text(
                json.dumps({"blocks": self.blocks, "vocabularies": vocabularies}, ensure_ascii=False),
                encoding="utf-8")

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "NgramFeaturizer":
        try:
            with model_storage.read_from(resource) as model_dir:
                saved = json.loads((model_dir / VOCABULARY_FILE).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError) as exc:
            logger.warning("NgramFeaturizer: no trained vocabulary in %s: %s", resource.name, exc)
            return cls(config, model_storage, resource, execution_context)
        return cls({**config, "blocks": saved["blocks"]}, model_storage, resource, execution_context,
                   vocabularies=saved["vocabularies"])

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        if not self.vectorizers:
            return messages
        featurized = [m for m in messages if m.get(TEXT)]
        if not featurized:
            return messages
        matrices = [model.transform([document(m, s["over"]) for m in featurized])
                    for s, model in zip(self.blocks, self.vectorizers)]
        counts = scipy.sparse.hstack(matrices, format="csr")
        for row, message in enumerate(featurized):
            self.add_features_to_message(None, counts[row].tocoo(), TEXT, message)
        return messages
