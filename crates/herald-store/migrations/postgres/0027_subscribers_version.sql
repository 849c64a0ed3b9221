-- A tenant's subscribers (its endpoints, as accepting an event reads them) have a version, moved
-- on by every change to them, so that a process can keep the subscribers it read and accept a
-- batch of events with one statement, not two: the statement checks that the versions it read
-- them at are still the tenants' (`herald_subscribers_are`), and fails without writing
-- anything if one is not; the process then reads them again (crates/herald-store/src/sql/
-- subscribers.rs). Each statement is a transaction, and the read before the write was one of
-- every two an accepted batch cost (docs/scaling.md).
ALTER TABLE tenants ADD COLUMN subscribers BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION herald_subscribers_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE tenants SET subscribers = subscribers + 1 WHERE id = OLD.tenant_id;
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id) THEN
        UPDATE tenants SET subscribers = subscribers + 1 WHERE id = NEW.tenant_id;
    END IF;
    RETURN NULL;
END
$$;

-- What accepting reads of an endpoint: `SUBSCRIBED` in crates/herald-store/src/sql/accept.rs.
CREATE TRIGGER endpoints_subscribers
AFTER INSERT OR DELETE OR UPDATE OF tenant_id, event_types, enabled, channels, filter, version
ON endpoints FOR EACH ROW EXECUTE FUNCTION herald_subscribers_changed();

-- True if each `[tenant, version]` of `expected` is that tenant's version of its subscribers;
-- otherwise an error (SQLSTATE HR001) that fails the statement calling it, whatever it wrote.
-- STABLE, so it reads through the calling statement's snapshot, the one its writes are made in.
CREATE FUNCTION herald_subscribers_are(expected json) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM json_array_elements(expected) AS k
        LEFT JOIN tenants t ON t.id = k.value->>0
        WHERE t.subscribers IS DISTINCT FROM CAST(k.value->>1 AS BIGINT)
    ) THEN
        RAISE EXCEPTION 'the subscribers read are out of date' USING ERRCODE = 'HR001';
    END IF;
    RETURN true;
END
$$;
