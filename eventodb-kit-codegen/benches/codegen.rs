//! `cargo bench -p eventodb-kit-codegen --bench codegen`
//!
//! 1. Generation time (read, check, emit, prettyplease) for 50 and 500 realistic event schemas
//!    (nested object, enum, formats, pattern, a shared `$ref`): the 50 are the baseline, so
//!    the figures show how generation scales.
//! 2. Incremental rebuild of a crate with 200 events (build.rs + `include_events!`), driven
//!    with `cargo build` in a temporary crate with a warm target dir: nothing touched (the
//!    baseline: Cargo's own overhead), one schema's mtime touched (build script reruns, output
//!    unchanged), one schema's content changed (the crate recompiles).
//!
//! Ends with one JSON line of figures. `CODEGEN_BENCH_ROUNDS` (default 3) sets the rebuild
//! rounds (medians are reported). Set `CODEGEN_BENCH_SKIP_REBUILD=1` to skip part 2; the
//! first run of part 2 compiles eventodb-kit's dependencies into the warm target dir and is
//! bounded by a timeout (its figures are then `null`).

use eventodb_kit_codegen::Settings;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ADDRESS: &str = r#"{
  "title": "Address",
  "type": "object",
  "required": ["street", "city", "country"],
  "properties": {
    "street": { "type": "string", "minLength": 1 },
    "city": { "type": "string" },
    "country": { "type": "string", "pattern": "^[A-Z]{2}$" }
  },
  "additionalProperties": false
}"#;

fn event_schema(index: usize, note: &str) -> String {
    format!(
        r#"{{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Event{index}Happened",
  "description": "Synthetic event {index}. {note}",
  "x-eventodb": {{ "category": "cat{category}", "stream": "cat{category}-{{id}}" }},
  "type": "object",
  "required": ["id", "name", "status", "created_at"],
  "properties": {{
    "id": {{ "type": "string", "format": "uuid" }},
    "name": {{ "type": "string", "minLength": 1, "maxLength": 50, "pattern": "^[a-z ]+$" }},
    "count": {{ "type": "integer", "minimum": 0 }},
    "price": {{ "type": "number", "exclusiveMinimum": 0 }},
    "status": {{ "enum": ["new", "active", "closed"] }},
    "tags": {{ "type": "array", "items": {{ "type": "string" }}, "uniqueItems": true }},
    "email": {{ "type": "string", "format": "email" }},
    "address": {{ "$ref": "common/address.json" }},
    "details": {{
      "type": "object",
      "properties": {{ "note": {{ "type": "string" }}, "level": {{ "type": "integer", "maximum": 9 }} }}
    }},
    "created_at": {{ "type": "string", "format": "date-time" }}
  }},
  "additionalProperties": false
}}"#,
        category = index % 10
    )
}

fn write_schemas(dir: &Path, count: usize) {
    std::fs::create_dir_all(dir.join("common")).expect("schema dir");
    std::fs::write(dir.join("common/address.json"), ADDRESS).expect("write");
    for index in 0..count {
        let path = dir.join(format!("event_{index:04}.json"));
        std::fs::write(path, event_schema(index, "")).expect("write");
    }
}

/// CPU time of this process so far (user + system), from `/proc/self/stat` (Linux; 100 ticks
/// per second). Less sensitive than wall time to other work on a shared machine.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Median wall time of `runs` generations from a folder of `count` schemas, and the mean CPU
/// time per run.
fn generation(count: usize, runs: usize) -> (Duration, Option<Duration>) {
    let dir = tempfile::tempdir().expect("temp dir");
    write_schemas(dir.path(), count);
    let cpu_start = cpu_time();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let code = Settings::new(dir.path())
                .generate()
                .expect("generates")
                .to_pretty_string()
                .expect("formats");
            assert!(code.len() > count * 100);
            start.elapsed()
        })
        .collect();
    let cpu = cpu_start
        .zip(cpu_time())
        .map(|(start, end)| (end - start) / runs as u32);
    times.sort();
    (times[runs / 2], cpu)
}

struct Rebuild {
    noop: Duration,
    touched: Duration,
    changed: Duration,
}

fn cargo_build(dir: &Path, target: &Path, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut child = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(["build", "--quiet", "--offline"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cargo runs");
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.success().then(|| start.elapsed());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("cargo build exceeded {limit:?}; stopped");
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rebuild(events: usize) -> Option<Rebuild> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let workspace = workspace.canonicalize().expect("workspace");
    // A fixed place, so the target dir stays warm from one run to the next.
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("codegen-bench-rebuild");
    let dir = base.join("crate");
    let target = base.join("target");
    let schemas = dir.join("schemas");
    let _ = std::fs::remove_dir_all(&schemas);
    std::fs::create_dir_all(dir.join("src")).expect("crate dir");
    write_schemas(&schemas, events);
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            r#"[package]
name = "codegen-bench-events"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
eventodb-kit = {{ path = "{root}/eventodb-kit" }}

[build-dependencies]
eventodb-kit-codegen = {{ path = "{root}/eventodb-kit-codegen" }}

[workspace]
"#,
            root = workspace.display()
        ),
    )
    .expect("manifest");
    std::fs::write(
        dir.join("build.rs"),
        "fn main() {\n    eventodb_kit_codegen::Settings::new(\"schemas\").run();\n}\n",
    )
    .expect("build.rs");
    std::fs::write(
        dir.join("src/lib.rs"),
        "//! Benchmark crate.\npub mod events {\n    eventodb_kit::include_events!();\n}\n",
    )
    .expect("lib.rs");
    // The workspace lock file: same dependency versions, nothing to resolve or download.
    std::fs::copy(workspace.join("Cargo.lock"), dir.join("Cargo.lock")).expect("lock file");

    eprintln!("rebuild: warming the target dir (the first run compiles dependencies)...");
    cargo_build(&dir, &target, Duration::from_secs(1500))?;
    let limit = Duration::from_secs(300);
    let touched_file = schemas.join("event_0007.json");
    let mut noop = Vec::new();
    let mut touched = Vec::new();
    let mut changed = Vec::new();
    let rounds: usize = std::env::var("CODEGEN_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3)
        .max(1);
    for round in 0..rounds {
        noop.push(cargo_build(&dir, &target, limit)?);
        // Same content, new mtime: the build script reruns and leaves the output untouched.
        std::thread::sleep(Duration::from_millis(1100));
        std::fs::write(&touched_file, event_schema(7, &format!("Note {round}."))).expect("touch");
        let _ = cargo_build(&dir, &target, limit)?;
        std::thread::sleep(Duration::from_millis(1100));
        std::fs::write(&touched_file, event_schema(7, &format!("Note {round}."))).expect("touch");
        touched.push(cargo_build(&dir, &target, limit)?);
        // A new description: the generated code changes and the crate recompiles.
        std::thread::sleep(Duration::from_millis(1100));
        std::fs::write(&touched_file, event_schema(7, &format!("Changed {round}.")))
            .expect("change");
        changed.push(cargo_build(&dir, &target, limit)?);
    }
    let median = |mut times: Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    Some(Rebuild {
        noop: median(noop),
        touched: median(touched),
        changed: median(changed),
    })
}

fn ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e4).round() / 10.0
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: keep it quick then.
    let quick = !std::env::args().any(|arg| arg == "--bench");
    let runs = if quick { 1 } else { 7 };
    let (small, small_cpu) = generation(50, runs);
    let (large, large_cpu) = generation(500, runs);
    println!(
        "generate: 50 schemas {:.1} ms, 500 schemas {:.1} ms wall ({:.2} ms per schema at 500); cpu {} / {} ms",
        ms(small),
        ms(large),
        ms(large) / 500.0,
        small_cpu.map_or("?".to_owned(), |d| format!("{:.0}", ms(d))),
        large_cpu.map_or("?".to_owned(), |d| format!("{:.0}", ms(d))),
    );
    let skip = quick || std::env::var_os("CODEGEN_BENCH_SKIP_REBUILD").is_some();
    let rebuild = if skip { None } else { rebuild(200) };
    if let Some(rebuild) = &rebuild {
        println!(
            "rebuild of a 200-event crate: nothing touched {:.2} s, schema touched (same content) {:.2} s, schema changed {:.2} s",
            rebuild.noop.as_secs_f64(),
            rebuild.touched.as_secs_f64(),
            rebuild.changed.as_secs_f64()
        );
    }
    let figure = |value: Option<f64>| value.map_or("null".to_owned(), |v| format!("{v:.1}"));
    println!(
        "{{\"bench\":\"codegen\",\"generate_50_ms\":{:.1},\"generate_500_ms\":{:.1},\"generate_50_cpu_ms\":{},\"generate_500_cpu_ms\":{},\"rebuild_events\":200,\"rebuild_noop_ms\":{},\"rebuild_touched_ms\":{},\"rebuild_changed_ms\":{}}}",
        ms(small),
        ms(large),
        figure(small_cpu.map(ms)),
        figure(large_cpu.map(ms)),
        figure(rebuild.as_ref().map(|r| ms(r.noop))),
        figure(rebuild.as_ref().map(|r| ms(r.touched))),
        figure(rebuild.as_ref().map(|r| ms(r.changed))),
    );
}
