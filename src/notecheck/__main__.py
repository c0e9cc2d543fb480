"""`python -m notecheck` runs the command line."""

from notecheck.cli import main

main()
