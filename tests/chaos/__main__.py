"""``python -m tests.chaos --seed S --duration 20m``: see ``tests.chaos.run``."""

import sys

from tests.chaos.run import main

sys.exit(main())
