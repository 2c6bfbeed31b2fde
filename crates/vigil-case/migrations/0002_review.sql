-- Review state of each package (one package = one case).
-- status: new | confirmed | dismissal_pending | downgrade_pending |
--         dismissed | downgraded. Nothing is ever deleted.
ALTER TABLE packages ADD COLUMN current_type TEXT;
ALTER TABLE packages ADD COLUMN reviewed_plate TEXT;
ALTER TABLE packages ADD COLUMN plate_colour TEXT;
ALTER TABLE packages ADD COLUMN agency_flag BIGINT NOT NULL DEFAULT 0;
ALTER TABLE packages ADD COLUMN agency_notified_by TEXT;
ALTER TABLE packages ADD COLUMN assigned_to TEXT;
ALTER TABLE packages ADD COLUMN clock_sync TEXT;
ALTER TABLE packages ADD COLUMN signal_conflict BIGINT NOT NULL DEFAULT 0;
ALTER TABLE packages ADD COLUMN place TEXT;
-- The plate's letters and digits only, upper case, for the public lookup.
ALTER TABLE packages ADD COLUMN plate_key TEXT;
UPDATE packages SET current_type = violation_type, reviewed_plate = plate;

CREATE INDEX packages_status ON packages (status, event_at_us);
CREATE INDEX packages_plate ON packages (plate_key);

-- Operators, supervisors, auditors, admins. Passwords are argon2id PHC strings.
CREATE TABLE users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    active BIGINT NOT NULL DEFAULT 1,
    created_at_us BIGINT NOT NULL
);

-- Login sessions; only the SHA-256 of the cookie's token is stored.
CREATE TABLE sessions (
    token_sha256 TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users(username),
    csrf_token TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT NOT NULL
);

-- Every plate correction, oldest first.
CREATE TABLE plate_edits (
    id BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES packages(event_id),
    old_plate TEXT,
    new_plate TEXT NOT NULL,
    edited_by TEXT NOT NULL,
    edited_at_us BIGINT NOT NULL
);

-- Decisions. A dismissal or downgrade waits for a different supervisor:
-- approval is NULL until then, 'approved' or 'rejected' after.
CREATE TABLE decisions (
    id BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES packages(event_id),
    kind TEXT NOT NULL,
    reason_code TEXT,
    reason_text TEXT,
    from_type TEXT NOT NULL,
    to_type TEXT,
    decided_by TEXT NOT NULL,
    decided_at_us BIGINT NOT NULL,
    approval TEXT,
    approved_by TEXT,
    approved_at_us BIGINT,
    approval_note TEXT
);
CREATE INDEX decisions_event ON decisions (event_id);

-- The hash-chained audit log: hash = SHA-256 of the canonical JSON of the
-- row's other fields, prev_hash included. `vigil case audit verify` checks it.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at_us BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_target ON audit_log (target);
