"""``python -m crosspose`` runs the command line."""

from crosspose.cli import main

main()
