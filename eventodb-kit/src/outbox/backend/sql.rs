//! The table of statements each dialect fills in, and SQL fragments both share.

/// The statements of one dialect. Parameters are listed in each doc comment.
pub(crate) struct Sql {
    /// Creates the version table if missing.
    pub(crate) create_version_table: &'static str,
    /// `version` of every applied migration.
    pub(crate) applied_versions: &'static str,
    /// (version, name)
    pub(crate) record_version: &'static str,
    /// (version)
    pub(crate) forget_version: &'static str,
    /// (id, namespace, stream, type, data, metadata, write_options, expected_version, key, hash)
    /// → `seq`, or no row when the key or the id is taken. Any unique conflict does nothing
    /// (not only the key's): a write with a key and a custom id, racing an identical one, may
    /// meet the other's id before its key, and an error there would abort the caller's
    /// PostgreSQL transaction instead of replaying.
    pub(crate) insert: &'static str,
    /// (namespace, id) → whether a row of the namespace has that id
    pub(crate) id_taken: &'static str,
    /// (namespace, key) → (id, content_hash)
    pub(crate) find_by_key: &'static str,
    /// (namespace, after_stream, max_streams) → (stream, claimable) for the streams with
    /// unsent rows after `after_stream`, in name order: an index skip scan, one probe per
    /// stream, whatever the number of rows pending.
    pub(crate) heads: &'static str,
    /// (namespace, stream) → (owner, live, from_seq, through_seq, fencing: a pending row lies
    /// between them) of the stream's lease; locks it where a renewal could otherwise slip in
    /// between this read and the claim's write.
    pub(crate) lease_read: &'static str,
    /// (namespace, stream, after_seq, limit) → the stream's first unsent rows after
    /// `after_seq` (claim columns, and `held`: parked or not yet due)
    pub(crate) stream_rows: &'static str,
    /// (namespace, stream, below_seq, taken seqs as a JSON array) → whether an unsent row of
    /// the stream below `below_seq` is not among the taken ones
    pub(crate) unsent_below: &'static str,
    /// (namespace, stream, from_seq, through_seq): marks the stream's pending rows between
    /// them outcome unknown
    pub(crate) mark_unknown_between: &'static str,
    /// (namespace, stream, owner, lease, from_seq, through_seq): takes the stream's lease, or
    /// extends the caller's own (keeping its `from_seq`)
    pub(crate) lease_upsert: &'static str,
    /// (namespace, stream, owner, lease) → 1 while `owner` holds the stream's lease
    pub(crate) renew: &'static str,
    /// (namespace, stream, owner, after_seq): the lease covers no row after `after_seq`
    pub(crate) release: &'static str,
    /// (namespace, stream, owner) → whether a pending row lay in the range: shrinks the lease
    /// of `owner` to no row, once every send made under it is recorded
    pub(crate) settle: &'static str,
    /// (namespace, owner): deletes every lease of `owner`
    pub(crate) drop_leases: &'static str,
    /// (namespace, batch): deletes leases that ran out and fence no unsent row
    pub(crate) purge_leases: &'static str,
    /// (JSON array of `[seq, position, global_position]`)
    pub(crate) mark_sent_many: &'static str,
    /// (seq, error, delay, outcome_unknown)
    pub(crate) mark_retry: &'static str,
    /// (seq, error, outcome_unknown)
    pub(crate) mark_failed: &'static str,
    /// (seq, attempts): only if the row was not tried since `attempts` was read
    pub(crate) clear_unknown: &'static str,
    /// (namespace) → (pending, failed, sent, unverified, oldest pending age in seconds, lost,
    /// the last error of a row put off for a retry)
    pub(crate) status: &'static str,
    /// (namespace, id) → row
    pub(crate) row: &'static str,
    /// (namespace, limit) → rows
    pub(crate) failed: &'static str,
    /// (namespace, id, drop_expected_version)
    pub(crate) retry: &'static str,
    /// (namespace, id): locks the lease row of the row's stream, if there is one (waits
    /// for a claim of that stream to commit).
    pub(crate) discard_lock_lease: &'static str,
    /// (namespace, id) → the row's state and its stream's lease, as [`DiscardState`]
    /// (`in_flight`: a live lease covers the row while it is pending, or its last attempt's
    /// outcome is unknown and its next attempt is not due yet; `lapsed`: a lease that ran
    /// out covers it)
    ///
    /// [`DiscardState`]: super::DiscardState
    pub(crate) discard_state: &'static str,
    /// (namespace, id)
    pub(crate) discard: &'static str,
    /// (namespace, retention, batch, require_verified)
    pub(crate) purge: &'static str,
    /// (namespace, older_than, limit) → (seq, id, stream, position, global_position, requeued,
    /// unverified_again)
    pub(crate) unverified: &'static str,
    /// (namespace, limit) → the newest verified rows, as `unverified` reads them
    pub(crate) newest_verified: &'static str,
    /// (JSON array of seqs): those verified rows back to unverified, counted in
    /// `unverified_again`
    pub(crate) unverify_many: &'static str,
    /// (JSON array of `[seq, requeued, unverified_again]`): verified unless put back or made
    /// unverified again since
    pub(crate) mark_verified_many: &'static str,
    /// (seq, error)
    pub(crate) requeue_lost: &'static str,
    /// (namespace) → seconds until the earliest pending row is due
    pub(crate) next_due: &'static str,
}

/// SQL, one rule for both dialects: true while the lease aliased `l` fences its stream,
/// that is while one of the rows it took is still pending (sent, maybe, but not recorded).
/// `$namespace` and `$stream` are SQL expressions. Each dialect writes the rule so that its
/// planner can only answer it from the per-stream index (namespace, stream, seq), which keeps
/// the check to the lease's own rows:
/// - SQLite uses a partial index only when a query repeats its condition, so the status
///   condition is written twice.
/// - PostgreSQL picks indexes by cost, and right after a burst of writes its statistics may
///   not know the table grew. It then took the pending rows' index (namespace, seq) and read
///   every pending row of every stream in the lease's range: 7,000 rows and 1.5 ms per check
///   while a 20,000-row backlog drained, with the claim lock held. Written as below, neither
///   that index (its condition `status = 'pending'` does not follow from this one) nor the
///   primary key (`seq` appears only after `stream` in a row comparison) can serve it.
macro_rules! lease_fences {
    (sqlite, $namespace:literal, $stream:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM eventodb_kit_outbox AS p WHERE p.namespace = ",
            $namespace,
            " AND p.stream = ",
            $stream,
            " AND p.status IN ('pending', 'failed') AND p.status = 'pending'",
            " AND p.seq BETWEEN l.from_seq AND l.through_seq)"
        )
    };
    (postgres, $namespace:literal, $stream:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM eventodb_kit_outbox AS p WHERE p.namespace = ",
            $namespace,
            " AND p.stream = ",
            $stream,
            " AND p.status IN ('pending', 'failed') AND p.status <> 'failed'",
            " AND (p.stream, p.seq) BETWEEN (",
            $stream,
            ", l.from_seq) AND (",
            $stream,
            ", l.through_seq))"
        )
    };
}

pub(crate) use lease_fences;
