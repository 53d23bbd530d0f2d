-- Tenants, users, sessions and refresh tokens, API keys, signing keys, login throttling and
-- the event outbox of the identity service.

CREATE TABLE tenants (
    tenant_id  uuid PRIMARY KEY,
    name       text NOT NULL,
    slug       text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL
);

CREATE TABLE users (
    user_id       uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (tenant_id),
    email         text NOT NULL,
    display_name  text NOT NULL,
    role          smallint NOT NULL CHECK (role IN (1, 2, 3)),
    password_hash text NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
-- Emails are unique per tenant, whatever their case.
CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, lower(email));
CREATE INDEX users_tenant_page ON users (tenant_id, created_at, user_id);

-- Failed sign-ins per (tenant slug, email), whether or not the account exists, so the
-- throttle itself reveals nothing about which emails are registered.
CREATE TABLE login_throttle (
    tenant_slug     text NOT NULL,
    email           text NOT NULL,
    failures        integer NOT NULL,
    last_failure_at timestamptz NOT NULL,
    blocked_until   timestamptz NOT NULL,
    PRIMARY KEY (tenant_slug, email)
);

-- A session is one sign-in; its refresh tokens form one rotation family.
CREATE TABLE sessions (
    session_id    uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (tenant_id),
    user_id       uuid NOT NULL REFERENCES users (user_id),
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    revoke_reason text
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE refresh_tokens (
    token_hash bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (session_id),
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE api_keys (
    api_key_id         uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (tenant_id),
    name               text NOT NULL,
    lookup_id          text NOT NULL UNIQUE,
    secret_hash        bytea NOT NULL,
    scopes             text[] NOT NULL,
    created_by_user_id uuid NOT NULL REFERENCES users (user_id),
    created_at         timestamptz NOT NULL,
    expires_at         timestamptz,
    last_used_at       timestamptz,
    revoked_at         timestamptz
);
CREATE INDEX api_keys_tenant_page ON api_keys (tenant_id, created_at, api_key_id);

-- Token signing keys. Private keys are encrypted (AES-256-GCM) with a key from the
-- environment. New tokens are signed with the most recently activated key; a key stays in the
-- JWKS until retired_at, after the last token it signed has expired.
CREATE TABLE signing_keys (
    kid                    text PRIMARY KEY,
    algorithm              text NOT NULL,
    public_key             bytea NOT NULL,
    private_key_ciphertext bytea NOT NULL,
    activated_at           timestamptz NOT NULL,
    retired_at             timestamptz
);

CREATE TABLE event_outbox (
    event_id     uuid PRIMARY KEY,
    position     bigserial NOT NULL UNIQUE,
    subject      text NOT NULL,
    payload      bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX event_outbox_pending ON event_outbox (position) WHERE published_at IS NULL;
