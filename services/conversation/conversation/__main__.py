"""`python -m conversation` starts the conversation service."""

from conversation.main import main

main()
