"""``python -m fusionbench`` is the ``fusionbench`` command."""
from .cli import main

raise SystemExit(main())
