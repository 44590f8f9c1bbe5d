-- kenpo-auth store schema, PostgreSQL: the transactional outbox.
--
-- A step's mails are inserted by the same kenpo_commit call as its state (one
-- statement, one round trip), so a mail is never lost once the step committed, and
-- never sent for a step that did not. Delivery workers claim due rows with a lease
-- (UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED) RETURNING, so several servers claim
-- side by side without waiting on each other), send, and record the outcome through
-- kenpo_commit by compare-and-set on `version`.
--
-- `data` is the mail as JSON (OutboxMail): what it says is sealed (XChaCha20-Poly1305
-- under the portal's seal keys, bound to the row's id), so the table holds no link or
-- 暗証キー in the clear. The other columns are copies the store indexes; `leased_until`
-- is authoritative over the copy inside `data`.
--
-- kenpo_commit gains the document's "mails" array:
--   "mails": [{ "id", "expected", "due_at" | null, "leased_until" | null, "purge_after",
--               "data": "<JSON text>" }, …]
-- The rest of the function is unchanged from 0002.

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

CREATE OR REPLACE FUNCTION kenpo_commit(w jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    x jsonb;
    changed bigint;
    taken text;
BEGIN
    BEGIN
        FOR x IN SELECT value FROM jsonb_array_elements(w -> 'flows') LOOP
            IF jsonb_typeof(x -> 'expected') = 'number' THEN
                UPDATE kenpo_flows
                   SET version = version + 1,
                       account_id = x ->> 'account_id',
                       purge_after = (x ->> 'purge_after')::timestamptz,
                       state = (x ->> 'state')::jsonb
                 WHERE id = x ->> 'id' AND version = (x ->> 'expected')::bigint;
                GET DIAGNOSTICS changed = ROW_COUNT;
                IF changed <> 1 THEN
                    RAISE EXCEPTION 'kenpo: stale version' USING ERRCODE = 'KA001';
                END IF;
                -- The keys the new state no longer names.
                DELETE FROM kenpo_flow_keys
                 WHERE flow_id = x ->> 'id'
                   AND digest NOT IN (SELECT decode(d, 'hex')
                                        FROM jsonb_array_elements_text(x -> 'keys') AS d);
            ELSE
                -- A taken ID violates kenpo_flows_pkey: a conflict.
                INSERT INTO kenpo_flows (id, version, account_id, purge_after, state)
                VALUES (x ->> 'id', 1, x ->> 'account_id',
                        (x ->> 'purge_after')::timestamptz, (x ->> 'state')::jsonb);
            END IF;
            -- A digest another flow holds violates kenpo_flow_keys_pkey: a conflict.
            INSERT INTO kenpo_flow_keys (digest, flow_id)
            SELECT decode(d, 'hex'), x ->> 'id'
              FROM jsonb_array_elements_text(x -> 'keys') AS d
             WHERE NOT EXISTS (SELECT 1 FROM kenpo_flow_keys k
                                WHERE k.digest = decode(d, 'hex') AND k.flow_id = x ->> 'id');
        END LOOP;

        FOR x IN SELECT value FROM jsonb_array_elements(w -> 'counters') LOOP
            IF jsonb_typeof(x -> 'expected') = 'number' THEN
                UPDATE kenpo_counters
                   SET version = version + 1,
                       expires_at = (x ->> 'expires_at')::timestamptz,
                       data = (x ->> 'data')::jsonb
                 WHERE key = x ->> 'key' AND version = (x ->> 'expected')::bigint;
                GET DIAGNOSTICS changed = ROW_COUNT;
                IF changed <> 1 THEN
                    RAISE EXCEPTION 'kenpo: stale version' USING ERRCODE = 'KA001';
                END IF;
            ELSE
                INSERT INTO kenpo_counters (key, version, expires_at, data)
                VALUES (x ->> 'key', 1, (x ->> 'expires_at')::timestamptz, (x ->> 'data')::jsonb);
            END IF;
        END LOOP;

        FOR x IN SELECT value FROM jsonb_array_elements(w -> 'accounts') LOOP
            IF jsonb_typeof(x -> 'expected') = 'number' THEN
                UPDATE kenpo_accounts
                   SET version = version + 1,
                       login_id = x ->> 'login_id',
                       email = x ->> 'email',
                       member = x ->> 'member',
                       data = (x ->> 'data')::jsonb
                 WHERE id = x ->> 'id' AND version = (x ->> 'expected')::bigint;
                GET DIAGNOSTICS changed = ROW_COUNT;
                IF changed <> 1 THEN
                    RAISE EXCEPTION 'kenpo: stale version' USING ERRCODE = 'KA001';
                END IF;
            ELSE
                INSERT INTO kenpo_accounts (id, version, login_id, email, member, data)
                VALUES (x ->> 'id', 1, x ->> 'login_id', x ->> 'email', x ->> 'member',
                        (x ->> 'data')::jsonb);
            END IF;
        END LOOP;
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
        WHEN unique_violation THEN
            GET STACKED DIAGNOSTICS taken = CONSTRAINT_NAME;
            RETURN CASE taken
                WHEN 'kenpo_accounts_login_id_key' THEN 'login_id_taken'
                WHEN 'kenpo_accounts_email_key' THEN 'email_taken'
                WHEN 'kenpo_accounts_member_key' THEN 'member_taken'
                ELSE 'conflict'
            END;
        WHEN SQLSTATE 'KA001' THEN
            RETURN 'conflict';
    END;
    RETURN 'committed';
END
$$;
