"""`python -m gateway` starts the gateway service."""

from gateway.main import main

main()
