//! Error paths: each is a clear message and exit code 1 (an operational error) or 2 (a
//! usage error), never a panic, a raw sqlx dump, a password or a token.

mod support;

use support::{cli, sqlite};

#[tokio::test]
async fn no_database_url() {
    let message = cli(&[], &["outbox", "status", "--json"])
        .await
        .failed("no_database");
    assert!(message.contains("DATABASE_URL"), "{message}");
}

#[tokio::test]
async fn unsupported_scheme() {
    let message = cli(
        &[("DATABASE_URL", "mysql://root@127.0.0.1/app")],
        &["consumer", "list", "--json"],
    )
    .await
    .failed("invalid_database_url");
    assert!(
        message.contains("`mysql:`") && message.contains("postgres://"),
        "{message}"
    );
    cli(
        &[("DATABASE_URL", "/var/lib/app.db")],
        &["migrate", "--json"],
    )
    .await
    .failed("invalid_database_url");
}

#[tokio::test]
async fn malformed_postgres_url_hides_the_password() {
    let run = cli(
        &[(
            "DATABASE_URL",
            "postgres://app:hunter2@127.0.0.1:5432/app?sslmode=sometimes",
        )],
        &["outbox", "status", "--json"],
    )
    .await;
    let message = run.failed("invalid_database_url");
    assert!(message.contains("sometimes"), "{message}");
    assert!(
        !run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"),
        "{run:?}"
    );
}

#[tokio::test]
async fn unreachable_postgres_names_host_not_password() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let run = cli(
        &[("DATABASE_URL", "postgres://app:hunter2@127.0.0.1:1/app")],
        &["consumer", "list", "--json"],
    )
    .await;
    let message = run.failed("unreachable");
    assert!(
        message.contains("127.0.0.1:1") && message.contains("\"app\""),
        "{message}"
    );
    assert!(
        !run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"),
        "{run:?}"
    );
}

#[tokio::test]
async fn missing_sqlite_file_points_at_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("absent.db").display());
    let message = cli(&[("DATABASE_URL", &url)], &["outbox", "status", "--json"])
        .await
        .failed("unreachable");
    assert!(
        message.contains("does not exist") && message.contains("migrate"),
        "{message}"
    );
    assert!(
        !dir.path().join("absent.db").exists(),
        "only migrate creates the file"
    );
}

#[tokio::test]
async fn missing_tables_say_run_migrate() {
    let db = sqlite(false).await;
    for args in [
        &["outbox", "status", "--json"][..],
        &["outbox", "purge", "--json"],
        &["consumer", "list", "--json"],
        &["consumer", "parked", "--json"],
    ] {
        let run = cli(&[("DATABASE_URL", &db.url)], args).await;
        let message = run.failed("missing_tables");
        assert!(
            message.contains("run `eventodb-kit migrate` first"),
            "{message}"
        );
        assert!(
            !run.stderr.contains("Database(") && !run.stderr.contains("SqliteError"),
            "{run:?}"
        );
    }
    // Without --json: the message on stderr, nothing on stdout.
    let run = cli(&[("DATABASE_URL", &db.url)], &["outbox", "status"]).await;
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(
        run.stderr.contains("run `eventodb-kit migrate` first"),
        "{run:?}"
    );
    db.cleanup().await;
}

#[tokio::test]
async fn malformed_token_is_refused_and_never_printed() {
    let db = sqlite(true).await;
    let secret = "ns_ZGVmYXVsdA_notsohexsecretvalue";
    for env in [
        vec![
            ("DATABASE_URL", db.url.as_str()),
            ("EVENTODB_TOKEN", secret),
        ],
        vec![("DATABASE_URL", db.url.as_str())],
    ] {
        let mut args = vec!["consumer", "list", "--json"];
        if env.len() == 1 {
            args.extend(["--token", secret]);
        }
        let run = cli(&env, &args).await;
        let message = run.failed("invalid_token");
        assert!(message.contains("EVENTODB_TOKEN"), "{message}");
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{run:?}"
        );
        assert!(
            !run.stdout.contains("notsohex") && !run.stderr.contains("notsohex"),
            "{run:?}"
        );
    }
    db.cleanup().await;
}

#[tokio::test]
async fn bad_eventodb_url() {
    let db = sqlite(true).await;
    cli(
        &[("DATABASE_URL", &db.url), ("EVENTODB_URL", "not a url")],
        &["consumer", "list", "--json"],
    )
    .await
    .failed("invalid_eventodb_url");
    db.cleanup().await;
}

#[tokio::test]
async fn usage_errors_exit_2() {
    for args in [
        &["bogus"][..],
        &["outbox"],
        &["outbox", "retry"],
        &["consumer", "release"],
        &["outbox", "purge", "--older-than", "soon"],
    ] {
        let run = cli(&[("DATABASE_URL", "sqlite::memory:")], args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");
    }
    // With --json, stdout still gets one JSON document.
    let run = cli(
        &[("DATABASE_URL", "sqlite::memory:")],
        &["outbox", "discard", "garbage", "--json"],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    let document: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(document["error"]["kind"], "usage", "{run:?}");
    assert!(
        document["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'garbage'"),
        "{run:?}"
    );
    let both = cli(
        &[("DATABASE_URL", "sqlite::memory:")],
        &["outbox", "retry", "--all", "--without-expected-version"],
    )
    .await;
    assert_eq!(both.code, 2, "a mass override is refused: {both:?}");
    // Help shown because the command is incomplete is still a wrong command line.
    for args in [&[][..], &["outbox"]] {
        let run = cli(&[], args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        // With --json, its message says what is wrong, not what the tool is.
        let json = [args, &["--json"]].concat();
        let run = cli(&[], &json).await;
        assert_eq!(run.code, 2, "{json:?}: {run:?}");
        let document: serde_json::Value =
            serde_json::from_str(&run.stdout).expect("one JSON document");
        assert_eq!(document["error"]["kind"], "usage", "{run:?}");
        let message = document["error"]["message"].as_str().unwrap();
        assert!(message.contains("requires a subcommand"), "{message}");
    }
    let help = cli(&[], &["--help"]).await;
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("migrate") && help.stdout.contains("consumer"));
}

/// On PostgreSQL the message names the schema the tables were looked for in: an operator who
/// left `search_path` out of the URL sees it before running `migrate` in the wrong one.
#[tokio::test]
async fn missing_tables_name_the_postgres_schema() {
    let Some(db) = support::postgres(false).await else {
        return;
    };
    let schema = db
        .url
        .rsplit("search_path%3D")
        .next()
        .expect("a schema in the URL")
        .to_owned();
    let message = cli(
        &[("DATABASE_URL", &db.url)],
        &["outbox", "status", "--json"],
    )
    .await
    .failed("missing_tables");
    assert!(message.contains(&format!("schema {schema:?}")), "{message}");
    let nowhere = db.url.replace(&schema, "no_such_schema_here");
    let message = cli(
        &[("DATABASE_URL", &nowhere)],
        &["outbox", "status", "--json"],
    )
    .await
    .failed("missing_tables");
    assert!(
        message.contains("no schema of the search_path exists"),
        "{message}"
    );
    db.cleanup().await;
}
