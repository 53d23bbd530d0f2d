"""`python -m llm_router` starts the llm-router service."""

from llm_router.main import main

main()
