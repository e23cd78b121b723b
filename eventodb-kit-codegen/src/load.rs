//! Reading the schema folder: every `*.json` file, recursively, in a stable order; dot-files
//! and dot-folders are skipped.

use crate::error::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The parsed schema files, keyed by path relative to the folder with `/` separators.
#[derive(Debug, Default)]
pub(crate) struct Folder {
    /// `user_created.json`, `common/address.json`, ...
    pub(crate) files: BTreeMap<String, Value>,
    /// Every folder and file read, for `cargo:rerun-if-changed`.
    pub(crate) watched: Vec<PathBuf>,
}

impl Folder {
    /// Reads `root` recursively.
    pub(crate) fn read(root: &Path) -> Result<Self> {
        let mut folder = Self::default();
        folder.read_dir(root, root)?;
        Ok(folder)
    }

    /// A folder from in-memory sources (tests, benchmarks).
    pub(crate) fn from_sources<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self> {
        let mut folder = Self::default();
        for (name, text) in sources {
            let value = serde_json::from_str(text).map_err(|source| Error::Json {
                path: PathBuf::from(name),
                source,
            })?;
            folder.files.insert(name.to_owned(), value);
        }
        Ok(folder)
    }

    fn read_dir(&mut self, root: &Path, dir: &Path) -> Result<()> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        self.watched.push(dir.to_path_buf());
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            entries.push(entry.map_err(io(dir))?.path());
        }
        entries.sort();
        for path in entries {
            // Dot-files are an editor's or a tool's, not schemas: Emacs's lock file
            // `.#x.json` is often a dangling symlink, which would fail the build.
            if path
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            if path.is_dir() {
                self.read_dir(root, &path)?;
            } else if path.extension().is_some_and(|ext| ext == "json") {
                let text = std::fs::read_to_string(&path).map_err(io(&path))?;
                let value = serde_json::from_str(&text).map_err(|source| Error::Json {
                    path: path.clone(),
                    source,
                })?;
                let relative = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .components()
                    .map(|part| part.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                self.files.insert(relative, value);
                self.watched.push(path);
            }
        }
        Ok(())
    }
}

/// Resolves `reference` (a relative file path, no fragment) against the folder of `from`.
/// Returns `None` when it climbs out of the schema folder.
pub(crate) fn join(from: &str, reference: &str) -> Option<String> {
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for part in reference.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_relative_paths() {
        assert_eq!(
            join("a.json", "common/b.json").as_deref(),
            Some("common/b.json")
        );
        assert_eq!(
            join("x/a.json", "../common/b.json").as_deref(),
            Some("common/b.json")
        );
        assert_eq!(join("x/a.json", "./b.json").as_deref(), Some("x/b.json"));
        assert_eq!(join("a.json", "../b.json"), None);
    }
}
