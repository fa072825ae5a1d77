"""``python -m hyphal.cli``: the ``hyphal`` command without the console script."""

from hyphal.cli import main

main()
