"""``iraas classify PATH...``: image files and folders in, one result per file out, classified in
this process (``command``) or by a running service (``remote``)."""
