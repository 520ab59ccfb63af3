"""The ImageNet classifier: EfficientNet-Lite0 (int8 by default) or -Lite2, or a model of one's own,
run through OpenVINO or onnxruntime.

Kept import-light: submodules pull in numpy, OpenCV, a runtime or torch only when they are imported.

* :mod:`.models` - the models ``IRAAS_MODEL`` chooses from (stdlib only).
* :mod:`.runtimes` - the runtimes ``IRAAS_RUNTIME`` chooses from (stdlib only).
* :mod:`.files` - the ONNX files' names, their input and output, how they are written (stdlib only).
* :mod:`.labels` - the 1000 ImageNet-1k classes (stdlib only).
* :mod:`.own` - a model of one's own (``IRAAS_MODEL=/path/to/NAME.onnx``): its labels and input
  settings read and checked, its graph's input and output checked (stdlib only).
* :mod:`.catalog` - what ``IRAAS_MODEL`` can name here, for ``iraas model list`` (stdlib only).
* :mod:`.fetch` - a model of one's own from S3, checked against its sha256 (a worker's start).
* :mod:`.preprocess` - decode (simplejpeg, Pillow), crop and resize (OpenCV) into uint8 pixels.
* :mod:`.network` - the EfficientNet-Lite0/-Lite2 networks in PyTorch (build time only).
* :mod:`.export` - builds and caches the ONNX files from the packaged weights (build time only).
* :mod:`.quantize` - the int8 model, calibrated on photos (build time only).
* :mod:`.runtime` - :class:`~.runtime.Classifier`, the inference (OpenVINO or onnxruntime) the
  worker and ``iraas classify`` run.

``iraas classify`` itself (files and folders in, results out, locally or against a service) is a
command-line tool: ``iraas/cli/classify/``.
"""
