"""`python -m loadpilot` runs the command line."""

from loadpilot.cli import main

main()
