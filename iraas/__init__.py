"""IRaaS: Image Recognition as a Service.

The shared package. Everything here that the web tier imports stays light (boto3, Pillow,
multipart); heavy engines (onnxruntime, numpy, torch) are imported only where they are used.
"""

__version__ = "0.1.0"
