"""The ``iraas`` command line: the entry point (``main``), its argument types, and the commands that
are tools rather than parts of the service (``iraas classify``, ``iraas status``, the classroom and
OpenStack commands, the step that finishes ``make package``'s template)."""
