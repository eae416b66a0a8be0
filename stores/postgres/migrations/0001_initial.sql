-- moat/postgres schema, version 1: every durable store and the kv table.
-- Applied by Migrate inside one transaction; never edit a released
-- migration, add a new file instead.

-- auth.ClientStore: the id as a column, the whole *auth.Client as JSON.
CREATE TABLE clients (
    client_id  text PRIMARY KEY,
    record     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- device.Store. Ids sort bytewise (COLLATE "C"), as the memory store
-- sorts them.
CREATE TABLE devices (
    id                 text COLLATE "C" PRIMARY KEY,
    status             text NOT NULL CHECK (status IN ('active', 'lost', 'stolen', 'disabled')),
    platform           text NOT NULL DEFAULT '',
    model              text NOT NULL DEFAULT '',
    os_version         text NOT NULL DEFAULT '',
    display_name       text NOT NULL DEFAULT '',
    -- strings.ToLower(display_name), computed by Go so that search
    -- ignores case exactly as the memory store does, whatever the
    -- database's locale.
    display_name_lower text NOT NULL DEFAULT '',
    users              text[] NOT NULL DEFAULT '{}',
    first_seen         timestamptz NOT NULL,
    last_seen          timestamptz NOT NULL
);
CREATE INDEX devices_users ON devices USING gin (users);
CREATE INDEX devices_status ON devices (status, id);

CREATE TABLE device_apps (
    device_id   text COLLATE "C" NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    app_id      text COLLATE "C" NOT NULL,
    app_version text NOT NULL DEFAULT '',
    status      text NOT NULL CHECK (status IN ('active', 'disabled')),
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    PRIMARY KEY (device_id, app_id)
);
CREATE INDEX device_apps_app ON device_apps (app_id, device_id);

CREATE TABLE version_policies (
    app_id   text COLLATE "C" NOT NULL,
    platform text COLLATE "C" NOT NULL,
    policy   jsonb NOT NULL,
    PRIMARY KEY (app_id, platform)
);

CREATE TABLE device_audit (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action      text NOT NULL,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    reason      text NOT NULL,
    device_id   text NOT NULL DEFAULT '',
    app_id      text NOT NULL DEFAULT '',
    platform    text NOT NULL DEFAULT '',
    from_status text NOT NULL DEFAULT '',
    to_status   text NOT NULL DEFAULT '',
    policy      jsonb
);
CREATE INDEX device_audit_device ON device_audit (device_id, seq);
CREATE INDEX device_audit_app ON device_audit (app_id, seq);

-- stepup stores.
CREATE TABLE otp_enrollments (
    subject       text NOT NULL,
    kind          text NOT NULL,
    id            text NOT NULL,
    sealed_secret bytea,
    algorithm     text NOT NULL,
    digits        integer NOT NULL,
    period        integer NOT NULL,
    counter       bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (subject, kind)
);

CREATE TABLE pins (
    device_id  text PRIMARY KEY,
    subject    text NOT NULL,
    hash       text NOT NULL,
    created_at timestamptz NOT NULL
);

-- One row per subject: its remaining code digests. Use removes one digest
-- with a single conditional UPDATE.
CREATE TABLE recovery_codes (
    subject text PRIMARY KEY,
    digests bytea[] NOT NULL
);

CREATE TABLE device_keys (
    client_id  text PRIMARY KEY,
    subject    text NOT NULL,
    public_key bytea, -- PKIX DER
    biometry   text NOT NULL,
    created_at timestamptz NOT NULL
);

-- attest.KeyStore: App Attest keys, receipts and counters.
CREATE TABLE attest_keys (
    key_id         bytea PRIMARY KEY,
    public_key     bytea,
    counter        bigint NOT NULL CHECK (counter BETWEEN 0 AND 4294967295),
    receipt        bytea,
    app_id         text NOT NULL,
    environment    text NOT NULL,
    key_thumbprint text NOT NULL,
    created_at     timestamptz NOT NULL
);

-- update.Store. A publish stages its bundles as chunks of one upload;
-- Commit inserts the release and bundle rows in one transaction, after
-- moving the channel's latest version forward (the row lock serializes
-- commits of one app and platform).
CREATE TABLE update_channels (
    app      text NOT NULL,
    platform text NOT NULL,
    latest   bigint NOT NULL,
    PRIMARY KEY (app, platform)
);

CREATE TABLE update_uploads (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app        text NOT NULL,
    platform   text NOT NULL,
    version    bigint NOT NULL,
    committed  boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX update_uploads_staged ON update_uploads (created_at) WHERE NOT committed;

CREATE TABLE update_chunks (
    upload_id    bigint NOT NULL REFERENCES update_uploads (id) ON DELETE CASCADE,
    from_version bigint NOT NULL,
    n            integer NOT NULL,
    data         bytea NOT NULL,
    PRIMARY KEY (upload_id, from_version, n)
);

CREATE TABLE update_releases (
    app          text NOT NULL,
    platform     text NOT NULL,
    version      bigint NOT NULL,
    upload_id    bigint NOT NULL REFERENCES update_uploads (id),
    app_versions text NOT NULL,
    mandatory    boolean NOT NULL,
    created      timestamptz NOT NULL,
    expires      timestamptz NOT NULL,
    manifest     bytea NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app, platform, version)
);

CREATE TABLE update_bundles (
    app          text NOT NULL,
    platform     text NOT NULL,
    version      bigint NOT NULL,
    from_version bigint NOT NULL,
    size         bigint NOT NULL,
    etag         text NOT NULL,
    chunk_size   integer NOT NULL,
    PRIMARY KEY (app, platform, version, from_version),
    FOREIGN KEY (app, platform, version) REFERENCES update_releases (app, platform, version)
);

-- kv.Store: shared expiring state. UNLOGGED: not written to the WAL, so
-- fast, but emptied after a crash and absent on replicas. The version
-- sequence is logged, so versions are never reused, even after a crash.
CREATE SEQUENCE kv_version_seq;

CREATE UNLOGGED TABLE kv_entries (
    key        bytea PRIMARY KEY,
    value      bytea NOT NULL,
    version    bigint NOT NULL,
    expires_at timestamptz NOT NULL
);

-- kv_counter reads a value as Increment does: a decimal integer (with an
-- optional sign), or NULL for anything else. The escape encoding leaves
-- ASCII digits and signs as they are and turns every other byte into
-- something the pattern refuses.
CREATE FUNCTION kv_counter(v bytea) RETURNS numeric
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
        SELECT CASE WHEN octet_length(v) <= 1000 AND encode(v, 'escape') ~ '^[+-]?[0-9]+$'
                    THEN encode(v, 'escape')::numeric END
    $$;
