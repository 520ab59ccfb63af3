"""The soak test: a bounded stream of mixed requests through ``iraas up`` (``make soak``)."""
