//! The reconciliation sweep: read sent events back from EventoDB, mark them verified, and
//! send again what EventoDB lost after acknowledging it (a crashed Pebble-backed server
//! comes back without any write since it opened, protocol §8).
//!
//! A verified event is not safe either: the read-back saw the same unsynced state the write
//! made. So once per `verify_after`, and whenever a sweep finds a row lost, the newest
//! verified events are read back too, newest first, and made unverified page by page until
//! EventoDB holds a whole page; the sweep then puts every lost row back in the order it was
//! sent. A sweep that read a row before such a loss made it unverified again (another
//! process's, say) does not mark it verified: its check may predate the loss.
//!
//! Cheap by construction: one database query when nothing awaits verification (no request
//! to EventoDB at all, but for one `stream.get` per stream of the newest verified rows once
//! per `verify_after`), otherwise one `stream.get` per stream per page of rows, a few
//! streams at a time.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures_util::StreamExt;
use futures_util::stream;

use super::run::Shared;
use crate::client::{GetStreamOptions, MAX_BATCH_SIZE, MessageId};
use crate::error::Result;
use crate::outbox::backend::{Backend, Unverified};

/// Rows verified per sweep page.
const PAGE: i64 = 1000;
/// Streams read at the same time.
const STREAMS_AT_ONCE: usize = 8;
/// The newest verified rows each scheduled sweep reads back again. More than one: sends
/// recorded close together may be recorded in another order than EventoDB took them.
const NEWEST: i64 = 16;

/// What one sweep did.
#[derive(Debug, Default)]
pub(super) struct Swept {
    /// It read a full page: more rows may be waiting, sweep again at once.
    pub(super) full: bool,
    /// Rows confirmed in EventoDB.
    pub(super) verified: usize,
    /// Rows EventoDB lost, put back to pending.
    pub(super) lost: usize,
    /// Verified rows made unverified again: EventoDB lost one of the newest.
    pub(super) unverified_again: u64,
    /// The newest verified rows could not be read back: check them at the next sweep.
    pub(super) newest_unknown: bool,
}

impl Swept {
    /// Whether to sweep again without waiting for the interval: only while sweeps get
    /// somewhere. A full page that verified nothing (EventoDB down, or streams it cannot
    /// read) would otherwise be read again at once, over and over, for the whole outage.
    pub(super) fn again_at_once(&self) -> bool {
        (self.full && (self.verified > 0 || self.lost > 0)) || self.unverified_again > 0
    }
}

/// What EventoDB holds for one row.
enum Found {
    /// The row's id at the recorded position (or elsewhere in the stream).
    Held,
    /// Absent; `other` is the id now at the recorded position, if any.
    Lost { other: Option<MessageId> },
    /// The stream could not be read: try again next sweep.
    Unknown,
}

impl Found {
    fn is_lost(&self) -> bool {
        matches!(self, Found::Lost { .. })
    }
}

/// Verifies one page of sent rows; first, when `check_newest`, reads the newest verified
/// rows back (see the module's docs).
pub(super) async fn sweep<DB: Backend>(shared: &Shared<DB>, check_newest: bool) -> Result<Swept> {
    let mut swept = Swept::default();
    let mut newest = None;
    if check_newest {
        let found = unverify_lost_suffix(shared).await?;
        match found {
            Newest::Held | Newest::Walking => {}
            Newest::Unknown => swept.newest_unknown = true,
            Newest::Unverified(rows) => swept.unverified_again = rows,
        }
        newest = Some(found);
    }
    let rows = awaiting(shared).await?;
    swept.full = i64::try_from(rows.len()).is_ok_and(|read| read >= PAGE);
    if rows.is_empty() {
        return Ok(swept);
    }
    let page: Vec<i64> = rows.iter().map(|row| row.seq).collect();
    let checked = check_rows(shared, rows).await;
    if checked.iter().any(|(_, found)| found.is_lost())
        && !may_put_back(shared, newest, &page, &checked, &mut swept).await?
    {
        return Ok(swept);
    }
    let mut verified = Vec::new();
    for (row, found) in checked {
        match found {
            Found::Held => verified.push((row.seq, row.requeued, row.unverified_again)),
            Found::Unknown => {}
            Found::Lost { other } => {
                let moved_on = other.is_some();
                let text = if moved_on {
                    format!(
                        "EventoDB lost this event after acknowledging it at position {} \
                         (global {}); another event now holds that position, so it is \
                         re-sent at the end of the stream (original order not kept) and \
                         without its expected version",
                        row.position, row.global_position
                    )
                } else {
                    format!(
                        "EventoDB lost this event after acknowledging it at position {} \
                         (global {}); re-sent in stream order, without its expected version",
                        row.position, row.global_position
                    )
                };
                if DB::requeue_lost(shared.outbox.pool(), row.seq, row.requeued, &text).await? {
                    swept.lost += 1;
                    // No commit wakes the sender for a row put back (no `NOTIFY` on
                    // PostgreSQL): send it now, not at the next poll.
                    shared.claim_now.notify_one();
                    tracing::error!(
                        stream = %row.stream,
                        id = %row.id,
                        position = row.position,
                        global_position = row.global_position,
                        moved_on,
                        replaced_by = ?other,
                        "outbox event lost by EventoDB after it was acknowledged; re-sending it"
                    );
                }
            }
        }
    }
    if !verified.is_empty() {
        DB::mark_verified_many(shared.outbox.pool(), &verified).await?;
        swept.verified = verified.len();
    }
    Ok(swept)
}

/// The oldest page of sent rows awaiting verification (sent at least `verify_after` ago).
async fn awaiting<DB: Backend>(shared: &Shared<DB>) -> Result<Vec<Unverified>> {
    DB::unverified(
        shared.outbox.pool(),
        shared.outbox.namespace(),
        shared.options.verify_after,
        PAGE,
    )
    .await
}

/// Whether the lost rows of a sweep's `page` (`checked`) may be put back now. A lost row may
/// mean EventoDB also lost verified rows sent before it (a crash loses every write since the
/// server opened). Those are made unverified first, and nothing is put back this time: the
/// next sweep reads them with this page, oldest first, and puts every lost row back in the
/// order it was sent, so that it is sent again in that order. Nothing is put back either
/// while the newest verified rows cannot be read (`newest`: what the sweep's own check of
/// them found, if it made one), or while another process's sweep walks back; `swept` says
/// which.
async fn may_put_back<DB: Backend>(
    shared: &Shared<DB>,
    newest: Option<Newest>,
    page: &[i64],
    checked: &[(Unverified, Found)],
    swept: &mut Swept,
) -> Result<bool> {
    let walked = match newest {
        Some(Newest::Unverified(_)) => Newest::Held,
        Some(Newest::Held) => Newest::Held,
        Some(Newest::Walking) => Newest::Walking,
        Some(Newest::Unknown) | None => unverify_lost_suffix(shared).await?,
    };
    match walked {
        Newest::Held => {}
        Newest::Unverified(rows) => {
            swept.unverified_again += rows;
            return Ok(false);
        }
        Newest::Unknown => {
            swept.newest_unknown = true;
            return Ok(false);
        }
        Newest::Walking => return Ok(false),
    }
    // Another process's sweep may have walked back further than the newest rows just read as
    // held, making older lost rows unverified after this page was read: this page's lost
    // rows put back now would be sent ahead of them. Only while the rows awaiting
    // verification still begin as this page did.
    let lost: HashSet<i64> = checked
        .iter()
        .filter(|(_, found)| found.is_lost())
        .map(|(row, _)| row.seq)
        .collect();
    let now_first: Vec<i64> = awaiting(shared).await?.iter().map(|row| row.seq).collect();
    Ok(still_first(page, &lost, &now_first))
}

/// Whether the rows awaiting verification, oldest first (`now_first`), still begin as the
/// sweep's `page` did, up to its last `lost` row: no row was made unverified among or before
/// them, nor verified or put back by another sweep, since the page was read.
fn still_first(page: &[i64], lost: &HashSet<i64>, now_first: &[i64]) -> bool {
    let Some(last) = page.iter().rposition(|seq| lost.contains(seq)) else {
        return true;
    };
    now_first.get(..=last) == page.get(..=last)
}

/// What reading the newest verified rows back found.
enum Newest {
    /// EventoDB holds them.
    Held,
    /// It lost some: this many rows were made unverified.
    Unverified(u64),
    /// They could not be read (EventoDB down): try again at the next sweep.
    Unknown,
    /// EventoDB lost some, and another process's sweep made them unverified first: it is
    /// walking back, and lost rows put back before its walk is done would be sent ahead of
    /// older ones it has yet to find. Nothing is put back this time.
    Walking,
}

/// Reads the newest verified rows back, newest first ([`NEWEST`], then pages of [`PAGE`]):
/// while a page holds a row EventoDB lost, it makes the page unverified and reads the next
/// older one. A crashed Pebble-backed server loses the writes since it opened, the newest
/// ones, so the first page EventoDB holds whole ends the walk: a loss costs reads and
/// statements for what was lost, not for the whole retention.
async fn unverify_lost_suffix<DB: Backend>(shared: &Shared<DB>) -> Result<Newest> {
    let (pool, namespace) = (shared.outbox.pool(), shared.outbox.namespace());
    let mut limit = NEWEST;
    let mut total = 0;
    let mut walking_elsewhere = false;
    while !shared.cancel.is_cancelled() {
        let rows = DB::newest_verified(pool, namespace, limit).await?;
        if rows.is_empty() {
            break;
        }
        let checked = check_rows(shared, rows).await;
        if checked
            .iter()
            .any(|(_, found)| matches!(found, Found::Unknown))
        {
            return Ok(if total > 0 {
                Newest::Unverified(total)
            } else {
                Newest::Unknown
            });
        }
        if !checked.iter().any(|(_, found)| found.is_lost()) {
            break;
        }
        let seqs: Vec<i64> = checked.iter().map(|(row, _)| row.seq).collect();
        let unverified = DB::unverify_many(pool, &seqs).await?;
        if total == 0 {
            tracing::error!(
                "EventoDB lost events it had acknowledged and that were read back since (a \
                 crashed Pebble-backed server loses every write since it opened); reading the \
                 newest sent events back again until EventoDB holds a whole page of them"
            );
        }
        total += unverified;
        // Changed meanwhile by another process's sweep: it walks back from here.
        if unverified < u64::try_from(seqs.len()).unwrap_or(u64::MAX) {
            walking_elsewhere = true;
            break;
        }
        limit = PAGE;
    }
    if total > 0 {
        tracing::warn!(rows = total, "outbox rows to read back again after a loss");
        return Ok(Newest::Unverified(total));
    }
    Ok(if walking_elsewhere {
        Newest::Walking
    } else {
        Newest::Held
    })
}

/// What EventoDB holds for each of `rows`, read a few streams at a time.
async fn check_rows<DB: Backend>(
    shared: &Shared<DB>,
    rows: Vec<Unverified>,
) -> Vec<(Unverified, Found)> {
    let mut by_stream: BTreeMap<String, Vec<Unverified>> = BTreeMap::new();
    for row in rows {
        by_stream.entry(row.stream.clone()).or_default().push(row);
    }
    let checked: Vec<(Vec<Unverified>, Vec<Found>)> = stream::iter(by_stream.into_values())
        .map(|rows| async move {
            let found = check_stream(shared, &rows).await;
            (rows, found)
        })
        .buffer_unordered(STREAMS_AT_ONCE)
        .collect()
        .await;
    checked
        .into_iter()
        .flat_map(|(rows, found)| rows.into_iter().zip(found))
        .collect()
}

/// Reads the range of positions the rows of one stream were recorded at, page by page.
async fn check_stream<DB: Backend>(shared: &Shared<DB>, rows: &[Unverified]) -> Vec<Found> {
    let client = shared.outbox.client();
    let stream = &rows[0].stream;
    let from = rows.iter().map(|r| r.position).min().unwrap_or(0).max(0);
    let to = rows.iter().map(|r| r.position).max().unwrap_or(0).max(0);
    let mut at_position: HashMap<i64, MessageId> = HashMap::new();
    let mut next = from;
    while next <= to {
        let batch = (to - next + 1).min(MAX_BATCH_SIZE);
        let options = GetStreamOptions::new().position(next).batch_size(batch);
        let read = client.stream_get(stream, &options);
        // A stopping sender does not wait for EventoDB (a read may take the client's whole
        // timeout): what was not read is checked by the next sweep.
        let read = tokio::select! {
            () = shared.cancel.cancelled() => return unknown(rows),
            read = read => read,
        };
        let page = match read {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(error = crate::error::log_field(&error), %stream, "outbox verification read failed; will retry");
                return unknown(rows);
            }
        };
        let Some(last) = page.last().map(|m| m.position) else {
            break;
        };
        for message in page {
            at_position.insert(message.position, message.id);
        }
        next = last + 1;
    }
    rows.iter()
        .map(|row| {
            let Ok(id) = uuid::Uuid::parse_str(&row.id) else {
                return Found::Unknown;
            };
            match at_position.get(&row.position) {
                Some(held) if *held == id => Found::Held,
                other => {
                    if at_position.values().any(|held| *held == id) {
                        Found::Held
                    } else {
                        Found::Lost {
                            other: other.cloned(),
                        }
                    }
                }
            }
        })
        .collect()
}

/// Every row of a stream that could not be read: checked by the next sweep.
fn unknown(rows: &[Unverified]) -> Vec<Found> {
    rows.iter().map(|_| Found::Unknown).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::{Swept, still_first};

    #[test]
    fn lost_rows_go_back_only_while_their_page_is_still_first() {
        let page = [10, 11, 12, 13];
        let lost: HashSet<i64> = [11].into();
        assert!(still_first(&page, &lost, &[10, 11, 12, 13]), "unchanged");
        assert!(
            still_first(&page, &lost, &[10, 11, 13, 20]),
            "changes after the last lost row do not matter"
        );
        assert!(
            !still_first(&page, &lost, &[5, 10, 11, 12]),
            "an older row made unverified meanwhile goes back first"
        );
        assert!(
            !still_first(&page, &lost, &[10, 7, 11, 12]),
            "one made unverified among them too"
        );
        assert!(
            !still_first(&page, &lost, &[11, 12, 13]),
            "a row another sweep verified or put back meanwhile: read again"
        );
        assert!(!still_first(&page, &lost, &[10]), "fewer rows now");
        assert!(still_first(&page, &HashSet::new(), &[]), "nothing lost");
    }

    #[test]
    fn only_a_full_page_that_got_somewhere_is_followed_at_once() {
        let swept = |full, verified, lost| Swept {
            full,
            verified,
            lost,
            unverified_again: 0,
            newest_unknown: false,
        };
        assert!(swept(true, 1000, 0).again_at_once());
        assert!(swept(true, 0, 3).again_at_once());
        assert!(!swept(true, 0, 0).again_at_once(), "EventoDB down: wait");
        assert!(!swept(false, 10, 0).again_at_once(), "nothing more to read");
        let lost_verified = Swept {
            unverified_again: 5,
            ..swept(false, 0, 0)
        };
        assert!(lost_verified.again_at_once(), "read them back now");
    }
}
