-- The tenant whose endpoints receive herald's operational webhooks (endpoint disabled,
-- failing, recovered; delivery dead; replay finished) for every tenant of the installation.
-- Ids starting with `_` cannot be created through the API, so it is nobody's but the admin's.
INSERT INTO tenants (id, created_at) VALUES ('_operator', CAST(strftime('%s', 'now') AS INTEGER) * 1000) ON CONFLICT DO NOTHING;
