-- permetrix schema version 1. Text keys use the "C" collation: byte order, as the
-- sled store's keys and the Store trait's reads promise.

-- One row per broker registration (a restarted broker is a new node). Its lease is on
-- the database clock: other brokers may take its tenants once lease_until has passed.
CREATE TABLE brokers (
    node        text COLLATE "C" PRIMARY KEY,
    machine_id  text,
    address     text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz NOT NULL
);

-- Who owns each tenant, under which epoch. The epoch only grows (by one on every
-- acquisition); every write batch touches its tenants' rows here first (the fence).
CREATE TABLE tenant_owner (
    tenant text COLLATE "C" PRIMARY KEY,
    owner  text COLLATE "C",
    epoch  bigint NOT NULL CHECK (epoch >= 0)
);
CREATE INDEX tenant_owner_by_owner ON tenant_owner (owner) WHERE owner IS NOT NULL;

-- Tenant records that a later write replaces (packages, leases, settings, …): the
-- encoded record (storage/src/records.rs) under (tenant, kind byte, id bytes).
CREATE TABLE tenant_records (
    tenant text COLLATE "C" NOT NULL,
    kind   "char" NOT NULL,
    id     bytea NOT NULL,
    value  bytea NOT NULL,
    PRIMARY KEY (tenant, kind, id)
);

-- Append-only tenant records (the overage ledger by sequence number, the usage
-- history by pool, time and sequence number): inserted once, never rewritten. A second
-- insert of the same key is a fork and fails.
CREATE TABLE tenant_log (
    tenant text COLLATE "C" NOT NULL,
    kind   "char" NOT NULL,
    id     bytea NOT NULL,
    value  bytea NOT NULL,
    PRIMARY KEY (tenant, kind, id)
);

CREATE FUNCTION permetrix_tenant_log_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'tenant_log is append-only: record % of tenant % cannot be rewritten',
        NEW.kind, NEW.tenant;
END
$$;
CREATE TRIGGER tenant_log_append_only BEFORE UPDATE ON tenant_log
    FOR EACH ROW EXECUTE FUNCTION permetrix_tenant_log_is_append_only();

-- Platform records (vendors, tenants, API keys, users, sessions, …): encoded records
-- under (table name, scope, id); scope is '' in tables that have none.
CREATE TABLE platform (
    tbl   text COLLATE "C" NOT NULL,
    scope text COLLATE "C" NOT NULL,
    id    text COLLATE "C" NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (tbl, scope, id)
);

-- Raised by every platform write: brokers refresh their read copies when it moves.
CREATE TABLE platform_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   bigint NOT NULL
);
INSERT INTO platform_version (version) VALUES (0);
