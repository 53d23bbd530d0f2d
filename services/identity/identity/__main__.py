"""`python -m identity` starts the identity service."""

from identity.main import main

main()
