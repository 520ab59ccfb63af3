"""The web tier as a WSGI app: ``chalice_web/app.py`` unchanged, served through iraas.web.wsgi.

Loaded by path, never imported as a package (``openstack`` is openstacksdk's import name):
``gunicorn --config openstack/gunicorn.conf.py`` sets ``chdir`` to this folder and loads
``wsgi:application``.
"""

from pathlib import Path

from iraas.web.wsgi import make_application

application = make_application(Path(__file__).resolve().parent.parent / "chalice_web")
