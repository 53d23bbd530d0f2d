-- Bots, conversations, members and messages, and the event outbox.
--
-- Tenancy: every row carries tenant_id and every query filters on it; the tenant comes from
-- the caller's verified credential, never from a request body.

CREATE TABLE bots (
    bot_id               uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL,
    name                 text NOT NULL,
    system_prompt        text NOT NULL,
    model                text NOT NULL,
    temperature          real,
    top_p                real,
    max_tokens           integer,
    history_max_messages integer NOT NULL DEFAULT 0,
    history_max_tokens   integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX bots_tenant_page ON bots (tenant_id, created_at, bot_id);

-- A conversation's messages are numbered by last_sequence: the sender's transaction bumps it
-- (which row-locks this conversation, and only this one) and inserts the message with the
-- new value, so sequences are gap-free and strictly increasing per conversation.
CREATE TABLE conversations (
    conversation_id      uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL,
    kind                 smallint NOT NULL,
    title                text NOT NULL,
    -- No foreign key: a deleted bot leaves its conversations' history intact.
    bot_id               uuid,
    channel_id           uuid,
    external_contact_id  text,
    contact_display_name text NOT NULL DEFAULT '',
    -- The principal subject that created it (a user id, API key id or service name).
    created_by           text NOT NULL,
    last_sequence        bigint NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL,
    closed_at            timestamptz
);
CREATE INDEX conversations_tenant_page ON conversations (tenant_id, created_at DESC, conversation_id DESC);
-- One open conversation per channel contact; inbound messages find it by these columns.
CREATE UNIQUE INDEX conversations_open_channel_contact
    ON conversations (tenant_id, channel_id, external_contact_id)
    WHERE channel_id IS NOT NULL AND closed_at IS NULL;

CREATE TABLE conversation_members (
    conversation_id uuid NOT NULL REFERENCES conversations (conversation_id) ON DELETE CASCADE,
    user_id         uuid NOT NULL,
    tenant_id       uuid NOT NULL,
    added_at        timestamptz NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_members_by_user ON conversation_members (tenant_id, user_id);

CREATE TABLE messages (
    message_id          uuid PRIMARY KEY,
    conversation_id     uuid NOT NULL REFERENCES conversations (conversation_id) ON DELETE CASCADE,
    tenant_id           uuid NOT NULL,
    sequence            bigint NOT NULL,
    client_message_id   text NOT NULL,
    author_kind         smallint NOT NULL,
    author_id           text NOT NULL,
    text                text NOT NULL,
    status              smallint NOT NULL,
    failure_reason      text NOT NULL DEFAULT '',
    reply_to_message_id uuid,
    platform_message_id text NOT NULL DEFAULT '',
    -- Set on messages a channel contact wrote, so a platform message is stored once per
    -- channel even if its conversation was closed and a new one opened in between.
    channel_id          uuid,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    CONSTRAINT messages_sequence UNIQUE (conversation_id, sequence),
    CONSTRAINT messages_idempotency UNIQUE (conversation_id, client_message_id)
);
CREATE UNIQUE INDEX messages_inbound_platform_id ON messages (channel_id, platform_message_id)
    WHERE channel_id IS NOT NULL;
CREATE INDEX messages_replies ON messages (reply_to_message_id) WHERE reply_to_message_id IS NOT NULL;

CREATE TABLE event_outbox (
    event_id     uuid PRIMARY KEY,
    position     bigserial NOT NULL UNIQUE,
    subject      text NOT NULL,
    payload      bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX event_outbox_pending ON event_outbox (position) WHERE published_at IS NULL;
