-- A batch's rows are read as jsonb: the array is parsed once, and each `value->>n` is a lookup.
-- Read as json, every `->>` parsed its row's text again from the start, so a row of n columns
-- was parsed n times, payload and all: the JSON lexer was the busiest code in the server under
-- load. Same estimate as `herald_rows` (migration 11), which stays for binaries not yet
-- upgraded.
CREATE FUNCTION herald_rows_jsonb(list jsonb) RETURNS TABLE (value jsonb)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE ROWS 1 AS $$ SELECT jsonb_array_elements(list) $$;
