"""`python -m connectors` starts the connectors service."""

from connectors.main import main

main()
