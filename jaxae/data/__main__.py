"""``python -m jaxae.data fetch NAME``: fetch and verify a dataset; ``info NAME``: its shapes."""

import sys

from jaxae.data.cli import main

sys.exit(main())
