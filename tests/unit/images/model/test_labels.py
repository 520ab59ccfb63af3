"""iraas/images/model/labels.py: the ImageNet-1k class list."""

from __future__ import annotations

import hashlib
import re
from importlib import resources

from iraas.images.model.labels import Label, imagenet_labels

# The MD5 Keras pins for imagenet_class_index.json: our copy is that file, byte for byte.
KERAS_CLASS_INDEX_MD5 = "c2c37ea517e94d9795004a39431a14cb"


def test_the_file_is_kerass_class_index() -> None:
    data = resources.files("iraas.images.model").joinpath("imagenet_class_index.json").read_bytes()
    assert hashlib.md5(data).hexdigest() == KERAS_CLASS_INDEX_MD5


def test_thousand_labels_in_index_order() -> None:
    labels = imagenet_labels()
    assert len(labels) == 1000
    assert [label.index for label in labels] == list(range(1000))


def test_wnids_are_unique_and_in_the_standard_sorted_order() -> None:
    wnids = [label.wnid for label in imagenet_labels()]
    assert all(re.fullmatch(r"n\d{8}", w) for w in wnids)
    assert len(set(wnids)) == 1000
    assert wnids == sorted(wnids)


def test_well_known_entries() -> None:
    labels = imagenet_labels()
    assert labels[0] == Label(0, "n01440764", "tench")
    assert labels[281] == Label(281, "n02123045", "tabby")
    assert labels[2].name == "great white shark"
    assert labels[999] == Label(999, "n15075141", "toilet tissue")


def test_underscores_are_replaced_by_spaces() -> None:
    assert not any("_" in label.name for label in imagenet_labels())
    assert imagenet_labels()[607].name == "jack-o'-lantern"


def test_labels_are_cached() -> None:
    assert imagenet_labels() is imagenet_labels()
