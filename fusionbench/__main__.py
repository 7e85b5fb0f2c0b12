"""``python -m fusionbench`` is the ``fusionbench`` command."""
from .cli import console_main

console_main()
