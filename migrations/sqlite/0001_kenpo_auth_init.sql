-- kenpo-auth store schema, SQLite.
--
-- SqliteStore::open applies this file (embedded in the library) and records it in the
-- table `kenpo_auth_migrations`. Hosts that run their own migration tool can apply it
-- as-is instead. Tables are prefixed `kenpo_` so they can share a database file with
-- the host's own tables.
--
-- Secrets never reach these tables: flows are found by keyed digests (32 bytes, BLOB),
-- and the JSON columns hold only digests, counters and timestamps.

-- One row per flow (registration, login challenge …). `state` is the flow's state as
-- JSON; the other columns are copies the store indexes.
CREATE TABLE kenpo_flows (
    id          TEXT    NOT NULL PRIMARY KEY,
    version     INTEGER NOT NULL,
    -- The account the flow belongs to, if any (FlowState::account()).
    account_id  TEXT,
    -- When the flow may be deleted (FlowState::purge_after()), Unix time in nanoseconds.
    purge_after INTEGER NOT NULL,
    state       TEXT    NOT NULL
);
CREATE INDEX kenpo_flows_account ON kenpo_flows (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX kenpo_flows_purge ON kenpo_flows (purge_after);

-- Every digest a flow can be found by (FlowState::lookup_keys()). The primary key makes
-- a digest belong to one flow at most.
CREATE TABLE kenpo_flow_keys (
    digest  BLOB NOT NULL PRIMARY KEY,
    flow_id TEXT NOT NULL REFERENCES kenpo_flows (id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX kenpo_flow_keys_flow ON kenpo_flow_keys (flow_id);

-- One row per account. `data` is the account as JSON; login_id, email and member are
-- the canonical forms the unique indexes hold (one account per login ID, per address,
-- per roster member).
CREATE TABLE kenpo_accounts (
    id       TEXT    NOT NULL PRIMARY KEY,
    version  INTEGER NOT NULL,
    login_id TEXT    NOT NULL,
    email    TEXT,
    member   TEXT    NOT NULL,
    data     TEXT    NOT NULL
);
-- SQLite checks the most recently created index first: this order reports a taken
-- login ID before a taken address, and a taken address before a taken member.
CREATE UNIQUE INDEX kenpo_accounts_member ON kenpo_accounts (member);
CREATE UNIQUE INDEX kenpo_accounts_email ON kenpo_accounts (email);
CREATE UNIQUE INDEX kenpo_accounts_login_id ON kenpo_accounts (login_id);

-- Throttle counters. `data` is the counter as JSON; `expires_at` (Unix time in
-- nanoseconds) is when it may be deleted.
CREATE TABLE kenpo_counters (
    key        TEXT    NOT NULL PRIMARY KEY,
    version    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    data       TEXT    NOT NULL
);
CREATE INDEX kenpo_counters_expires ON kenpo_counters (expires_at);
