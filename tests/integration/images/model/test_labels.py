"""iraas/images/model/labels.py: the shared ImageNet sample agrees with our class index (no model
needed)."""

from __future__ import annotations

from iraas.images.model.labels import imagenet_labels


def test_every_sample_wnid_and_index_matches_the_class_index(imagenet_sample) -> None:
    labels = imagenet_labels()
    assert len(imagenet_sample) == 500
    for photo in imagenet_sample:
        label = labels[photo.class_index]
        assert label.wnid == photo.wnid, photo
        # The sample's file names carry the Keras label: "<wnid>_<label with underscores>.JPEG".
        assert photo.path.stem == f"{label.wnid}_{label.name.replace(' ', '_')}", photo
        assert photo.path.is_file(), photo
