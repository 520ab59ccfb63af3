"""Phase 1, the image service: the request and result schema (``jobs``), the web use cases
(``service``), the result store, replies to waiting requests, the worker loop, its metrics, its
settings, and the classifier model (``model/``)."""
