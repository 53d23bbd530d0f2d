"""How the identity service itself turns a bearer credential into a principal."""

from __future__ import annotations

import asyncpg

from identity.api_keys import ApiKeys
from identity.domain import looks_like_api_key
from identity.errors import InvalidCredentialsError
from switchboard_runtime.access_tokens import InvalidTokenError, TokenVerifier
from switchboard_runtime.auth_interceptor import (
    AuthenticationUnavailableError,
    InvalidCredentialError,
)
from switchboard_runtime.principal import Principal


class LocalAuthenticator:
    """Access tokens against identity's own published keys, API keys against its database."""

    def __init__(self, verifier: TokenVerifier, api_keys: ApiKeys) -> None:
        self._verifier = verifier
        self._api_keys = api_keys

    async def authenticate(self, credential: str) -> Principal:
        try:
            if looks_like_api_key(credential):
                return await self._api_keys.authenticate(credential)
            return await self._verifier.verify(credential)
        except InvalidCredentialsError as error:
            raise InvalidCredentialError(str(error)) from error
        except InvalidTokenError as error:
            raise InvalidCredentialError(error.reason) from error
        except (asyncpg.PostgresError, OSError) as error:
            raise AuthenticationUnavailableError("identity database unreachable") from error
