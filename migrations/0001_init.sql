-- Pressluft control-plane schema.
-- Conventions: ids are UUID text; times are INTEGER unix milliseconds (UTC); booleans are
-- INTEGER 0/1 with a CHECK; every enum column has a CHECK matching the Rust enum's as_str();
-- mutable rows carry state_version, checked and bumped by every write. SQL stays portable
-- (no SQLite-only types) so the store can move to PostgreSQL later.

CREATE TABLE users (
    id              TEXT PRIMARY KEY NOT NULL,
    email           TEXT NOT NULL,
    display_name    TEXT NOT NULL DEFAULT '',
    password_hash   TEXT,               -- argon2id PHC string; NULL = no password login
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    state_version   INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX users_email ON users (email);

CREATE TABLE api_tokens (
    id              TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('session', 'api')),
    token_hash      TEXT NOT NULL,      -- hex SHA-256 of the 256-bit random secret
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER,            -- NULL = never
    last_used_at    INTEGER,
    revoked_at      INTEGER
);
CREATE UNIQUE INDEX api_tokens_hash ON api_tokens (token_hash);
CREATE INDEX api_tokens_user ON api_tokens (user_id, created_at);

CREATE TABLE nodes (
    id              TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    hostname        TEXT NOT NULL,
    ssh_port        INTEGER NOT NULL CHECK (ssh_port BETWEEN 1 AND 65535),
    ssh_user        TEXT NOT NULL,
    public_ip       TEXT NOT NULL DEFAULT '',
    is_local        INTEGER NOT NULL DEFAULT 0 CHECK (is_local IN (0, 1)),
    host_key        TEXT NOT NULL,      -- pinned OpenSSH public host key
    status          TEXT NOT NULL CHECK (status IN
                        ('pending', 'provisioning', 'active', 'unreachable', 'failed', 'decommissioned')),
    status_message  TEXT NOT NULL DEFAULT '',
    php_versions    TEXT NOT NULL DEFAULT '[]',   -- JSON array of "8.3"-style strings
    last_seen_at    INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    state_version   INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX nodes_name ON nodes (name);

CREATE TABLE sites (
    id                          TEXT PRIMARY KEY NOT NULL,
    name                        TEXT NOT NULL,
    slug                        TEXT NOT NULL,
    status                      TEXT NOT NULL CHECK (status IN
                                    ('creating', 'active', 'failed', 'deleting', 'deleted')),
    production_environment_id   TEXT,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL,
    state_version               INTEGER NOT NULL DEFAULT 1
);
-- A deleted site frees its slug.
CREATE UNIQUE INDEX sites_slug_live ON sites (slug) WHERE status <> 'deleted';

CREATE TABLE environments (
    id                      TEXT PRIMARY KEY NOT NULL,
    site_id                 TEXT NOT NULL REFERENCES sites (id),
    node_id                 TEXT NOT NULL REFERENCES nodes (id),
    name                    TEXT NOT NULL,
    kind                    TEXT NOT NULL CHECK (kind IN ('production', 'staging', 'clone')),
    status                  TEXT NOT NULL CHECK (status IN
                                ('creating', 'cloning', 'active', 'deploying', 'restoring', 'updating',
                                 'promoting', 'deleting', 'deleted', 'failed')),
    status_message          TEXT NOT NULL DEFAULT '',
    linux_user              TEXT NOT NULL,
    linux_uid               INTEGER NOT NULL CHECK (linux_uid BETWEEN 20000 AND 59999),
    db_name                 TEXT NOT NULL,
    db_user                 TEXT NOT NULL,
    db_password_enc         TEXT NOT NULL,      -- sealed with the control plane's secret key
    wp_salts_enc            TEXT NOT NULL,      -- sealed JSON of the eight WordPress keys/salts
    php_version             TEXT NOT NULL,
    preview_url             TEXT NOT NULL,
    primary_domain          TEXT NOT NULL DEFAULT '',
    current_release_id      TEXT,
    source_environment_id   TEXT REFERENCES environments (id),
    drift_status            TEXT NOT NULL DEFAULT 'unknown' CHECK (drift_status IN ('unknown', 'clean', 'drifted')),
    drift_checked_at        INTEGER,
    page_cache              INTEGER NOT NULL DEFAULT 0 CHECK (page_cache IN (0, 1)),
    object_cache            INTEGER NOT NULL DEFAULT 0 CHECK (object_cache IN (0, 1)),
    backup_enabled          INTEGER NOT NULL DEFAULT 0 CHECK (backup_enabled IN (0, 1)),
    backup_interval_secs    INTEGER NOT NULL DEFAULT 86400 CHECK (backup_interval_secs > 0),
    backup_scope            TEXT NOT NULL DEFAULT 'full' CHECK (backup_scope IN ('db', 'files', 'full')),
    backup_retention_secs   INTEGER NOT NULL DEFAULT 1209600 CHECK (backup_retention_secs > 0),
    last_backup_at          INTEGER,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    state_version           INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX environments_site_name_live ON environments (site_id, name) WHERE status <> 'deleted';
-- Linux users, UIDs and database names are unique per node among environments still present.
CREATE UNIQUE INDEX environments_node_user_live ON environments (node_id, linux_user) WHERE status <> 'deleted';
CREATE UNIQUE INDEX environments_node_uid_live ON environments (node_id, linux_uid) WHERE status <> 'deleted';
CREATE UNIQUE INDEX environments_node_db_live ON environments (node_id, db_name) WHERE status <> 'deleted';
CREATE UNIQUE INDEX environments_one_production ON environments (site_id) WHERE kind = 'production' AND status <> 'deleted';

CREATE TABLE releases (
    id              TEXT PRIMARY KEY NOT NULL,
    environment_id  TEXT NOT NULL REFERENCES environments (id),
    name            TEXT NOT NULL,              -- directory name under releases/
    source_kind     TEXT NOT NULL CHECK (source_kind IN ('wordpress', 'git', 'archive', 'upload')),
    source          TEXT NOT NULL,              -- JSON of the source parameters
    resolved_ref    TEXT NOT NULL DEFAULT '',
    health          TEXT NOT NULL DEFAULT 'unknown' CHECK (health IN ('unknown', 'healthy', 'unhealthy')),
    job_id          TEXT,
    created_at      INTEGER NOT NULL,
    activated_at    INTEGER,
    pruned_at       INTEGER
);
CREATE UNIQUE INDEX releases_env_name ON releases (environment_id, name);
CREATE INDEX releases_env_created ON releases (environment_id, created_at);

CREATE TABLE backups (
    id              TEXT PRIMARY KEY NOT NULL,
    environment_id  TEXT NOT NULL REFERENCES environments (id),
    site_id         TEXT NOT NULL REFERENCES sites (id),
    scope           TEXT NOT NULL CHECK (scope IN ('db', 'files', 'full')),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'expired')),
    trigger_kind    TEXT NOT NULL CHECK (trigger_kind IN ('manual', 'scheduled', 'pre_restore', 'pre_promote', 'pre_update')),
    object_key      TEXT NOT NULL DEFAULT '',
    size_bytes      INTEGER NOT NULL DEFAULT 0,
    sha256          TEXT NOT NULL DEFAULT '',
    job_id          TEXT,
    created_at      INTEGER NOT NULL,
    completed_at    INTEGER,
    expires_at      INTEGER,
    state_version   INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX backups_env_created ON backups (environment_id, created_at);
CREATE INDEX backups_expiry ON backups (status, expires_at);

CREATE TABLE domains (
    id              TEXT PRIMARY KEY NOT NULL,
    environment_id  TEXT NOT NULL REFERENCES environments (id),
    hostname        TEXT NOT NULL,
    is_primary      INTEGER NOT NULL DEFAULT 0 CHECK (is_primary IN (0, 1)),
    tls_status      TEXT NOT NULL DEFAULT 'pending' CHECK (tls_status IN ('pending', 'active', 'failed', 'disabled')),
    tls_expires_at  INTEGER,
    tls_message     TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    removed_at      INTEGER,
    state_version   INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX domains_hostname_live ON domains (hostname) WHERE removed_at IS NULL;

CREATE TABLE drift_reports (
    id              TEXT PRIMARY KEY NOT NULL,
    environment_id  TEXT NOT NULL REFERENCES environments (id),
    status          TEXT NOT NULL CHECK (status IN ('unknown', 'clean', 'drifted')),
    items           TEXT NOT NULL DEFAULT '[]',   -- JSON array of {category, name, detail}
    job_id          TEXT,
    checked_at      INTEGER NOT NULL
);
CREATE INDEX drift_reports_env ON drift_reports (environment_id, checked_at);

-- What production looked like when a staging environment was cloned from it (or promoted into
-- it): the fingerprint later drift checks compare with.
CREATE TABLE drift_baselines (
    id                     TEXT PRIMARY KEY NOT NULL,
    environment_id         TEXT NOT NULL REFERENCES environments (id),  -- the staging environment
    source_environment_id  TEXT NOT NULL REFERENCES environments (id),  -- production
    fingerprint            TEXT NOT NULL,                               -- JSON
    job_id                 TEXT,
    recorded_at            INTEGER NOT NULL
);
CREATE INDEX drift_baselines_source ON drift_baselines (source_environment_id, recorded_at);

CREATE TABLE jobs (
    id                  TEXT PRIMARY KEY NOT NULL,
    kind                TEXT NOT NULL CHECK (kind IN
                            ('node_provision', 'site_create', 'site_delete', 'env_create', 'env_delete',
                             'env_deploy', 'env_update', 'release_rollback', 'health_check',
                             'backup_create', 'backup_cleanup', 'env_restore', 'drift_check',
                             'env_promote', 'domain_add', 'domain_remove', 'env_cache_toggle',
                             'cache_purge', 'site_import')),
    status              TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    -- 'site' jobs are serialised per site; 'node' jobs are exclusive with every job on the node.
    scope               TEXT NOT NULL CHECK (scope IN ('site', 'node')),
    site_id             TEXT REFERENCES sites (id),
    environment_id      TEXT REFERENCES environments (id),
    node_id             TEXT NOT NULL REFERENCES nodes (id),
    summary             TEXT NOT NULL DEFAULT '',
    params              TEXT NOT NULL DEFAULT '{}',   -- JSON; never secrets (those are sealed elsewhere)
    attempts            INTEGER NOT NULL DEFAULT 0,
    max_attempts        INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    priority            INTEGER NOT NULL DEFAULT 100,
    run_after           INTEGER NOT NULL,
    timeout_secs        INTEGER NOT NULL DEFAULT 1800 CHECK (timeout_secs > 0),
    lease_owner         TEXT,
    heartbeat_at        INTEGER,
    lease_expires_at    INTEGER,
    runner_pid          INTEGER,            -- process group of the running playbook (crash clean-up)
    cancel_requested    INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    progress_current    INTEGER NOT NULL DEFAULT 0,
    progress_total      INTEGER NOT NULL DEFAULT 0,
    progress_step       TEXT NOT NULL DEFAULT '',
    error_code          TEXT NOT NULL DEFAULT '',
    error_message       TEXT NOT NULL DEFAULT '',
    requested_by        TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    started_at          INTEGER,
    finished_at         INTEGER,
    updated_at          INTEGER NOT NULL,
    state_version       INTEGER NOT NULL DEFAULT 1,
    CHECK (scope = 'node' OR site_id IS NOT NULL)
);
CREATE INDEX jobs_queue ON jobs (status, priority, run_after);
CREATE INDEX jobs_site_status ON jobs (site_id, status);
CREATE INDEX jobs_node_status ON jobs (node_id, status);
CREATE INDEX jobs_env ON jobs (environment_id, created_at);
CREATE INDEX jobs_created ON jobs (created_at, id);

CREATE TABLE job_events (
    job_id      TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('state', 'step', 'log')),
    payload     TEXT NOT NULL,          -- JSON, already redacted
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              INTEGER NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    resource_type   TEXT NOT NULL,
    resource_id     TEXT NOT NULL DEFAULT '',
    result          TEXT NOT NULL CHECK (result IN ('accepted', 'succeeded', 'failed', 'denied')),
    detail          TEXT NOT NULL DEFAULT '',
    job_id          TEXT
);
CREATE INDEX audit_log_resource ON audit_log (resource_type, resource_id, id);

-- One row (id = 1) of typed control-plane settings.
CREATE TABLE settings (
    id                      INTEGER PRIMARY KEY CHECK (id = 1),
    preview_domain          TEXT NOT NULL DEFAULT '',
    default_node_id         TEXT REFERENCES nodes (id),
    default_php_version     TEXT NOT NULL DEFAULT '8.3',
    releases_to_keep        INTEGER NOT NULL DEFAULT 5 CHECK (releases_to_keep BETWEEN 1 AND 50),
    s3_endpoint             TEXT NOT NULL DEFAULT '',
    s3_bucket               TEXT NOT NULL DEFAULT '',
    s3_region               TEXT NOT NULL DEFAULT '',
    s3_prefix               TEXT NOT NULL DEFAULT '',
    s3_access_key_id        TEXT NOT NULL DEFAULT '',
    s3_secret_enc           TEXT NOT NULL DEFAULT '',
    s3_verified_at          INTEGER,
    updated_at              INTEGER NOT NULL DEFAULT 0,
    state_version           INTEGER NOT NULL DEFAULT 1
);
INSERT INTO settings (id) VALUES (1);
