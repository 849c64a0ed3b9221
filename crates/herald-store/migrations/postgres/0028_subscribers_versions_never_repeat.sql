-- A tenant's version of its subscribers (migration 27) is drawn from one sequence for every
-- tenant, from its creation on, where it started at 0 and counted up: a tenant deleted (an
-- operator's DELETE; herald has no call for it) and made again under the same id went through
-- the same numbers, so a process that kept the subscribers of its first life accepted its
-- events for endpoints deleted with it (crates/herald-store/src/sql/subscribers.rs). Drawn
-- from the sequence, no version is ever given twice, whatever happens to a tenant.
CREATE SEQUENCE herald_subscribers_versions;
SELECT setval('herald_subscribers_versions', coalesce(max(subscribers), 0) + 1) FROM tenants;
ALTER TABLE tenants ALTER COLUMN subscribers SET DEFAULT nextval('herald_subscribers_versions');

CREATE OR REPLACE FUNCTION herald_subscribers_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE tenants SET subscribers = nextval('herald_subscribers_versions')
        WHERE id = OLD.tenant_id;
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id) THEN
        UPDATE tenants SET subscribers = nextval('herald_subscribers_versions')
        WHERE id = NEW.tenant_id;
    END IF;
    RETURN NULL;
END
$$;
