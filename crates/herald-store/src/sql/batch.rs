//! Applying a batch of writes with a handful of statements, whatever its size.
//!
//! Group commit ([`crate::group`]) puts many writes in one transaction; this puts many rows in
//! one statement: each batch is bound as one JSON array and read back as a table, so a batch
//! of 500 events costs about as many statements (each a call into SQLite, or a round trip over
//! the socket to PostgreSQL) as one.
//!
//! What each kind of write does is in a file of its own: events accepted (`accept.rs`),
//! attempts recorded (`finish.rs`), deliveries claimed (`claim.rs`); `turns.rs` moves
//! endpoints' turns in line for all of them.

use super::subscribers::Kept;
use super::{Backend, Run, accept, finish, turns};
use crate::group::{Write, Written};
use crate::{Error, ErrorKind};

/// What the process applying a batch brings to it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Process<'a> {
    /// Its workers' names: its announcements leave them out, and it wakes them itself.
    pub(crate) own: &'a [String],
    /// The subscribers it keeps, where it keeps them.
    pub(crate) kept: Option<&'a Kept>,
}

/// What a batch made due, for the committer to wake the workers once it commits.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MadeDue {
    /// Deliveries became due.
    pub(crate) any: bool,
    /// Some of them are for a worker of this process, which the batch's announcement left out
    /// (`own`): the committer wakes it.
    pub(crate) here: bool,
}

/// The writes of one batch, applied in the caller's transaction: one result per write, in
/// order. Claims come after accepts and finishes, so they can take what this very batch
/// stored or rescheduled; releases come last, so a lease is never given back ahead of the
/// attempt recorded under it.
///
/// Also says what became due, so the workers can be woken once it commits: accepted events
/// are announced to every worker but `process`'s own.
pub(crate) async fn apply<DB: Backend>(
    db: &mut impl Run<DB>,
    writes: &[Write],
    process: &Process<'_>,
) -> Result<(Vec<Written>, MadeDue), Error> {
    let mut accepts = Vec::new();
    let mut finishes = Vec::new();
    for write in writes {
        match write {
            Write::Accept { new, now } => accepts.push((new, *now)),
            Write::Finish { finish, now } => finishes.push((finish, *now)),
            Write::Claim { .. } | Write::Release { .. } => {}
        }
    }
    let (accepted, here) = accept::accept_all::<DB>(db, &accepts, process).await?;
    let (finished, next_due) = finish::finish_all::<DB>(db, &finishes).await?;
    let mut made_due = next_due || accepted.iter().any(|a| a.created && a.deliveries > 0);
    let mut accepted = accepted.into_iter();
    let mut finished = finished.into_iter();
    let mut claimed = Vec::new();
    for write in writes {
        if let Write::Claim {
            request,
            lease,
            now,
        } = write
        {
            let mut leased = super::claim::lease_due::<DB>(db, request, lease, *now).await?;
            if leased.ids.len() <= super::claim::READ_IN_WRITER {
                leased.read = Some(super::claim::read::<DB>(db, &leased.ids, lease, *now).await?);
            }
            claimed.push(leased);
        }
    }
    let mut released = Vec::new();
    for write in writes {
        if let Write::Release { holder, now } = write {
            let n = turns::release::<DB>(db, holder, *now).await?;
            made_due |= n > 0;
            released.push(n);
        }
    }
    let mut claimed = claimed.into_iter();
    let mut released = released.into_iter();
    writes
        .iter()
        .map(|write| {
            match write {
                Write::Accept { .. } => accepted.next().map(Written::Accepted),
                Write::Finish { .. } => finished.next().map(Written::Finished),
                Write::Claim { .. } => claimed.next().map(Written::Claimed),
                Write::Release { .. } => released.next().map(Written::Released),
            }
            .ok_or_else(|| Error::new(ErrorKind::Database, "a write of the batch has no result"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|written| {
            let due = MadeDue {
                any: made_due,
                here,
            };
            (written, due)
        })
}
