-- kenpo-auth store schema, PostgreSQL: the transactional outbox.
--
-- A step's mails are inserted by the same statement as its state (one round trip):
-- PostgresStore::commit calls kenpo_commit_with_mails, which runs kenpo_commit (0002,
-- unchanged) and the document's mails inside one block, so a mail is never lost once the
-- step committed, and never sent for a step that did not. Delivery workers claim due rows
-- with a lease (UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED) RETURNING, so several
-- servers claim side by side without waiting on each other), send, and record the
-- outcome the same way, by compare-and-set on `version`.
--
-- `data` is the mail as JSON (OutboxMail): what it says is sealed (XChaCha20-Poly1305
-- under the portal's seal keys, bound to the row's id), so the table holds no link or
-- 暗証キー in the clear. The other columns are copies the store indexes; `leased_until`
-- is authoritative over the copy inside `data`.
--
-- kenpo_commit_with_mails reads the document's "mails" array besides what kenpo_commit
-- reads:
--   "mails": [{ "id", "expected", "due_at" | null, "leased_until" | null, "purge_after",
--               "data": "<JSON text>" }, …]
-- and answers like kenpo_commit. A refused mail write raises inside its block, whose
-- exception handler undoes every write of the block — kenpo_commit's included — and
-- answers 'conflict'.

CREATE TABLE kenpo_outbox (
    id           TEXT        NOT NULL,
    version      BIGINT      NOT NULL,
    -- When the next try is due; NULL once delivered or given up.
    due_at       TIMESTAMPTZ,
    -- Until when a worker holds the row; NULL when nobody does.
    leased_until TIMESTAMPTZ,
    -- When the row may be deleted.
    purge_after  TIMESTAMPTZ NOT NULL,
    data         JSONB       NOT NULL,
    CONSTRAINT kenpo_outbox_pkey PRIMARY KEY (id)
);
CREATE INDEX kenpo_outbox_due ON kenpo_outbox (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX kenpo_outbox_purge ON kenpo_outbox (purge_after);

CREATE FUNCTION kenpo_commit_with_mails(w jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    x jsonb;
    changed bigint;
    outcome text;
BEGIN
    BEGIN
        outcome := kenpo_commit(w);
        IF outcome <> 'committed' THEN
            -- kenpo_commit undid its own writes.
            RETURN outcome;
        END IF;
        FOR x IN SELECT value FROM jsonb_array_elements(COALESCE(w -> 'mails', '[]'::jsonb)) LOOP
            IF jsonb_typeof(x -> 'expected') = 'number' THEN
                UPDATE kenpo_outbox
                   SET version = version + 1,
                       due_at = (x ->> 'due_at')::timestamptz,
                       leased_until = (x ->> 'leased_until')::timestamptz,
                       purge_after = (x ->> 'purge_after')::timestamptz,
                       data = (x ->> 'data')::jsonb
                 WHERE id = x ->> 'id' AND version = (x ->> 'expected')::bigint;
                GET DIAGNOSTICS changed = ROW_COUNT;
                IF changed <> 1 THEN
                    RAISE EXCEPTION 'kenpo: stale version' USING ERRCODE = 'KA001';
                END IF;
            ELSE
                -- A taken ID violates kenpo_outbox_pkey: a conflict.
                INSERT INTO kenpo_outbox (id, version, due_at, leased_until, purge_after, data)
                VALUES (x ->> 'id', 1, (x ->> 'due_at')::timestamptz,
                        (x ->> 'leased_until')::timestamptz,
                        (x ->> 'purge_after')::timestamptz, (x ->> 'data')::jsonb);
            END IF;
        END LOOP;
    EXCEPTION
        WHEN unique_violation OR SQLSTATE 'KA001' THEN
            RETURN 'conflict';
    END;
    RETURN 'committed';
END
$$;
