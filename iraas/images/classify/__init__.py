"""The ImageNet classifier: EfficientNet-Lite0 (int8 by default) or -Lite2 run through onnxruntime.

Kept import-light: submodules pull in numpy, onnxruntime or torch only when they are imported.

* :mod:`.models` - the models ``IRAAS_MODEL`` chooses from (stdlib only).
* :mod:`.labels` - the 1000 ImageNet-1k classes (stdlib only).
* :mod:`.preprocess` - resize, crop and normalise with Pillow and numpy.
* :mod:`.model` - the EfficientNet-Lite0/-Lite2 networks in PyTorch (build time only).
* :mod:`.export` - builds and caches the ONNX files from the packaged weights.
* :mod:`.quantize` - the int8 model, calibrated on photos (build time only).
* :mod:`.runtime` - :class:`~.runtime.Classifier`, the onnxruntime inference used by the worker.
* :mod:`.command` - the body of ``iraas classify`` (in-process).
* :mod:`.inputs` - the files a run classifies: files as named, folders expanded to their images.
* :mod:`.report` - result writers (text, JSON lines, CSV), the progress line, the summary.
* :mod:`.remote` - ``iraas classify --remote URL``: the files sent to a running service.
"""
