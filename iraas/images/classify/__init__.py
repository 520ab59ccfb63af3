"""The ImageNet classifier: EfficientNet-Lite0 run through onnxruntime.

Kept import-light: submodules pull in numpy, onnxruntime or torch only when they are imported.

* :mod:`.labels` - the 1000 ImageNet-1k classes (stdlib only).
* :mod:`.preprocess` - resize, crop and normalise with Pillow and numpy.
* :mod:`.model` - the EfficientNet-Lite0 network in PyTorch (build time only).
* :mod:`.export` - builds and caches the ONNX file from the packaged weights.
* :mod:`.runtime` - :class:`~.runtime.Classifier`, the onnxruntime inference used by the worker.
* :mod:`.command` - the body of ``iraas classify``.
"""
