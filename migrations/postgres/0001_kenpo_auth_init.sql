-- kenpo-auth store schema, PostgreSQL.
--
-- PostgresStore::migrate applies this file (embedded in the library) and records it in
-- the table `kenpo_auth_migrations` of the current schema. Hosts that run their own
-- migration tool can apply it as-is instead. Tables are prefixed `kenpo_` so they can
-- share a schema with the host's own tables.
--
-- Secrets never reach these tables: flows are found by keyed digests (32 bytes, BYTEA),
-- and the JSON columns hold only digests, counters and timestamps.
--
-- The constraint names are part of the contract: the store maps a unique violation to
-- "login ID taken", "e-mail taken" or "member taken" by name.

-- One row per flow (registration, login challenge …). `state` is the flow's state as
-- JSON; the other columns are copies the store indexes.
CREATE TABLE kenpo_flows (
    seq         BIGINT      GENERATED ALWAYS AS IDENTITY,
    id          TEXT        NOT NULL,
    version     BIGINT      NOT NULL,
    -- The account the flow belongs to, if any (FlowState::account()).
    account_id  TEXT,
    -- When the flow may be deleted (FlowState::purge_after(), rounded up to the microsecond).
    purge_after TIMESTAMPTZ NOT NULL,
    state       JSONB       NOT NULL,
    CONSTRAINT kenpo_flows_pkey PRIMARY KEY (id)
);
CREATE INDEX kenpo_flows_account ON kenpo_flows (account_id, seq) WHERE account_id IS NOT NULL;
CREATE INDEX kenpo_flows_purge ON kenpo_flows (purge_after);

-- Every digest a flow can be found by (FlowState::lookup_keys()). The primary key makes
-- a digest belong to one flow at most.
CREATE TABLE kenpo_flow_keys (
    digest  BYTEA NOT NULL,
    flow_id TEXT  NOT NULL,
    CONSTRAINT kenpo_flow_keys_pkey PRIMARY KEY (digest),
    CONSTRAINT kenpo_flow_keys_flow_fkey FOREIGN KEY (flow_id)
        REFERENCES kenpo_flows (id) ON DELETE CASCADE
);
CREATE INDEX kenpo_flow_keys_flow ON kenpo_flow_keys (flow_id);

-- One row per account. `data` is the account as JSON; login_id, email and member are
-- the canonical forms the unique constraints hold (one account per login ID, per
-- address, per roster member).
CREATE TABLE kenpo_accounts (
    id       TEXT   NOT NULL,
    version  BIGINT NOT NULL,
    login_id TEXT   NOT NULL,
    email    TEXT,
    member   TEXT   NOT NULL,
    data     JSONB  NOT NULL,
    CONSTRAINT kenpo_accounts_pkey PRIMARY KEY (id),
    CONSTRAINT kenpo_accounts_login_id_key UNIQUE (login_id),
    CONSTRAINT kenpo_accounts_email_key UNIQUE (email),
    CONSTRAINT kenpo_accounts_member_key UNIQUE (member)
);

-- Throttle counters. `data` is the counter as JSON; `expires_at` is when it may be
-- deleted (rounded up to the microsecond).
CREATE TABLE kenpo_counters (
    key        TEXT        NOT NULL,
    version    BIGINT      NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    data       JSONB       NOT NULL,
    CONSTRAINT kenpo_counters_pkey PRIMARY KEY (key)
);
CREATE INDEX kenpo_counters_expires ON kenpo_counters (expires_at);
