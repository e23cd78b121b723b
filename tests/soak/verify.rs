//! The end of the soak: waiting for everything to drain, then checking every guarantee
//! against EventoDB, the outbox table and the consumers' effects.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use eventodb_kit::Kit;
use eventodb_kit::client::{GetCategoryOptions, GetStreamOptions};
use serde_json::json;
use sqlx::Postgres;
use tokio::time::Instant;
use uuid::Uuid;

use crate::consumers::Seen;
use crate::harness::Harness;
use crate::writers::{CATEGORY, Written};

/// Waits until the outbox is empty and both consumers have handled all `committed` events
/// (or `deadline`); `false` when it did not get there.
pub(crate) async fn wait_drained(
    kit: &Kit<Postgres>,
    harness: &mut Harness,
    written: &Written,
    seen: &Seen,
    committed: usize,
    deadline: Instant,
) -> bool {
    let committed = committed as i64;
    let mut report = Instant::now() + Duration::from_secs(10);
    loop {
        harness.supervise(false).await;
        let status = kit.outbox().status().await.expect("outbox status");
        let (effects,): (i64,) =
            sqlx::query_as("SELECT count(DISTINCT event_id) FROM soak_effects")
                .fetch_one(kit.pool())
                .await
                .expect("effects");
        let audited = seen.0.lock().unwrap().len() as i64;
        if status.pending == 0 && status.failed == 0 && effects >= committed && audited >= committed
        {
            return true;
        }
        if status.failed > 0 {
            eprintln!("soak: {} outbox rows failed: {status:?}", status.failed);
            return false;
        }
        if Instant::now() >= deadline {
            eprintln!(
                "soak: not drained: outbox {status:?}, effects {effects}/{committed}, audit {audited}/{committed}, consumers {:?}",
                harness.consumer_positions()
            );
            return false;
        }
        if Instant::now() >= report {
            report += Duration::from_secs(10);
            eprintln!(
                "soak: draining: outbox pending {}, effects {effects}/{committed}, audit {audited}/{committed} (writers committed {})",
                status.pending,
                written.committed.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
        // Each look counts the outbox and the effects: looking often would load the
        // database the drain needs (at 100 ms it was a visible share of PostgreSQL's work).
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What the end found.
#[derive(Debug, Default)]
pub(crate) struct Figures {
    events: usize,
    streams: usize,
    /// Committed events whose outbox row is missing, and rows no committed write made.
    outbox_missing: usize,
    outbox_extra: usize,
    /// Outbox rows by status.
    outbox_status: BTreeMap<String, usize>,
    /// Extra copies of events in EventoDB.
    duplicates: usize,
    /// Committed events not in EventoDB.
    losses: usize,
    /// Events in EventoDB that no committed write made (rolled-back ones included).
    strays: usize,
    /// Streams whose events are not in commit order.
    reorders: usize,
    /// Events of the category (a category read), against the events committed.
    category_events: usize,
    /// Extra effect rows, events without one, effect rows of unknown events.
    effect_duplicates: usize,
    effect_losses: usize,
    effect_strays: usize,
    /// Streams whose effects were not made in stream order.
    effect_reorders: usize,
    /// Events the plain consumer never saw, saw although unknown, and saw again.
    audit_losses: usize,
    audit_strays: usize,
    audit_redeliveries: u64,
    /// Events of rolled-back transactions seen anywhere.
    rolled_back: usize,
    rolled_back_seen: usize,
    /// First examples of each problem.
    examples: Vec<String>,
}

impl Figures {
    fn example(&mut self, text: String) {
        if self.examples.len() < 20 {
            self.examples.push(text);
        }
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        json!({
            "events": self.events,
            "streams": self.streams,
            "duplicates": self.duplicates,
            "losses": self.losses,
            "reorders": self.reorders,
            "strays": self.strays,
            "category_events": self.category_events,
            "outbox_missing": self.outbox_missing,
            "outbox_extra": self.outbox_extra,
            "outbox_status": self.outbox_status,
            "effect_duplicates": self.effect_duplicates,
            "effect_losses": self.effect_losses,
            "effect_strays": self.effect_strays,
            "effect_reorders": self.effect_reorders,
            "audit_losses": self.audit_losses,
            "audit_strays": self.audit_strays,
            "audit_redeliveries": self.audit_redeliveries,
            "rolled_back_events": self.rolled_back,
            "rolled_back_seen": self.rolled_back_seen,
        })
    }

    /// Every broken guarantee, with examples.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |n: usize, what: &str| {
            if n > 0 {
                problems.push(format!("{n} {what}"));
            }
        };
        check(
            self.outbox_missing,
            "committed events without an outbox row",
        );
        check(self.outbox_extra, "outbox rows no committed write made");
        check(
            self.outbox_status
                .iter()
                .filter(|(status, _)| status.as_str() != "sent")
                .map(|(_, n)| n)
                .sum(),
            "outbox rows not sent",
        );
        check(self.duplicates, "duplicate events in EventoDB");
        check(self.losses, "committed events missing from EventoDB");
        check(self.strays, "events in EventoDB that were never committed");
        check(self.reorders, "streams out of commit order");
        check(
            self.category_events.abs_diff(self.events),
            "events more or fewer in the category than committed",
        );
        check(self.effect_duplicates, "duplicate transactional effects");
        check(
            self.effect_losses,
            "events without their transactional effect",
        );
        check(self.effect_strays, "effects of unknown events");
        check(
            self.effect_reorders,
            "streams whose effects are out of stream order",
        );
        check(self.audit_losses, "events the plain consumer never saw");
        check(self.audit_strays, "unknown events the plain consumer saw");
        check(
            self.rolled_back_seen,
            "events of rolled-back transactions seen",
        );
        if !problems.is_empty() {
            problems.extend(self.examples.iter().map(|e| format!("  e.g. {e}")));
        }
        problems
    }
}

/// Retries a read that meets a transient error (a pooled connection the restarts closed).
async fn read<T, F, Fut>(what: &str, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = eventodb_kit::Result<T>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Ok(value) => return value,
            Err(error) if attempt < 5 && error.is_transient() => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("{what}: {error:?}"),
        }
    }
}

/// Checks everything; see [`Figures`].
pub(crate) async fn check(
    kit: &Kit<Postgres>,
    committed: &[Uuid],
    rolled_back: &[Uuid],
    seen: &Seen,
) -> Figures {
    let mut f = Figures {
        events: committed.len(),
        rolled_back: rolled_back.len(),
        ..Figures::default()
    };
    let committed_set: HashSet<Uuid> = committed.iter().copied().collect();
    assert_eq!(
        committed_set.len(),
        committed.len(),
        "the outbox gave two writes one id"
    );
    let rolled_back_set: HashSet<Uuid> = rolled_back.iter().copied().collect();

    // The outbox: every committed write has its row, in commit (= seq) order per stream.
    let rows: Vec<(Uuid, String, String)> =
        sqlx::query_as("SELECT id, stream, status FROM eventodb_kit_outbox ORDER BY seq")
            .fetch_all(kit.pool())
            .await
            .expect("outbox rows");
    let mut expected: BTreeMap<String, Vec<Uuid>> = BTreeMap::new();
    let mut row_ids = HashSet::new();
    for (id, stream, status) in rows {
        *f.outbox_status.entry(status).or_default() += 1;
        row_ids.insert(id);
        if !committed_set.contains(&id) {
            f.outbox_extra += 1;
            f.example(format!("outbox row {id} of {stream} was not committed"));
        }
        expected.entry(stream).or_default().push(id);
    }
    for id in committed {
        if !row_ids.contains(id) {
            f.outbox_missing += 1;
            f.example(format!("committed event {id} has no outbox row"));
        }
    }
    let streams: Vec<(String,)> = sqlx::query_as("SELECT stream FROM soak_streams ORDER BY stream")
        .fetch_all(kit.pool())
        .await
        .expect("streams");
    f.streams = expected.len();

    // EventoDB, stream by stream.
    let client = kit.client();
    let mut stored: HashMap<Uuid, usize> = HashMap::new();
    let mut stream_order: HashMap<String, Vec<Uuid>> = HashMap::new();
    for (stream,) in streams {
        let mut ids = Vec::new();
        let mut position = 0;
        loop {
            let options = GetStreamOptions::new().position(position).batch_size(1000);
            let page = read(&format!("stream.get {stream}"), || {
                client.stream_get(&stream, &options)
            })
            .await;
            let Some(last) = page.last() else { break };
            position = last.position + 1;
            let full = page.len() == 1000;
            // The soak writes UUIDs only; anything else counts as a foreign event.
            ids.extend(page.iter().map(|m| m.id.as_uuid().unwrap_or_default()));
            if !full {
                break;
            }
        }
        for id in &ids {
            *stored.entry(*id).or_default() += 1;
        }
        let want = expected.get(&stream).cloned().unwrap_or_default();
        let mut first = HashSet::new();
        let got: Vec<Uuid> = ids.iter().copied().filter(|id| first.insert(*id)).collect();
        let got_known: Vec<Uuid> = got
            .iter()
            .copied()
            .filter(|id| committed_set.contains(id))
            .collect();
        let want_stored: Vec<Uuid> = want
            .iter()
            .copied()
            .filter(|id| first.contains(id))
            .collect();
        if got_known != want_stored {
            f.reorders += 1;
            f.example(format!(
                "stream {stream} out of order: first difference at index {}",
                got_known
                    .iter()
                    .zip(&want_stored)
                    .position(|(a, b)| a != b)
                    .unwrap_or(got_known.len().min(want_stored.len()))
            ));
        }
        stream_order.insert(stream, got);
    }
    for (id, n) in &stored {
        if *n > 1 {
            f.duplicates += n - 1;
            f.example(format!("event {id} is in EventoDB {n} times"));
        }
        if !committed_set.contains(id) {
            f.strays += 1;
            f.example(format!("event {id} in EventoDB was never committed"));
        }
    }
    for id in committed {
        if !stored.contains_key(id) {
            f.losses += 1;
            f.example(format!("committed event {id} is not in EventoDB"));
        }
    }

    // The whole category (catches events in streams the app does not know of).
    let mut position = 1;
    loop {
        let options = GetCategoryOptions::new()
            .position(position)
            .batch_size(5000);
        let page = read("category.get", || client.category_get(CATEGORY, &options)).await;
        let Some(last) = page.last() else { break };
        position = last.global_position + 1;
        f.category_events += page.len();
        if page.len() < 5000 {
            break;
        }
    }

    // The transactional effects: exactly one per event, made in stream order.
    let effects: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT event_id, stream FROM soak_effects ORDER BY n")
            .fetch_all(kit.pool())
            .await
            .expect("effects");
    let mut effect_counts: HashMap<Uuid, usize> = HashMap::new();
    let mut effect_order: HashMap<String, Vec<Uuid>> = HashMap::new();
    for (id, stream) in effects {
        let n = effect_counts.entry(id).or_default();
        *n += 1;
        if *n == 1 {
            effect_order.entry(stream).or_default().push(id);
        }
    }
    for (id, n) in &effect_counts {
        if *n > 1 {
            f.effect_duplicates += n - 1;
            f.example(format!("event {id} has {n} effects"));
        }
        if !committed_set.contains(id) {
            f.effect_strays += 1;
        }
    }
    for id in committed {
        if !effect_counts.contains_key(id) {
            f.effect_losses += 1;
            f.example(format!("event {id} has no effect"));
        }
    }
    for (stream, order) in &effect_order {
        let want = stream_order.get(stream).cloned().unwrap_or_default();
        let want: Vec<Uuid> = want
            .into_iter()
            .filter(|id| effect_counts.contains_key(id))
            .collect();
        if *order != want {
            f.effect_reorders += 1;
            f.example(format!("effects of {stream} not in stream order"));
        }
    }

    // The plain consumer: every event at least once.
    let seen = seen.0.lock().unwrap().clone();
    for id in committed {
        if !seen.contains_key(id) {
            f.audit_losses += 1;
            f.example(format!("the plain consumer never saw {id}"));
        }
    }
    for (id, n) in &seen {
        f.audit_redeliveries += u64::from(n - 1);
        if !committed_set.contains(id) {
            f.audit_strays += 1;
        }
    }

    for id in &rolled_back_set {
        if row_ids.contains(id)
            || stored.contains_key(id)
            || effect_counts.contains_key(id)
            || seen.contains_key(id)
        {
            f.rolled_back_seen += 1;
            f.example(format!("event {id} of a rolled-back transaction was seen"));
        }
    }
    f
}
