"""Serving the web tier's routes (``chalice_web/``) wherever it runs: the Chalice project's loader and
local gateway, API keys, errors as HTTP answers, the orderly stop, the WSGI adapter, gunicorn's
command line and the embedded stack's web server.

Light on purpose: on Lambda the routes import ``auth``, ``errors`` and ``drain``; the modules that
serve over HTTP themselves (``project``, ``server``, ``wsgi``) import chalice's local gateway and are
imported only by those servers."""
