"""Hybrid cloud: the web tier as a WSGI app (gunicorn) and its deployment to OpenStack (Nova)."""
