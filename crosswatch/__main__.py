"""`python -m crosswatch`: the same as the `crosswatch` console script."""

from crosswatch.cli import main

main()
