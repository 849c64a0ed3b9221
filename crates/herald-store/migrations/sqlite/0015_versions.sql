-- Versioned webhooks. An endpoint pins a version (a date) and receives, of each versioned
-- webhook, the newest version on or before it. An event keeps the version of its payload and
-- the payload converted to older versions ({"2026-01-01": "<json>"}), so a retry or a replay
-- sends the same bytes.
ALTER TABLE endpoints ADD COLUMN version TEXT;
ALTER TABLE events ADD COLUMN version TEXT;
ALTER TABLE events ADD COLUMN versions TEXT;
