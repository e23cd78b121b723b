//! NS-001..018: namespaces (`ns.create/delete/list/info`) and their contents
//! (`ns.streams`, `ns.categories`).

use chrono::Utc;
use eventodb_kit::client::{NsCreateOptions, NsStreamsOptions, Token};
use eventodb_kit::{Error, ErrorCode};
use eventodb_kit_tests::{Env, unique_namespace};

use crate::util::write_n;

fn assert_code(err: &Error, code: ErrorCode, status: u16) {
    assert_eq!(err.code(), Some(&code), "{err:?}");
    assert_eq!(err.status(), Some(status), "{err:?}");
}

#[tokio::test]
async fn ns_001_create_with_description() {
    let env = Env::new().await;
    let namespace = unique_namespace();
    env.delete_on_drop(&namespace);
    let before = Utc::now() - chrono::Duration::seconds(5);
    let created = env
        .admin_client()
        .ns_create(
            &namespace,
            &NsCreateOptions::new().description("conformance"),
        )
        .await
        .unwrap();
    assert_eq!(created.namespace, namespace);
    assert!(created.token.expose_secret().starts_with("ns_"));
    assert_eq!(created.token.namespace(), namespace);
    assert!(created.created_at >= before, "{}", created.created_at);
    // The token works.
    let client = env.admin_client().with_token(created.token);
    assert!(client.ns_categories().await.unwrap().is_empty());
}

#[tokio::test]
async fn ns_002_create_with_custom_token() {
    let env = Env::new().await;
    let namespace = unique_namespace();
    env.delete_on_drop(&namespace);
    let token = Token::generate(&namespace).unwrap();
    let created = env
        .admin_client()
        .ns_create(&namespace, &NsCreateOptions::new().token(token.clone()))
        .await
        .unwrap();
    assert_eq!(created.token, token);
}

#[tokio::test]
async fn ns_003_create_existing() {
    let env = Env::new().await;
    let err = env
        .admin_client()
        .ns_create(env.namespace(), &NsCreateOptions::new())
        .await
        .unwrap_err();
    assert_code(&err, ErrorCode::NamespaceExists, 409);
}

#[tokio::test]
async fn ns_004_delete() {
    let env = Env::new().await;
    let (namespace, _) = env.create_namespace().await;
    let deleted = env.admin_client().ns_delete(&namespace).await.unwrap();
    assert_eq!(deleted.namespace, namespace);
    assert!(deleted.deleted_at <= Utc::now() + chrono::Duration::seconds(5));
    assert!(deleted.messages_deleted >= 0);
    let err = env.admin_client().ns_info(&namespace).await.unwrap_err();
    assert_code(&err, ErrorCode::NamespaceNotFound, 404);
}

#[tokio::test]
async fn ns_005_delete_missing() {
    let env = Env::new().await;
    let err = env
        .admin_client()
        .ns_delete(&unique_namespace())
        .await
        .unwrap_err();
    assert_code(&err, ErrorCode::NamespaceNotFound, 404);
}

#[tokio::test]
async fn ns_006_list() {
    let env = Env::new().await;
    let list = env.admin_client().ns_list().await.unwrap();
    let mine = list
        .iter()
        .find(|n| n.namespace == env.namespace())
        .expect("the test's namespace is listed");
    assert_eq!(mine.description, "eventodb-kit test");
    assert!(mine.message_count >= 0);
    assert!(mine.created_at <= Utc::now() + chrono::Duration::seconds(5));
}

#[tokio::test]
async fn ns_007_info_after_five_writes() {
    let env = Env::new().await;
    write_n(&env.client(), "test-1", 3).await;
    write_n(&env.client(), "other-1", 2).await;
    let info = env.admin_client().ns_info(env.namespace()).await.unwrap();
    assert_eq!(info.namespace, env.namespace());
    assert_eq!(info.message_count, 5);
}

#[tokio::test]
async fn ns_008_info_missing() {
    let env = Env::new().await;
    let err = env
        .admin_client()
        .ns_info(&unique_namespace())
        .await
        .unwrap_err();
    assert_code(&err, ErrorCode::NamespaceNotFound, 404);
}

/// Writes `account-1` (3), `account-2` (1), `account-10` (2), `order-1` (1),
/// `order:command-1` (1).
async fn populate(env: &Env) {
    let client = env.client();
    for (stream, n) in [
        ("account-1", 3),
        ("account-2", 1),
        ("account-10", 2),
        ("order-1", 1),
        ("order:command-1", 1),
    ] {
        write_n(&client, stream, n).await;
    }
}

fn names(streams: &[eventodb_kit::client::StreamSummary]) -> Vec<&str> {
    streams.iter().map(|s| s.stream.as_str()).collect()
}

#[tokio::test]
async fn ns_009_streams_sorted_by_name() {
    let env = Env::new().await;
    populate(&env).await;
    let streams = env
        .client()
        .ns_streams(&NsStreamsOptions::new())
        .await
        .unwrap();
    assert_eq!(
        names(&streams),
        vec![
            "account-1",
            "account-10",
            "account-2",
            "order-1",
            "order:command-1"
        ]
    );
}

#[tokio::test]
async fn ns_010_streams_prefix_filter() {
    let env = Env::new().await;
    populate(&env).await;
    let client = env.client();
    let streams = client
        .ns_streams(&NsStreamsOptions::new().prefix("account-1"))
        .await
        .unwrap();
    assert_eq!(names(&streams), vec!["account-1", "account-10"]);
    let streams = client
        .ns_streams(&NsStreamsOptions::new().prefix("order"))
        .await
        .unwrap();
    assert_eq!(names(&streams), vec!["order-1", "order:command-1"]);
}

#[tokio::test]
async fn ns_011_streams_limit() {
    let env = Env::new().await;
    populate(&env).await;
    let streams = env
        .client()
        .ns_streams(&NsStreamsOptions::new().limit(2))
        .await
        .unwrap();
    assert_eq!(names(&streams), vec!["account-1", "account-10"]);
}

#[tokio::test]
async fn ns_012_streams_cursor_is_exclusive() {
    let env = Env::new().await;
    populate(&env).await;
    let client = env.client();
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut options = NsStreamsOptions::new().limit(2);
        if let Some(c) = &cursor {
            options = options.cursor(c.clone());
        }
        let page = client.ns_streams(&options).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        cursor = page.last().map(|s| s.stream.clone());
        all.extend(page.into_iter().map(|s| s.stream));
    }
    assert_eq!(
        all,
        vec![
            "account-1",
            "account-10",
            "account-2",
            "order-1",
            "order:command-1"
        ]
    );
}

#[tokio::test]
async fn ns_013_streams_version_and_last_activity() {
    let env = Env::new().await;
    let before = Utc::now() - chrono::Duration::seconds(5);
    populate(&env).await;
    let streams = env
        .client()
        .ns_streams(&NsStreamsOptions::new())
        .await
        .unwrap();
    let versions: Vec<(&str, i64)> = streams
        .iter()
        .map(|s| (s.stream.as_str(), s.version))
        .collect();
    assert_eq!(
        versions,
        vec![
            ("account-1", 2),
            ("account-10", 1),
            ("account-2", 0),
            ("order-1", 0),
            ("order:command-1", 0)
        ]
    );
    for s in &streams {
        assert!(
            s.last_activity >= before
                && s.last_activity <= Utc::now() + chrono::Duration::seconds(5)
        );
    }
}

#[tokio::test]
async fn ns_014_streams_of_an_empty_namespace() {
    let env = Env::new().await;
    assert!(
        env.client()
            .ns_streams(&NsStreamsOptions::new())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn ns_015_streams_invalid_limit() {
    let env = Env::new().await;
    for limit in [0, 1001, -1] {
        let err = env
            .client()
            .ns_streams(&NsStreamsOptions::new().limit(limit))
            .await
            .unwrap_err();
        assert_code(&err, ErrorCode::InvalidRequest, 400);
        assert!(
            err.to_string().contains("limit must be between 1 and 1000"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn ns_016_categories_sorted() {
    let env = Env::new().await;
    populate(&env).await;
    let categories = env.client().ns_categories().await.unwrap();
    let names: Vec<&str> = categories.iter().map(|c| c.category.as_str()).collect();
    assert_eq!(names, vec!["account", "order", "order:command"]);
}

#[tokio::test]
async fn ns_017_categories_stream_and_message_counts() {
    let env = Env::new().await;
    populate(&env).await;
    let categories = env.client().ns_categories().await.unwrap();
    let account = &categories[0];
    assert_eq!((account.stream_count, account.message_count), (3, 6));
    let order = &categories[1];
    assert_eq!(order.stream_count, 1);
    // Pebble also counts `order:command` messages under `order` (protocol 1.6).
    assert!(
        order.message_count == 1 || order.message_count == 2,
        "{order:?}"
    );
    assert_eq!(
        (categories[2].stream_count, categories[2].message_count),
        (1, 1)
    );
}

#[tokio::test]
async fn ns_018_categories_of_an_empty_namespace() {
    let env = Env::new().await;
    assert!(env.client().ns_categories().await.unwrap().is_empty());
}
