"""``python -m gateau.cli`` (the same as ``python -m gateau``)."""

import sys

from . import main

sys.exit(main())
