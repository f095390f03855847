"""Keep one trustworthy value per structured entity, as a Rasa 3 graph component.

Order numbers, phones and ticket numbers have exact formats, so the regex extractor is
the authority for them; DIET's guesses for those three (it sees spaces and digit
groups as separate tokens) are dropped, as is any entity whose value is only
whitespace. Learned entities (products) pass through untouched.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, ENTITY_ATTRIBUTE_TYPE, ENTITY_ATTRIBUTE_VALUE, EXTRACTOR
from rasa.shared.nlu.training_data.message import Message

PATTERN_ENTITIES = frozenset({"order_id", "phone", "ticket_id"})
PATTERN_EXTRACTOR = "RegexEntityExtractor"


def keep(entity: Dict[Text, Any]) -> bool:
    value = entity.get(ENTITY_ATTRIBUTE_VALUE)
    if isinstance(value, str) and not value.strip():
        return False
    if entity.get(ENTITY_ATTRIBUTE_TYPE) in PATTERN_ENTITIES:
        return entity.get(EXTRACTOR) == PATTERN_EXTRACTOR
    return True


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False
)
class StructuredEntityFilter(GraphComponent):
    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage,
               resource: Resource, execution_context: ExecutionContext) -> "StructuredEntityFilter":
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            entities = message.get(ENTITIES) or []
            message.set(ENTITIES, [e for e in entities if keep(e)], add_to_output=True)
        return messages
