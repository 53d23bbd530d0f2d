"""Secrets for the local stack: generated on first run, then kept in the data dir.

They must survive restarts (identity encrypts its signing keys with the key-encryption key,
so a new one would make the stored keys unreadable), and they must never be real secrets:
the file lives next to the dev data, mode 0600, and is regenerated if deleted together with it.

What each service gets:
- identity: SIGNING_KEY_ENCRYPTION_KEY (base64 of 32 bytes) and SERVICE_CLIENT_SECRETS
  (`name=secret,...`: the services allowed to call IssueServiceToken);
- every other service: SERVICE_CLIENT_ID (its name) and SERVICE_CLIENT_SECRET (its secret).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

IDENTITY = "identity"


@dataclass(frozen=True)
class DevSecrets:
    signing_key_encryption_key: str
    service_client_secrets: dict[str, str]

    def env_for(self, service: str) -> dict[str, str]:
        if service == IDENTITY:
            pairs = ",".join(f"{n}={s}" for n, s in sorted(self.service_client_secrets.items()))
            return {
                "SIGNING_KEY_ENCRYPTION_KEY": self.signing_key_encryption_key,
                "SERVICE_CLIENT_SECRETS": pairs,
            }
        secret = self.service_client_secrets.get(service)
        if secret is None:
            return {}
        return {"SERVICE_CLIENT_ID": service, "SERVICE_CLIENT_SECRET": secret}


def load_or_create_dev_secrets(path: Path, services: Iterable[str]) -> DevSecrets:
    """Read the secrets file, adding whatever is missing (new services), and write it back."""
    stored: dict[str, object] = json.loads(path.read_text()) if path.is_file() else {}
    key = stored.get("signing_key_encryption_key")
    if not isinstance(key, str):
        key = base64.b64encode(secrets.token_bytes(32)).decode()
    raw_clients = stored.get("service_client_secrets")
    clients: dict[str, str] = {}
    if isinstance(raw_clients, dict):
        clients = {str(name): str(secret) for name, secret in raw_clients.items()}
    for service in services:
        if service != IDENTITY and service not in clients:
            clients[service] = secrets.token_urlsafe(32)
    result = DevSecrets(signing_key_encryption_key=key, service_client_secrets=clients)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 from the start, so the secrets are never readable by others.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(
            {"signing_key_encryption_key": key, "service_client_secrets": clients}, fh, indent=2
        )
    return result
