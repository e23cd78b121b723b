//! Which real backend's rules apply where EventoDB's backends differ (protocol §9).

/// The backend whose client-visible rules the server follows where they differ.
///
/// [`Backend::Sqlite`] (the default) is what the real server runs in test mode.
/// [`Backend::Pebble`] reproduces what the Pebble backend was observed to do: any string is
/// accepted as an id and duplicates are stored; a version conflict carries no details;
/// `batchSize` 0 or negative (other than -1) means 1000; `stream.get` applies both
/// `position` and `globalPosition`; `category.get` ignores `globalPosition`, matches
/// correlation by category, and ignores `consumerGroup` for the `""` category; `stream.last`
/// with `type: ""` finds nothing; `ns.streams` prefixes are literal and case-sensitive;
/// `ns.categories` also counts `C:...` categories under `C`; `ns.list` is sorted by name;
/// times have nanoseconds; `category.get` of a named category looks at only the first
/// `batchSize` messages from the position (`batchSize × size` with a consumer group) and
/// filters those by group and correlation, so it may answer fewer than `batchSize`, even
/// none, while later messages match. Not reproduced: the crash on `category.get` with
/// `batchSize: -1` (it is unlimited here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Backend {
    /// The SQLite backend (test mode's reference).
    #[default]
    Sqlite,
    /// The Pebble backend.
    Pebble,
}

impl Backend {
    /// `batchSize` as the store applies it: SQLite has no limit for values <= 0, Pebble
    /// uses 1000 for 0 and negatives other than -1.
    pub(crate) fn effective_batch_size(self, batch_size: i64) -> i64 {
        match self {
            Backend::Pebble if batch_size == 0 || batch_size < -1 => 1000,
            _ => batch_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes() {
        assert_eq!(Backend::Sqlite.effective_batch_size(0), 0);
        assert_eq!(Backend::Sqlite.effective_batch_size(-5), -5);
        assert_eq!(Backend::Pebble.effective_batch_size(0), 1000);
        assert_eq!(Backend::Pebble.effective_batch_size(-5), 1000);
        assert_eq!(Backend::Pebble.effective_batch_size(-1), -1);
        assert_eq!(Backend::Pebble.effective_batch_size(7), 7);
    }
}
