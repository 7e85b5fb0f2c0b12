"""``python -m fusionbench.train <method> ...`` (same as ``fusionbench train``)."""
import sys

from .cli import main

sys.exit(main())
