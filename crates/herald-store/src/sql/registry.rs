//! Tenants, endpoints and their secrets, credentials and server keys.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Pool;

use super::rows::{EndpointRow, endpoint_columns, event_types_to_json, headers_to_json};
use super::{Backend, Run, Sql, SqlStore, hours, json_rows, query, sql, turns};
use crate::error::classify;
use crate::{
    Clocked, Endpoint, EndpointPatch, EndpointSecret, Error, ErrorKind, KeyKind, NewEndpoint,
    NewToken, Registry, Signature, SignatureChange, Tenant, Token, millis, new_id,
};

#[async_trait]
impl<DB: Backend> Registry for SqlStore<DB> {
    async fn create_tenant(&self, id: &str) -> Result<Tenant, Error> {
        let now = self.now();
        query("INSERT INTO tenants (id, created_at) VALUES ($1, $2)")
            .bind(id)
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(|e| classify(e, &format!("tenant `{id}`")))?;
        Ok(Tenant {
            id: id.into(),
            created_at: now,
        })
    }

    async fn tenants(&self, after: Option<&str>, limit: u32) -> Result<Vec<Tenant>, Error> {
        query(
            "SELECT id, created_at FROM tenants WHERE ($1 IS NULL OR id > $1) \
             ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
    }

    async fn tenant(&self, id: &str) -> Result<Option<Tenant>, Error> {
        query("SELECT id, created_at FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await
    }

    async fn create_endpoint(&self, new: NewEndpoint) -> Result<Endpoint, Error> {
        let id = new_id("ep");
        let now = self.now();
        let mut tx = self.writer.begin().await?;
        if let Some(max) = self.max_endpoints {
            room_for_an_endpoint::<DB>(&mut *tx, &new.tenant_id, max).await?;
        }
        query(
            "INSERT INTO endpoints (id, tenant_id, url, description, event_types, headers, \
             enabled, rate_limit, signature, created_at, updated_at, version, channels, filter) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $10, $9, $9, $11, $12, $13)",
        )
        .bind(&id)
        .bind(&new.tenant_id)
        .bind(&new.url)
        .bind(&new.description)
        .bind(event_types_to_json(&new.event_types))
        .bind(headers_to_json(&new.headers))
        .bind(new.enabled)
        .bind(new.rate_limit)
        .bind(now)
        .bind(new.signature.as_str())
        .bind(&new.version)
        .bind(event_types_to_json(&new.channels))
        .bind(&new.filter)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, &format!("tenant `{}`", new.tenant_id)))?;
        query("INSERT INTO endpoint_queues (endpoint_id) VALUES ($1)")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        for key in &new.keys {
            query(
                "INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) \
                 VALUES ($1, $2, $3)",
            )
            .bind(&id)
            .bind(key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Endpoint {
            id,
            tenant_id: new.tenant_id,
            url: new.url,
            description: new.description,
            event_types: new.event_types,
            headers: new.headers,
            enabled: new.enabled,
            disabled_reason: None,
            failing_since: None,
            rate_limit: new.rate_limit,
            signature: new.signature,
            created_at: now,
            version: new.version,
            channels: new.channels,
            filter: new.filter,
            circuit_open_until: None,
        })
    }

    async fn endpoint(&self, tenant_id: &str, id: &str) -> Result<Option<Endpoint>, Error> {
        let row: Option<EndpointRow> = query(concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM endpoints WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        let now = self.now();
        row.map(|row| Endpoint::try_from(row).map(|e| open_now(e, now)))
            .transpose()
    }

    async fn endpoints(
        &self,
        tenant_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Endpoint>, Error> {
        let rows: Vec<EndpointRow> = query(concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM endpoints WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) \
             ORDER BY id LIMIT $3"
        ))
        .bind(tenant_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        let now = self.now();
        rows.into_iter()
            .map(|row| Endpoint::try_from(row).map(|e| open_now(e, now)))
            .collect()
    }

    async fn update_endpoint(
        &self,
        tenant_id: &str,
        id: &str,
        patch: EndpointPatch,
    ) -> Result<Option<Endpoint>, Error> {
        let now = self.now();
        let mut tx = self.writer.begin().await?;
        let row: Option<EndpointRow> = query(concat!(
            "UPDATE endpoints SET url = coalesce($1, url), \
             description = coalesce($2, description), \
             event_types = coalesce($3, event_types), headers = coalesce($4, headers), \
             enabled = coalesce($5, enabled), \
             disabled_reason = CASE WHEN $5 IS NULL THEN disabled_reason \
               WHEN $5 THEN NULL ELSE 'disabled through the API' END, \
             failing_since = CASE WHEN $5 THEN NULL ELSE failing_since END, \
             rate_limit = CASE WHEN $9 THEN $10 ELSE rate_limit END, \
             signature = coalesce($11, signature), \
             version = CASE WHEN $12 THEN $13 ELSE version END, \
             channels = coalesce($14, channels), \
             filter = CASE WHEN $15 THEN $16 ELSE filter END, \
             updated_at = $6 WHERE tenant_id = $7 AND id = $8 RETURNING ",
            endpoint_columns!()
        ))
        .bind(&patch.url)
        .bind(&patch.description)
        .bind(patch.event_types.as_deref().map(event_types_to_json))
        .bind(patch.headers.as_ref().map(headers_to_json))
        .bind(patch.enabled)
        .bind(now)
        .bind(tenant_id)
        .bind(id)
        .bind(patch.rate_limit.is_some())
        .bind(patch.rate_limit.flatten())
        .bind(
            patch
                .signature
                .as_ref()
                .map(|change| change.signature.as_str()),
        )
        .bind(patch.version.is_some())
        .bind(&patch.version)
        .bind(patch.channels.as_deref().map(event_types_to_json))
        .bind(patch.filter.is_some())
        .bind(patch.filter.clone().flatten())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        if let Some(change) = &patch.signature {
            change_keys::<DB>(&mut tx, id, change, now).await?;
        }
        if patch.enabled == Some(false) {
            turns::skip_pending::<DB>(&mut *tx, id, now).await?;
        }
        if patch.enabled == Some(true) {
            // A failing streak ended by hand: its circuit closes too.
            query(
                "UPDATE endpoint_queues SET failures = 0, open_until = NULL, \
                 last_failure_at = NULL WHERE endpoint_id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let endpoint = Endpoint::try_from(row)?;
        if patch.deliver_skipped && endpoint.enabled {
            turns::deliver_skipped::<DB>(&mut *tx, id, now).await?;
        }
        tx.commit().await?;
        if patch.deliver_skipped && endpoint.enabled {
            self.wake();
        }
        let mut endpoint = open_now(endpoint, now);
        if patch.enabled == Some(true) {
            endpoint.circuit_open_until = None; // closed above, after the row was read
        }
        Ok(Some(endpoint))
    }

    async fn delete_endpoint(&self, tenant_id: &str, id: &str) -> Result<bool, Error> {
        // A claim serving the endpoint holds its queue row and then leases deliveries, the
        // other way round from this delete: PostgreSQL ends such a deadlock by failing one of
        // them, and when that is the delete, it goes again once the claim is through.
        let mut tries = 1;
        loop {
            match delete_endpoint::<DB>(&self.writer, tenant_id, id).await {
                Err(error) if error.deadlocked() && tries < 3 => tries += 1,
                done => return done,
            }
        }
    }

    async fn secrets(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<Vec<EndpointSecret>>, Error> {
        if self.endpoint(tenant_id, id).await?.is_none() {
            return Ok(None);
        }
        let secrets = query(
            "SELECT secret, created_at, expires_at FROM endpoint_secrets \
             WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > $2) \
             ORDER BY expires_at IS NULL DESC, created_at DESC",
        )
        .bind(id)
        .bind(self.now())
        .fetch_all(&self.reader)
        .await?;
        Ok(Some(secrets))
    }

    async fn rotate_secret(
        &self,
        tenant_id: &str,
        id: &str,
        secret: &str,
        keep_old: Duration,
    ) -> Result<Option<Signature>, Error> {
        let now = self.now();
        let kind = KeyKind::of(secret);
        let mut tx = self.writer.begin().await?;
        // Locked, so a change of signature cannot slip in between.
        const FIND: Sql =
            sql!("SELECT signature FROM endpoints WHERE tenant_id = $1 AND id = $2"[lock]);
        let found: Option<(String,)> = query(FIND)
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((signature,)) = found else {
            return Ok(None);
        };
        let signature = Signature::named(&signature)
            .ok_or_else(|| Error::corrupt("signature", format!("`{signature}`")))?;
        if !signature.uses(kind) {
            return Ok(Some(signature));
        }
        // The keys of its kind keep signing for a while; one already due to expire sooner
        // keeps its earlier end.
        query(
            "UPDATE endpoint_secrets SET expires_at = $1 WHERE endpoint_id = $2 \
             AND (substr(secret, 1, 5) = 'whsk_') = $3 \
             AND (expires_at IS NULL OR expires_at > $1)",
        )
        .bind(now + millis(keep_old))
        .bind(id)
        .bind(kind == KeyKind::Ed25519)
        .execute(&mut *tx)
        .await?;
        query("INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(secret)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(signature))
    }

    async fn tenant_signing_keys(&self, tenant_id: &str) -> Result<Vec<EndpointSecret>, Error> {
        query(
            "SELECT s.secret, s.created_at, s.expires_at FROM endpoint_secrets s \
             JOIN endpoints p ON p.id = s.endpoint_id \
             WHERE p.tenant_id = $1 AND substr(s.secret, 1, 5) = 'whsk_' \
               AND (s.expires_at IS NULL OR s.expires_at > $2) \
             ORDER BY s.created_at, s.secret",
        )
        .bind(tenant_id)
        .bind(self.now())
        .fetch_all(&self.reader)
        .await
    }

    async fn create_token(&self, new: NewToken) -> Result<Token, Error> {
        let id = new_id("tok");
        let now = self.now();
        query(
            "INSERT INTO tokens (id, tenant_id, name, prefix, hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(&new.tenant_id)
        .bind(&new.name)
        .bind(&new.prefix)
        .bind(&new.hash)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(|e| {
            classify(
                e,
                &format!("tenant `{}`", new.tenant_id.as_deref().unwrap_or("")),
            )
        })?;
        Ok(Token {
            id,
            tenant_id: new.tenant_id,
            name: new.name,
            prefix: new.prefix,
            created_at: now,
            revoked_at: None,
        })
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<Token>, Error> {
        query(
            "SELECT id, tenant_id, name, prefix, created_at, revoked_at FROM tokens \
             WHERE hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.reader)
        .await
    }

    async fn tokens(&self, tenant_id: Option<&str>) -> Result<Vec<Token>, Error> {
        query(
            "SELECT id, tenant_id, name, prefix, created_at, revoked_at FROM tokens \
             WHERE tenant_id IS NOT DISTINCT FROM $1 ORDER BY created_at, id",
        )
        .bind(tenant_id)
        .fetch_all(&self.reader)
        .await
    }

    async fn revoke_token(&self, tenant_id: Option<&str>, id: &str) -> Result<bool, Error> {
        let revoked = query(
            "UPDATE tokens SET revoked_at = $1 WHERE id = $2 \
             AND tenant_id IS NOT DISTINCT FROM $3 AND revoked_at IS NULL",
        )
        .bind(self.now())
        .bind(id)
        .bind(tenant_id)
        .execute(&self.writer)
        .await?;
        Ok(revoked == 1)
    }

    async fn server_key(&self, name: &str, candidate: &str) -> Result<String, Error> {
        query("INSERT INTO server_keys (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(name)
            .bind(candidate)
            .execute(&self.writer)
            .await?;
        let (value,): (String,) = query("SELECT value FROM server_keys WHERE name = $1")
            .bind(name)
            .fetch_one(&self.writer)
            .await?;
        Ok(value)
    }
}

/// `endpoint` as of `now`: a circuit that opened until a time already past is not open.
fn open_now(mut endpoint: Endpoint, now: crate::Millis) -> Endpoint {
    endpoint.circuit_open_until = endpoint.circuit_open_until.filter(|&until| until > now);
    endpoint
}

/// Gives endpoint `id` a key of each kind `change` uses that it has none of, and deletes its
/// keys of the kinds it no longer uses: they stop signing at once (a receiver moving from one
/// way to the other has `both` for the overlap).
async fn change_keys<DB: Backend>(
    tx: &mut DB::Connection,
    id: &str,
    change: &SignatureChange,
    now: crate::Millis,
) -> Result<(), Error> {
    for kind in KeyKind::ALL {
        let ed25519 = kind == KeyKind::Ed25519;
        if !change.signature.uses(kind) {
            query(
                "DELETE FROM endpoint_secrets WHERE endpoint_id = $1 \
                 AND (substr(secret, 1, 5) = 'whsk_') = $2",
            )
            .bind(id)
            .bind(ed25519)
            .execute(&mut *tx)
            .await?;
            continue;
        }
        let Some(fresh) = change.fresh_keys.iter().find(|k| KeyKind::of(k) == kind) else {
            continue;
        };
        query(
            "INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) \
             SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM endpoint_secrets \
               WHERE endpoint_id = $1 AND (substr(secret, 1, 5) = 'whsk_') = $4 \
               AND (expires_at IS NULL OR expires_at > $3))",
        )
        .bind(id)
        .bind(fresh)
        .bind(now)
        .bind(ed25519)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Deletes endpoint `id` of `tenant_id` with its deliveries, their attempts, its secrets, its
/// queue row and its attempt counts, in one transaction; whether it was there.
async fn delete_endpoint<DB: Backend>(
    writer: &Pool<DB>,
    tenant_id: &str,
    id: &str,
) -> Result<bool, Error> {
    // Its deliveries first, each as a finish would take it (before its endpoint's rows: a
    // finish holding a delivery goes on to lock the endpoint's queue row, which deleting
    // the endpoint would otherwise take first), then their attempts, which on PostgreSQL no
    // foreign key cascades to (see migration 11); its secrets and queue row go with it, and its
    // attempt counts are deleted after it (see migration 20).
    const DELIVERIES: &str = "DELETE FROM deliveries WHERE endpoint_id = \
           (SELECT p.id FROM endpoints p WHERE p.tenant_id = $1 AND p.id = $2) \
         RETURNING id";
    const ATTEMPTS: Sql = sql!(
        "DELETE FROM attempts WHERE delivery_id IN (SELECT t.value FROM " [texts "$1"] " AS t)"
    );
    let mut tx = writer.begin().await?;
    let deliveries: Vec<(String,)> = query(DELIVERIES)
        .bind(tenant_id)
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
    let deliveries: Vec<&str> = deliveries.iter().map(|(id,)| id.as_str()).collect();
    if !deliveries.is_empty() {
        query(ATTEMPTS)
            .bind(json_rows(&deliveries))
            .execute(&mut *tx)
            .await?;
    }
    let deleted = query("DELETE FROM endpoints WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if deleted == 1 {
        hours::forget::<DB>(&mut *tx, id).await?;
    }
    tx.commit().await?;
    Ok(deleted == 1)
}

/// Refuses an endpoint more for `tenant` when it has `max` already. The tenant's row is held
/// until the transaction ends, so two endpoints made at once cannot both pass the count.
async fn room_for_an_endpoint<DB: Backend>(
    db: &mut impl Run<DB>,
    tenant: &str,
    max: u32,
) -> Result<(), Error> {
    const HOLD: Sql = sql!("SELECT id FROM tenants WHERE id = $1"[lock]);
    let held: Option<(String,)> = query(HOLD).bind(tenant).fetch_optional(&mut *db).await?;
    if held.is_none() {
        // The insert says so, as it did before any bound.
        return Ok(());
    }
    let (count,): (i64,) = query("SELECT count(*) FROM endpoints WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(&mut *db)
        .await?;
    if count >= i64::from(max) {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "tenant `{tenant}` has {count} endpoints, the most a tenant may have \
                 (`tenants.max_endpoints`): delete one, or raise the bound"
            ),
        ));
    }
    Ok(())
}
