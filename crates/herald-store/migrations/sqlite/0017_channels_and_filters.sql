-- Channels and payload filters. An event may carry channels (a JSON array of strings); an
-- endpoint may ask for channels (it then receives only events carrying one of them) and carry
-- a filter (JSON, see herald_store::filter) that an event's payload must match.
ALTER TABLE endpoints ADD COLUMN channels TEXT NOT NULL DEFAULT '[]';
ALTER TABLE endpoints ADD COLUMN filter TEXT;
ALTER TABLE events ADD COLUMN channels TEXT;
