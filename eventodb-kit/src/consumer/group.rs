//! Where a consumer (or a consumer-group member) starts reading, from the saved positions.
//!
//! Each member saves its own position **per group size**: a row (member, size, position)
//! says "every event of this member's share under this size, up to here, is handled". A
//! member whose row of its current size exists resumes after it: the server's assignment
//! did not change, so everything of its share up to there is handled.
//!
//! The rule for a resize: the first member to start with a new size records a row for every
//! member of that size at the **lowest** position of any row of any size ([`missing_rows`]),
//! inserted only where no row of that (member, size) exists yet. Every event at or below
//! that floor was handled by its owner under some complete earlier size; the events above
//! it that were already handled are recognised by their processed records (shared by the
//! group, and kept above the lowest row, see [`purge_floor`]) and skipped. Because rows are
//! keyed by size, nothing a member of one size saves can move a row of another size: a
//! member still running with the old size during a rolling restart keeps its own row, and
//! the new members keep theirs, so no later starter can begin past an event that nobody
//! handled. Resizing therefore loses nothing and repeats nothing; rows of an old size go
//! once every member of the current size is past them ([`stale_floor`]).

use md5::{Digest, Md5};

use super::store::PositionRow;

/// The member of a group of `size` that EventoDB gives `stream` to when a member reads the
/// category with `consumerGroup` (protocol §3.5): md5 of the cardinal id (after the first
/// `-`, up to the first `+`), its first 8 bytes as a big-endian `i64`, absolute value,
/// modulo `size`. `None` for a name without `-`, which the server gives to no member.
///
/// The runtime needs it to know which member replays a released stream (see
/// `Runtime::owns`). The testkit's server has its own copy of this rule: that crate is the
/// server's side and is not a dependency of this one.
///
/// A name with an empty cardinal id (`account-`, `account-+x`) is hashed as `""`: the
/// PostgreSQL backend assigns it that way, the others to no member, and then it is never
/// read, so never parked, by a member at all.
pub(crate) fn stream_member(stream: &str, size: i64) -> Option<i64> {
    if size <= 0 {
        return None;
    }
    let (_, id) = stream.split_once('-')?;
    let cardinal = id.split_once('+').map_or(id, |(cardinal, _)| cardinal);
    let digest = Md5::digest(cardinal.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // Go negates with wraparound (i64::MIN stays negative, probability 2^-64) and its `%`
    // truncates toward zero like Rust's.
    let hash = i64::from_be_bytes(first).wrapping_abs();
    Some(hash.wrapping_rem(size))
}

/// The member of a consumer group of `size` that EventoDB gives `stream` to when a member
/// reads its category with `consumerGroup`, or `None` for a name without `-` (given to no
/// member) or a `size` below 1. Use it to count or route a member's share of a category
/// yourself, e.g. where a backend's filtered read returns short pages (Pebble scans only
/// `batchSize × size` keys).
///
/// ```
/// use eventodb_kit::consumer::group_member;
/// // Recorded from a real EventoDB (protocol §3.5): `account-123` goes to member 1 of 2.
/// assert_eq!(group_member("account-123", 2), Some(1));
/// assert_eq!(group_member("account-123+retry", 2), Some(1));
/// assert_eq!(group_member("account", 2), None);
/// ```
pub fn group_member(stream: &str, size: i64) -> Option<i64> {
    stream_member(stream, size)
}

/// The rows to write before a member of a group of `size` starts: every member of that
/// size without a row of that size gets one at the lowest saved position (`0` when none).
/// Written at once by the first member that starts after a resize (or in a new group), so
/// the starting point of every member is on record before anyone moves: a member that dies
/// before its first save, or starts long after the others advanced, still resumes from the
/// right place and never from the beginning (whose processed records may be purged).
/// `None` when every member already has a row of this size.
pub(crate) fn missing_rows(rows: &[PositionRow], size: i64) -> Option<Vec<PositionRow>> {
    let floor = rows
        .iter()
        .map(|row| row.global_position)
        .min()
        .unwrap_or(0);
    let missing: Vec<PositionRow> = (0..size)
        .filter(|member| {
            !rows
                .iter()
                .any(|row| row.member == *member && row.size == size)
        })
        .map(|member| PositionRow {
            member,
            size,
            global_position: floor,
        })
        .collect();
    (!missing.is_empty()).then_some(missing)
}

/// The last global position to treat as handled (`0`: nothing yet).
pub(crate) fn start_position(rows: &[PositionRow], member: i64, size: i64) -> i64 {
    if let Some(own) = rows
        .iter()
        .find(|row| row.member == member && row.size == size)
    {
        return own.global_position;
    }
    // Without a row of its own, a member of a group whose rows all have the current size is
    // not resuming after a resize: it never saved (it died before its first save, or starts
    // after the others). Nobody handles its share but itself, so it starts at the beginning;
    // the others' positions say nothing about its streams.
    if rows
        .iter()
        .all(|row| row.size == size && row.member != member)
    {
        return 0;
    }
    rows.iter()
        .map(|row| row.global_position)
        .min()
        .unwrap_or(0)
}

/// The position below which no member will ever read again: the lowest saved position,
/// once every member of the current `size` has saved one (a member without a row may start
/// from the beginning). Processed records below it can go.
pub(crate) fn purge_floor(rows: &[PositionRow], size: i64) -> Option<i64> {
    let complete = (0..size).all(|member| {
        rows.iter()
            .any(|row| row.member == member && row.size == size)
    });
    if !complete {
        return None;
    }
    rows.iter().map(|row| row.global_position).min()
}

/// When every member of the current size has saved a position, rows of other sizes at or
/// below the lowest of them are no longer needed: returns that lowest position.
pub(crate) fn stale_floor(rows: &[PositionRow], size: i64) -> Option<i64> {
    let current: Vec<&PositionRow> = rows
        .iter()
        .filter(|row| row.size == size && row.member < size)
        .collect();
    let complete = (0..size).all(|member| current.iter().any(|row| row.member == member));
    if !complete {
        return None;
    }
    current.iter().map(|row| row.global_position).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(member: i64, size: i64, global_position: i64) -> PositionRow {
        PositionRow {
            member,
            size,
            global_position,
        }
    }

    #[test]
    fn stream_members_follow_the_servers_rule() {
        // Protocol §3.5, confirmed on the real server.
        let table: &[(&str, i64, Option<i64>)] = &[
            ("account-123", 2, Some(1)),
            ("account-123+retry", 2, Some(1)),
            ("account-123", 4, Some(3)),
            ("account-456", 3, Some(1)),
            ("order-abc", 5, Some(4)),
            ("user-42+x+y", 7, Some(4)),
            ("test-1", 2, Some(0)),
            ("test-2", 2, Some(1)),
            ("test-3", 2, Some(0)),
            ("test-4", 2, Some(1)),
            ("account:command-123", 4, Some(3)),
            ("account-550e8400-e29b-41d4-a716-446655440000", 4, Some(0)),
            ("café-ü", 3, Some(2)),
            ("account", 2, None),
            // PostgreSQL's answer (md5 of ""); the other backends give it to nobody.
            ("account-", 2, Some(0)),
            ("account-", 3, Some(2)),
            ("account-1", 1, Some(0)),
        ];
        for (stream, size, member) in table {
            assert_eq!(stream_member(stream, *size), *member, "{stream}/{size}");
        }
    }

    #[test]
    fn fresh_consumer_starts_at_the_beginning() {
        assert_eq!(start_position(&[], 0, 1), 0);
    }

    #[test]
    fn own_row_of_the_same_size_resumes_after_it() {
        let rows = [row(0, 2, 40), row(1, 2, 70)];
        assert_eq!(start_position(&rows, 1, 2), 70);
        assert_eq!(start_position(&rows, 0, 2), 40);
    }

    #[test]
    fn a_resize_starts_from_the_lowest_position_with_deduplication() {
        let rows = [row(0, 2, 40), row(1, 2, 70)];
        assert_eq!(start_position(&rows, 0, 3), 40);
        assert_eq!(start_position(&rows, 2, 3), 40);
        // Shrinking: the new member 0 also starts from the lowest.
        let rows = [row(0, 3, 90), row(1, 3, 20), row(2, 3, 55)];
        assert_eq!(start_position(&rows, 0, 2), 20);
    }

    #[test]
    fn stale_rows_go_only_once_the_new_size_is_complete() {
        let rows = [row(0, 3, 100), row(1, 3, 80), row(2, 2, 50), row(0, 2, 10)];
        // Member 2 of size 3 has not saved yet (its row is of size 2).
        assert_eq!(stale_floor(&rows, 3), None);
        let rows = [row(0, 3, 100), row(1, 3, 80), row(2, 3, 120), row(3, 2, 50)];
        assert_eq!(stale_floor(&rows, 3), Some(80));
        assert_eq!(purge_floor(&rows, 3), Some(50));
    }

    #[test]
    fn a_resize_records_every_new_member_at_the_lowest_position() {
        assert_eq!(
            missing_rows(&[], 2),
            Some(vec![row(0, 2, 0), row(1, 2, 0)]),
            "a new group: everyone from the beginning"
        );
        let rows = [row(0, 2, 40), row(1, 2, 70)];
        assert_eq!(
            missing_rows(&rows, 3),
            Some(vec![row(0, 3, 40), row(1, 3, 40), row(2, 3, 40)])
        );
        // Member 0 already saved with the new size; the others get the lowest position.
        let rows = [row(0, 3, 90), row(1, 2, 70), row(2, 3, 95)];
        assert_eq!(missing_rows(&rows, 3), Some(vec![row(1, 3, 70)]));
        let rows = [row(0, 3, 90), row(1, 3, 70), row(2, 3, 95)];
        assert_eq!(missing_rows(&rows, 3), None);
        // Once written, every member resumes from its own row.
        let rows = [row(0, 3, 40), row(1, 3, 40), row(2, 3, 40)];
        assert_eq!(start_position(&rows, 2, 3), 40);
    }

    #[test]
    fn a_member_of_the_old_size_never_moves_the_new_sizes_rows() {
        // Rolling restart from 2 to 3: the rows of size 3 were recorded at 10 (where member
        // 0 of 2 stopped); members 0 and 2 of 3 moved on to 50, and member 1 of 2, still
        // running, saved 50 too. Member 1 of 3 resumes from its own row: the events of its
        // share between 10 and 50 that were member 0 of 2's are nobody else's.
        let rows = [
            row(0, 2, 10),
            row(1, 2, 50),
            row(0, 3, 50),
            row(1, 3, 10),
            row(2, 3, 50),
        ];
        assert_eq!(missing_rows(&rows, 3), None);
        assert_eq!(start_position(&rows, 1, 3), 10);
        assert_eq!(start_position(&rows, 1, 2), 50);
        // The old rows stay until every member of size 3 is past them.
        assert_eq!(stale_floor(&rows, 3), Some(10));
        assert_eq!(purge_floor(&rows, 3), Some(10));
    }

    #[test]
    fn a_member_that_never_saved_starts_at_the_beginning() {
        // Members 0 and 1 saved, member 2 died before its first save (same size): the
        // events of its share below the others' positions were handled by nobody.
        let rows = [row(0, 3, 8), row(1, 3, 7)];
        assert_eq!(start_position(&rows, 2, 3), 0);
        // ...and nothing may be purged while it has no position.
        assert_eq!(purge_floor(&rows, 3), None);
        let rows = [row(0, 3, 8), row(1, 3, 7), row(2, 3, 3)];
        assert_eq!(purge_floor(&rows, 3), Some(3));
    }
}
