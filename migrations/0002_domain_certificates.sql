-- Domains: the www/apex counterparts a certificate also covers (they redirect to the domain),
-- and when the node's certificate state was last read (the periodic certificate check).
ALTER TABLE domains ADD COLUMN aliases TEXT NOT NULL DEFAULT '[]';   -- JSON array of hostnames
ALTER TABLE domains ADD COLUMN tls_checked_at INTEGER;
CREATE INDEX domains_env_live ON domains (environment_id) WHERE removed_at IS NULL;
