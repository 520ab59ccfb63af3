"""``python -m iraas.cli``: the same as the ``iraas`` command."""

import sys

from iraas.cli.main import main

sys.exit(main())
