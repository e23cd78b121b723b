//! Golden files: the code generated for each schema folder under `tests/schemas/` (and for the
//! workspace's `schemas/`) is committed under `tests/golden/` and compared on every run.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test -p eventodb-kit-codegen --test golden`.
//! The `tests/codegen-user` crate compiles every golden file with `#![deny(warnings)]`.

use eventodb_kit_codegen::Settings;
use std::path::{Path, PathBuf};

fn cases() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cases = vec![("workspace".to_owned(), root.join("../schemas"))];
    let mut dirs: Vec<_> = std::fs::read_dir(root.join("tests/schemas"))
        .expect("tests/schemas exists")
        .map(|entry| entry.expect("readable").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        cases.push((name, dir));
    }
    cases
}

#[test]
fn generated_code_matches_the_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let golden_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut mismatched = Vec::new();
    for (name, dir) in cases() {
        let code = Settings::new(&dir)
            .generate()
            .unwrap_or_else(|error| panic!("{name}: {error}"))
            .to_pretty_string()
            .expect("generated code parses");
        let path = golden_dir.join(format!("{name}.rs"));
        if update {
            std::fs::create_dir_all(&golden_dir).expect("golden dir");
            std::fs::write(&path, &code).expect("write golden");
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != code {
            mismatched.push(name);
        }
    }
    assert!(
        mismatched.is_empty(),
        "generated code differs from tests/golden for {mismatched:?}; \
         review and rerun with UPDATE_GOLDEN=1"
    );
}

#[test]
fn generation_is_deterministic() {
    for (name, dir) in cases() {
        let first = Settings::new(&dir)
            .generate()
            .expect("generates")
            .to_pretty_string();
        let second = Settings::new(&dir)
            .generate()
            .expect("generates")
            .to_pretty_string();
        assert_eq!(first.ok(), second.ok(), "{name}");
    }
}
