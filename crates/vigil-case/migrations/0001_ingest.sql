-- Devices that may send packages, with their Ed25519 public key line.
CREATE TABLE devices (
    device_id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    registered_at_us BIGINT NOT NULL
);

-- One row per verified package; the media stays on disk or object storage.
CREATE TABLE packages (
    event_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(device_id),
    camera TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    violation_type TEXT NOT NULL,
    event_at_us BIGINT NOT NULL,
    plate TEXT,
    manifest TEXT NOT NULL,
    media_path TEXT NOT NULL,
    received_at_us BIGINT NOT NULL,
    status TEXT NOT NULL,
    UNIQUE (device_id, camera, sequence)
);

-- Integrity alerts: sequence gaps, broken chains, refused packages.
CREATE TABLE alerts (
    id BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    device_id TEXT NOT NULL,
    camera TEXT,
    detail TEXT NOT NULL,
    created_at_us BIGINT NOT NULL
);
