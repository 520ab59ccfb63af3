"""Untrusted image bytes, taken the same way by both phases: an upload parsed from a request body and
bounded (``uploads``), then identified, checked and decoded in bounded memory (``validation``)."""
