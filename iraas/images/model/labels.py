"""The ImageNet-1k class list (index -> WordNet id and a short human label).

``imagenet_class_index.json`` is Keras's file, byte for byte (MD5
c2c37ea517e94d9795004a39431a14cb, the hash Keras pins), so indices, WordNet ids and labels
are the ones every ImageNet-1k model uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

NUM_CLASSES = 1000


@dataclass(frozen=True)
class Label:
    index: int
    wnid: str | None  # WordNet synset id, e.g. "n02123045"; None for a model of one's own (plain labels)
    name: str  # human label with spaces, e.g. "tabby", "great white shark"


@lru_cache(maxsize=1)
def imagenet_labels() -> list[Label]:
    """The 1000 labels, ordered by class index (the model's output order)."""
    text = resources.files(__package__).joinpath("imagenet_class_index.json").read_text("utf-8")
    raw: dict[str, list[str]] = json.loads(text)
    labels = [
        Label(index=i, wnid=raw[str(i)][0], name=raw[str(i)][1].replace("_", " "))
        for i in range(len(raw))
    ]
    if len(labels) != NUM_CLASSES:  # a packaging mistake, not a runtime condition
        raise RuntimeError(f"expected {NUM_CLASSES} ImageNet labels, found {len(labels)}")
    return labels
