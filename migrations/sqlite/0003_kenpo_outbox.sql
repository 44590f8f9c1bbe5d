-- kenpo-auth store schema, SQLite: the transactional outbox.
--
-- A step's mails are inserted in the same transaction as its state, so a mail is never
-- lost once the step committed, and never sent for a step that did not. Delivery
-- workers claim due rows with a lease (one UPDATE … RETURNING, which SQLite runs under
-- its one writer), send, and record the outcome by compare-and-set on `version`.
--
-- `data` is the mail as JSON (OutboxMail): what it says is sealed (XChaCha20-Poly1305
-- under the portal's seal keys, bound to the row's id), so the table holds no link or
-- 暗証キー in the clear. The other columns are copies the store indexes; `leased_until`
-- is authoritative over the copy inside `data`.
CREATE TABLE kenpo_outbox (
    id           TEXT    NOT NULL PRIMARY KEY,
    version      INTEGER NOT NULL,
    -- When the next try is due, Unix time in nanoseconds; NULL once delivered or given up.
    due_at       INTEGER,
    -- Until when a worker holds the row (Unix nanoseconds); NULL when nobody does.
    leased_until INTEGER,
    -- When the row may be deleted (Unix nanoseconds).
    purge_after  INTEGER NOT NULL,
    data         TEXT    NOT NULL
);
CREATE INDEX kenpo_outbox_due ON kenpo_outbox (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX kenpo_outbox_purge ON kenpo_outbox (purge_after);
