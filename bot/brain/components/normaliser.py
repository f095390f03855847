"""Text normalisation before tokenisation, as a Rasa 3 graph component.

Customers mix full-width and half-width forms (ＤＤ２０２６…, ！, ？, ，) and upper and
lower case Latin (WiFi, wifi, KF/kf). Mapping them to one form lets the tokenizer,
the regexes and the featurizers see one word where the customer wrote one word.
The mapping is length-preserving, so entity offsets in training data stay valid.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

_FULL_TO_HALF = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_FULL_TO_HALF[0x3000] = 0x20  # ideographic space


def normalise(text: str) -> str:
    """Full-width ASCII → half-width, letters lower-cased; same length out as in.

    ``str.lower()`` is not length-preserving for one character, ``İ`` (U+0130, lower case
    ``i`` + a combining dot): it is lower-cased only where that keeps one character for one.
    """
    text = text.translate(_FULL_TO_HALF)
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(low if len(low := ch.lower()) == 1 else ch for ch in text)


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False
)
class TextNormaliser(GraphComponent):
    """Rewrites each message's text with :func:`normalise` before the tokenizer runs."""

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage,
               resource: Resource, execution_context: ExecutionContext) -> "TextNormaliser":
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for message in training_data.training_examples:
            self._normalise(message)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            self._normalise(message)
        return messages

    @staticmethod
    def _normalise(message: Message) -> None:
        text = message.get(TEXT)
        if text:
            message.set(TEXT, normalise(text))
