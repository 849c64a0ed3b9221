-- An endpoint's event types as a JSON array of names, as SQLite keeps them, so that both
-- databases run the same queries over them.
ALTER TABLE endpoints ALTER COLUMN event_types TYPE TEXT USING array_to_json(event_types)::text;
