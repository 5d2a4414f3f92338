"""``python -m gateau`` (used by ``accelerate launch -m gateau train ...``)."""

import sys

from .cli import main

sys.exit(main())
