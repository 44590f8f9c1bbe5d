-- kenpo-auth store schema, PostgreSQL: what a stored flow holds (SEC-45).
--
-- This corrects 0001's header, which said the JSON columns hold "only digests, counters
-- and timestamps". They also hold what a journey must read back in plain form:
--
--   * kenpo_flows.state of a registration that has not yet created its account keeps
--     the address typed at R1 (link 2 is mailed to it at R3, and R5 gives it to the
--     account) and, from R3 on, the roster's member ID (R5 creates the account for it).
--     A member ID is the insurer's opaque identifier, never the 記号・番号・枝番.
--   * kenpo_flows.state of a pending address change keeps the new address (the change
--     is confirmed to it and then gives it to the account).
--   * kenpo_accounts keeps the account's address (every mail goes to it) and member ID.
--
-- Everything else is keyed digests (links, handles, 認証キー, 暗証キー; the counter keys
-- of addresses, typed login IDs, card numbers and requesters), the pseudonymous account
-- and member IDs (in counter keys too), counters and timestamps. A flow that has ended keeps neither the address nor the
-- member ID, and every flow is deleted at purge_after. The card number and birth date
-- typed at R3 or at a reset are compared with the roster and never stored.

COMMENT ON COLUMN kenpo_flows.state IS
    'The flow''s state (JSON). Holds digests, counters and timestamps, and - only while '
    'a registration or an address change still needs them - the address and the roster '
    'member ID (SEC-45; see migration 0003).';
COMMENT ON COLUMN kenpo_accounts.data IS
    'The account (JSON): login ID, address, roster member ID, Argon2id PHC hash, '
    'security stamp, failure counts. No card number or birth date (SEC-45).';
