-- kenpo-auth store schema, PostgreSQL: a commit in one statement.
--
-- PostgresStore::commit sends every write of a commit as one JSON document to
-- kenpo_commit and gets the outcome back: one round trip whatever the commit's size.
-- Hosts that run their own migration tool can apply this file as-is.
--
-- The document (built by the store; timestamps RFC 3339, rounded up to the
-- microsecond; digests lower-case hex):
--
--   { "flows":    [{ "id", "expected": <version> | null, "account_id", "purge_after",
--                    "state": "<JSON text>", "keys": ["<hex>", …] }, …],
--     "counters": [{ "key", "expected", "expires_at", "data": "<JSON text>" }, …],
--     "accounts": [{ "id", "expected", "login_id", "email", "member", "data": "<JSON text>" }, …] }
--
-- "expected" null inserts the record; a number replaces the record only if it is still
-- at that version (compare-and-set). The answer is one of 'committed', 'conflict',
-- 'login_id_taken', 'email_taken', 'member_taken'. Anything but 'committed' means the
-- inner block's exception handler undid every write of the commit. Deadlocks and
-- serialization failures are not caught: the statement fails with 40P01 or 40001 and
-- PostgreSQL rolls all of it back (the store reports a conflict).

CREATE FUNCTION kenpo_commit(w jsonb) RETURNS text
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
