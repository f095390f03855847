"""Locations (a home by building / unit / room, or a shared place), as a Rasa 3 graph component.

Residents write an address in a few fixed shapes (``3栋2单元1201``, ``5号楼801``, ``B座12楼``,
``8-2-301``, ``3号楼1单元1002室``) or name a shared place of the estate (``电梯``, ``地下车库``,
``小区东门``, ``3号楼电梯``, ``5栋楼顶``). The shapes are the grammar of
:mod:`bot.profile.places`; the shared places are a lexicon: the ``places`` this component is
configured with (a business pack passes its profile's ``shared_places``, see
bot/training/assemble.py) and every place the training data annotates. A learned tagger sees
jieba's tokens, which cut an address in the wrong places; this one finds the span.

One location per message, the one it is about: the most precise (a home with more than a
building, then a building's place, then a place or a building alone), the first of equals,
which is how the training and evaluation sets annotate. It is the authority for ``location``:
a learned extractor's ``location`` is replaced by this one's, and kept only when this one
finds none (``keep_learned``). Messages of ``ignore_intents`` (a question about parking
names the garage without reporting anything there) get no location from it.
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict, Iterable, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import (ENTITIES, ENTITY_ATTRIBUTE_END, ENTITY_ATTRIBUTE_START,
                                       ENTITY_ATTRIBUTE_TYPE, ENTITY_ATTRIBUTE_VALUE, EXTRACTOR,
                                       INTENT, TEXT)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.profile import places as grammar

LEXICON_FILE = "places.json"
# a learned place word: two to six Chinese characters or letters, not a number written out
PLACE_WORD = re.compile(r"^(?![零一二三四五六七八九十两]+$)[\u4e00-\u9fffA-Za-z]{2,6}$")


def learned_places(values: Iterable[str], known: Iterable[str]) -> List[str]:
    """Shared-place words in annotated ``location`` values that ``known`` does not cover:
    the value less a leading building (``27号楼楼道`` → ``楼道``); homes (the grammar reads
    them) and values with digits left give nothing."""
    words = set(grammar.place_words(known))
    for value in values:
        value = str(value).strip()
        span = grammar.best_span(value, words)
        if span and span.start == 0 and span.end == len(value):
            continue
        building = grammar.BUILDING_ONLY.match(value)
        rest = value[building.end():] if building else value
        if PLACE_WORD.match(rest) and not grammar.HOME.match(rest):
            words.add(rest)
    return grammar.place_words(words)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class LocationExtractor(GraphComponent, EntityExtractorMixin):
    """The ``location`` entity from the address grammar and the shared-place lexicon."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "entity": "location",
            "places": [],               # shared places of the estate (the pack's profile)
            "learn_places": True,       # add the places the training data annotates
            "keep_learned": True,       # a learned extractor's location when this finds none
            "ignore_intents": [],       # intents whose messages report no location
            "not_places": [],           # names that hold a place word but are none (示例花园)
        }

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 lexicon: Optional[List[str]] = None) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.lexicon = grammar.place_words(lexicon if lexicon is not None else self.config["places"] or [])
        names = self.config["not_places"] or []
        self.not_places = sorted({str(n) for n in ([names] if isinstance(names, str) else names) if n},
                                 key=len, reverse=True)

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage,
               resource: Resource, execution_context: ExecutionContext) -> "LocationExtractor":
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        entity = self.config["entity"]
        if self.config["learn_places"]:
            values = [e.get(ENTITY_ATTRIBUTE_VALUE) for m in training_data.training_examples
                      for e in m.get(ENTITIES) or [] if e.get(ENTITY_ATTRIBUTE_TYPE) == entity]
            self.lexicon = learned_places([v for v in values if v], self.lexicon)
        with self._model_storage.write_to(self._resource) as folder:
            (folder / LEXICON_FILE).write_text(json.dumps(self.lexicon, ensure_ascii=False), encoding="utf-8")
        return self._resource

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "LocationExtractor":
        try:
            with model_storage.read_from(resource) as folder:
                lexicon = json.loads((folder / LEXICON_FILE).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError):
            lexicon = None
        return cls(config, model_storage, resource, lexicon)

    def locate(self, text: str) -> Optional[Dict[Text, Any]]:
        """The message's location as a Rasa entity, or None."""
        for name in self.not_places:
            text = text.replace(name, "□" * len(name))     # same length: offsets stay valid
        span = grammar.best_span(text, self.lexicon)
        if span is None:
            return None
        return {ENTITY_ATTRIBUTE_TYPE: self.config["entity"], ENTITY_ATTRIBUTE_START: span.start,
                ENTITY_ATTRIBUTE_END: span.end, ENTITY_ATTRIBUTE_VALUE: span.location.text,
                EXTRACTOR: self.__class__.__name__}

    def process(self, messages: List[Message]) -> List[Message]:
        entity = self.config["entity"]
        ignored = set(self.config["ignore_intents"] or [])
        for message in messages:
            entities = list(message.get(ENTITIES) or [])
            learned = [e for e in entities if e.get(ENTITY_ATTRIBUTE_TYPE) == entity]
            others = [e for e in entities if e.get(ENTITY_ATTRIBUTE_TYPE) != entity]
            intent = ((message.get(INTENT) or {}).get("name") or "").split("/")[0]
            if intent in ignored:
                message.set(ENTITIES, others, add_to_output=True)
                continue
            found = self.locate(message.get(TEXT) or "")
            if found:
                others.append(found)
            elif self.config["keep_learned"]:
                others.extend(learned)
            message.set(ENTITIES, others, add_to_output=True)
        return messages
