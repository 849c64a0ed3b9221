-- A batch's rows (migration 19) and a list's texts (migration 11) are read by PL/pgSQL
-- functions, where they were SQL functions: a SQL function that is not inlined (these are not,
-- so that the planner takes them for one row) has its body parsed and planned on every call,
-- and statements call them for every batch, and the read of subscribers once for each
-- endpoint. PL/pgSQL plans its query once per connection. Under load through the HTTP API
-- that planning was 136 ms in 60,000 deliveries (`pg_stat_statements`, docs/scaling.md). The
-- row estimate, the strictness and the results are unchanged.
CREATE OR REPLACE FUNCTION herald_rows_jsonb(list jsonb) RETURNS TABLE (value jsonb)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE ROWS 1 AS $$
BEGIN
    RETURN QUERY SELECT jsonb_array_elements(list);
END
$$;

CREATE OR REPLACE FUNCTION herald_texts(list json) RETURNS TABLE (value text)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE ROWS 1 AS $$
BEGIN
    RETURN QUERY SELECT json_array_elements_text(list);
END
$$;
