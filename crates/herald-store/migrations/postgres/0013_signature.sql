-- How an endpoint's deliveries are signed: `hmac` (`v1`, with `whsec_` secrets), `ed25519`
-- (`v1a`, with `whsk_` keys kept in endpoint_secrets beside the secrets) or `both`. Every
-- endpoint so far signed with HMAC.
ALTER TABLE endpoints ADD COLUMN signature TEXT NOT NULL DEFAULT 'hmac'
    CHECK (signature IN ('hmac', 'ed25519', 'both'));
