"""Optional engine: facenet-pytorch's MTCNN detector and InceptionResnetV1 recogniser.

Not installed by default (facenet-pytorch pins torch<2.3 and numpy<2). The recogniser's weights
are read from a local file (``IRAAS_FACENET_WEIGHTS``, a state dict such as
``20180402-114759-vggface2.pt``); nothing is ever downloaded. Its descriptors are 512-d and live on
another scale than dlib's, so a gallery enrolled with one engine cannot be matched with the other,
and the tolerance must be measured again (facenet's usual threshold is about 1.0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from iraas.classroom.engines import ENGINES
from iraas.classroom.engines.base import Box, EngineUnavailable, FaceEngine


class FacenetEngine(FaceEngine):
    spec = ENGINES["facenet"]

    @classmethod
    def create(cls, weights: str | Path | None = None) -> FacenetEngine:
        return cls(weights)

    def __init__(self, weights: str | Path | None) -> None:
        try:
            import torch
            from facenet_pytorch import MTCNN, InceptionResnetV1
        except ImportError as exc:
            raise EngineUnavailable(
                "the facenet engine needs facenet-pytorch, which is not installed by default "
                f"(pip install facenet-pytorch; it pins torch<2.3 and numpy<2): {exc}"
            ) from None
        if not weights or not Path(weights).is_file():
            raise EngineUnavailable(
                f"the facenet engine needs its recogniser weights as a local file; "
                f"set IRAAS_FACENET_WEIGHTS (got {weights!r})"
            )
        self._torch = torch
        self._mtcnn = MTCNN(keep_all=True, post_process=True, device="cpu")
        # pretrained=None: build the network without its download hook, then load the local file.
        self._model = InceptionResnetV1(pretrained=None, classify=False).eval()
        state = torch.load(str(weights), map_location="cpu", weights_only=True)
        self._model.load_state_dict(state, strict=False)

    def detect(self, rgb: np.ndarray) -> list[Box]:
        boxes, _probs = self._mtcnn.detect(rgb)
        if boxes is None:
            return []
        height, width = rgb.shape[:2]
        return [
            Box(top=max(0, int(t)), right=min(width, int(r)), bottom=min(height, int(b)), left=max(0, int(left)))
            for left, t, r, b in boxes
        ]

    def describe(self, rgb: np.ndarray, boxes: list[Box]) -> list[np.ndarray]:
        if not boxes:
            return []
        from facenet_pytorch.models.mtcnn import extract_face
        from PIL import Image

        image = Image.fromarray(rgb)
        crops = [extract_face(image, [b.left, b.top, b.right, b.bottom], image_size=160) for b in boxes]
        batch = self._torch.stack([(c - 127.5) / 128.0 for c in crops])
        with self._torch.no_grad():
            return [row.astype(np.float32) for row in self._model(batch).numpy()]
