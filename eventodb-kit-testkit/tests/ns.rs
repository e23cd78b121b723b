//! `ns.*` and `sys.*` on the wire, with the real server's placeholder values.

mod common;

use common::{namespace, rpc, rpc_as, unique, write};
use eventodb_kit_testkit::TestServer;
use serde_json::Value;

fn json(body: &str) -> Value {
    serde_json::from_str(body).expect("json")
}

#[tokio::test]
async fn create_info_list_delete() {
    let server = TestServer::start().await.unwrap();
    let name = unique("tenant-");
    let a = rpc(
        &server,
        &format!(r#"["ns.create", "{name}", {{"description": "T & co", "metadata": {{}}}}]"#),
    )
    .await;
    assert_eq!(a.status, 200);
    let created = json(&a.body);
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("ns_") && token.len() > 70);
    assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(
        a.body.starts_with("{\"createdAt\":"),
        "sorted keys: {}",
        a.body
    );

    let a = rpc(&server, &format!(r#"["ns.create", "{name}"]"#)).await;
    assert_eq!(
        (a.status, a.body.clone()),
        (
            409,
            format!(
                "{{\"error\":{{\"code\":\"NAMESPACE_EXISTS\",\"message\":\"Namespace '{name}' already exists\"}}}}\n"
            )
        )
    );

    for _ in 0..5 {
        rpc_as(
            &server,
            Some(&token),
            r#"["stream.write", "a-1", {"type": "T", "data": {}}]"#,
        )
        .await;
    }
    let info = json(
        &rpc(&server, &format!(r#"["ns.info", "{name}"]"#))
            .await
            .body,
    );
    assert_eq!(info["messageCount"], 5);
    assert_eq!(info["streamCount"], 0);
    assert_eq!(info["lastActivity"], Value::Null);
    assert_eq!(info["description"], "T & co");

    let list = json(&rpc(&server, r#"["ns.list"]"#).await.body);
    let entries = list.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["namespace"], name.as_str(), "newest first");
    assert_eq!(entries[0]["messageCount"], 0);
    assert_eq!(entries[1]["namespace"], "default");

    let a = rpc_as(
        &server,
        Some(&token),
        &format!(r#"["ns.delete", "{name}"]"#),
    )
    .await;
    let deleted = json(&a.body);
    assert_eq!(deleted["messagesDeleted"], 0);
    assert_eq!(deleted["namespace"], name.as_str());
    let a = rpc(&server, &format!(r#"["ns.delete", "{name}"]"#)).await;
    assert_eq!(
        (a.status, a.body.clone()),
        (
            404,
            format!(
                "{{\"error\":{{\"code\":\"NAMESPACE_NOT_FOUND\",\"message\":\"Namespace '{name}' not found\"}}}}\n"
            )
        )
    );
    let a = rpc(&server, &format!(r#"["ns.info", "{name}"]"#)).await;
    assert_eq!(a.status, 404);
    // The deleted namespace's token no longer authenticates.
    assert_eq!(
        rpc_as(&server, Some(&token), r#"["sys.health"]"#)
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn create_with_a_custom_token() {
    let server = TestServer::start().await.unwrap();
    let zeros = "0".repeat(64);
    let token = format!("ns_Y3VzdG9t_{zeros}"); // "custom"
    let a = rpc(
        &server,
        &format!(r#"["ns.create", "custom", {{"token": "{token}"}}]"#),
    )
    .await;
    assert_eq!(json(&a.body)["token"], token.as_str());
    assert_eq!(
        rpc_as(&server, Some(&token), r#"["sys.version"]"#)
            .await
            .status,
        200
    );
    let a = rpc(
        &server,
        &format!(r#"["ns.create", "other", {{"token": "{token}"}}]"#),
    )
    .await;
    assert_eq!(
        a.body,
        "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"Token is for namespace 'custom', not 'other'\"}}\n"
    );
}

#[tokio::test]
async fn streams_and_categories() {
    let server = TestServer::start().await.unwrap();
    let token = namespace(&server, &unique("ns-")).await;
    let empty = rpc_as(&server, Some(&token), r#"["ns.streams"]"#).await;
    assert_eq!(empty.body, "[]\n");
    assert_eq!(
        rpc_as(&server, Some(&token), r#"["ns.categories"]"#)
            .await
            .body,
        "[]\n"
    );
    for stream in [
        "account-1",
        "account-2",
        "account-2",
        "order-1",
        "account:command-1",
        "pfxba-1",
    ] {
        let a = rpc_as(
            &server,
            Some(&token),
            &format!(r#"["stream.write", "{stream}", {{"type": "T", "data": {{}}}}]"#),
        )
        .await;
        assert_eq!(a.status, 200);
    }
    let names = |body: &str| -> Vec<String> {
        json(body)
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["stream"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = rpc_as(&server, Some(&token), r#"["ns.streams", {}]"#)
        .await
        .body;
    assert_eq!(
        names(&all),
        [
            "account-1",
            "account-2",
            "account:command-1",
            "order-1",
            "pfxba-1"
        ]
    );
    let first = &json(&all)[1];
    assert_eq!(first["version"], 1);
    let activity = first["lastActivity"].as_str().unwrap();
    assert!(
        activity.len() == 20 && activity.ends_with('Z'),
        "{activity}"
    );
    let acc = rpc_as(
        &server,
        Some(&token),
        r#"["ns.streams", {"prefix": "ACC"}]"#,
    )
    .await
    .body;
    assert_eq!(
        names(&acc),
        ["account-1", "account-2", "account:command-1"],
        "SQLite LIKE is case-insensitive"
    );
    let page = rpc_as(
        &server,
        Some(&token),
        r#"["ns.streams", {"cursor": "account-2", "limit": 2.7}]"#,
    )
    .await
    .body;
    assert_eq!(names(&page), ["account:command-1", "order-1"]);
    let wild = rpc_as(
        &server,
        Some(&token),
        r#"["ns.streams", {"prefix": "pfx_"}]"#,
    )
    .await
    .body;
    assert_eq!(names(&wild), ["pfxba-1"]);
    let cats = rpc_as(&server, Some(&token), r#"["ns.categories"]"#)
        .await
        .body;
    assert_eq!(
        cats,
        "[{\"category\":\"account\",\"messageCount\":3,\"streamCount\":2},{\"category\":\"account:command\",\"messageCount\":1,\"streamCount\":1},{\"category\":\"order\",\"messageCount\":1,\"streamCount\":1},{\"category\":\"pfxba\",\"messageCount\":1,\"streamCount\":1}]\n"
    );
}

#[tokio::test]
async fn namespaces_are_isolated() {
    let server = TestServer::start().await.unwrap();
    let other = namespace(&server, &unique("iso-")).await;
    write(&server, "shared-1").await;
    assert_eq!(
        rpc_as(&server, Some(&other), r#"["stream.get", "shared-1"]"#)
            .await
            .body,
        "[]\n"
    );
    let a = rpc_as(
        &server,
        Some(&other),
        r#"["stream.write", "shared-1", {"type": "T", "data": {}}]"#,
    )
    .await;
    assert_eq!(
        a.body, "{\"globalPosition\":1,\"position\":0}\n",
        "global positions are per namespace"
    );
}
