-- Events, deliveries and attempts are partitioned by day, so retention drops a day's tables
-- whole instead of deleting their rows one by one. The partition key is the id, a ULID whose
-- first ten characters are the time it was made: events and deliveries by their own id,
-- attempts by their delivery's, so a delivery's attempts are in the same day as it. Lookups
-- by id read one partition.

-- The first ULID of a millisecond, without the prefix: `'evt_' || herald_ulid_floor(ms)`
-- bounds the events made from that millisecond on.
CREATE FUNCTION herald_ulid_floor(at_ms BIGINT) RETURNS TEXT
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT string_agg(
               substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((at_ms >> (5 * (9 - i))) & 31)::int + 1, 1),
               '' ORDER BY i)
           || '0000000000000000'
    FROM generate_series(0, 9) AS i
$$;

-- A unique index on a partitioned table must hold the partition key, so an idempotency key
-- can no longer be unique through an index on events: keys get a table of their own.
CREATE TABLE idempotency_keys (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    event_id   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_by_event ON idempotency_keys (event_id);
INSERT INTO idempotency_keys (tenant_id, key, event_id)
    SELECT tenant_id, idempotency_key, id FROM events WHERE idempotency_key IS NOT NULL;
DROP INDEX events_by_idempotency_key;

-- A partition's tables are dropped together; a foreign key between two partitioned tables
-- would make each drop check the other table row by row. herald deletes a delivery's attempts
-- itself (and an event's deliveries), as the cascades did.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_event_id_fkey;
ALTER TABLE attempts DROP CONSTRAINT attempts_delivery_id_fkey;

-- Partition bounds compare bytes ("C"), whatever the database's collation; a key's index
-- must compare the same way, so the ids (and the columns compared with them) do too.
ALTER TABLE events ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE deliveries ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE deliveries ALTER COLUMN event_id TYPE TEXT COLLATE "C";
ALTER TABLE attempts ALTER COLUMN delivery_id TYPE TEXT COLLATE "C";

-- Each table becomes a partitioned one of the same shape. Rows already there stay where they
-- are: the old table becomes the partition `<table>_before` of everything made before
-- tomorrow (UTC), which retention drops once tomorrow is older than the events it keeps; an
-- empty one (a new database) is dropped. A default partition takes ids no day holds (a clock
-- far off), so an insert never fails for want of a partition.
DO $$
DECLARE
    tomorrow BIGINT := (floor(extract(epoch FROM now()) / 86400)::bigint + 1) * 86400000;
    spec RECORD;
    keep BOOLEAN;
BEGIN
    FOR spec IN SELECT * FROM (VALUES
        ('events', 'id', 'evt_', '',
         ARRAY['PRIMARY KEY (id)',
               'FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE'],
         ARRAY['events_by_tenant ON events (tenant_id, id)',
               'events_by_age ON events (created_at)']),
        ('deliveries', 'id', 'dlv_', ' WITH (fillfactor = 50)',
         ARRAY['PRIMARY KEY (id)',
               'FOREIGN KEY (endpoint_id) REFERENCES endpoints (id) ON DELETE CASCADE'],
         ARRAY['deliveries_by_event ON deliveries (event_id)',
               'deliveries_by_endpoint ON deliveries (endpoint_id, id)',
               'deliveries_ready ON deliveries (endpoint_id, next_attempt_at) WHERE state = ''pending''',
               'deliveries_in_order ON deliveries (endpoint_id, ordering_key, seq) '
                   'WHERE state = ''pending'' AND ordering_key IS NOT NULL']),
        ('attempts', 'delivery_id', 'dlv_', '', ARRAY['PRIMARY KEY (delivery_id, started_at, id)'],
         ARRAY[]::text[])
    ) AS s (name, key, prefix, storage, constraints, indexes)
    LOOP
        EXECUTE format('ALTER TABLE %I RENAME TO %I', spec.name, spec.name || '_before');
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', spec.name || '_before') INTO keep;
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS) PARTITION BY RANGE (%I)',
                       spec.name, spec.name || '_before', spec.key);
        -- The old table's indexes make way for the parent's, which take them over on attach.
        EXECUTE format('ALTER INDEX %I RENAME TO %I', spec.name || '_pkey',
                       spec.name || '_before_pkey');
        FOR i IN 1 .. coalesce(array_length(spec.indexes, 1), 0) LOOP
            EXECUTE format('ALTER INDEX %I RENAME TO %I', split_part(spec.indexes[i], ' ', 1),
                           split_part(spec.indexes[i], ' ', 1) || '_before');
        END LOOP;
        FOR i IN 1 .. array_length(spec.constraints, 1) LOOP
            EXECUTE format('ALTER TABLE %I ADD %s', spec.name, spec.constraints[i]);
        END LOOP;
        FOR i IN 1 .. coalesce(array_length(spec.indexes, 1), 0) LOOP
            EXECUTE 'CREATE INDEX ' || spec.indexes[i];
        END LOOP;
        IF keep THEN
            EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%L)',
                           spec.name, spec.name || '_before',
                           spec.prefix || herald_ulid_floor(tomorrow));
        ELSE
            EXECUTE format('DROP TABLE %I', spec.name || '_before');
        END IF;
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', spec.name || '_default',
                       spec.name) || spec.storage;
    END LOOP;
END
$$;

-- Batches are bound as one JSON array and read as a table (see `sql!`). PostgreSQL guesses 100
-- rows for a JSON array it cannot see, and a plan it keeps for a prepared statement is made
-- without seeing it at all: with a day's partition still small by its statistics, a hundred
-- lookups by id cost more than reading the whole day, and a claim of 30 deliveries read 20,000
-- rows. These say "about one row" (a function with ROWS and STRICT is not inlined, so the
-- estimate holds): a batch is then looked up by its ids, which is right at any size.
CREATE FUNCTION herald_rows(list json) RETURNS TABLE (value json)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE ROWS 1 AS $$ SELECT json_array_elements(list) $$;
CREATE FUNCTION herald_texts(list json) RETURNS TABLE (value text)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE ROWS 1 AS $$ SELECT json_array_elements_text(list) $$;
