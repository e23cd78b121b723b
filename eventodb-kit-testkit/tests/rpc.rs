//! `/rpc` on the wire: envelope, status codes, exact bodies.

mod common;

use common::{answer, http, namespace, rpc, rpc_as};
use eventodb_kit_testkit::TestServer;

#[tokio::test]
async fn write_then_read_exact_bodies() {
    let server = TestServer::start().await.unwrap();
    let w = rpc(
        &server,
        r#"["stream.write", "account-1", {"type": "Opened", "data": {"b": 1, "a": "<x>"}}]"#,
    )
    .await;
    assert_eq!(
        (w.status, w.content_type.as_str()),
        (200, "application/json")
    );
    assert_eq!(w.body, "{\"globalPosition\":1,\"position\":0}\n");
    let id = "550e8400-e29b-41d4-a716-446655440000";
    let w = rpc(
        &server,
        &format!(r#"["stream.write", "account-1", {{"type": "T", "data": {{}}, "metadata": {{"m": 1.0}}}}, {{"id": "{id}", "expectedVersion": 0}}]"#),
    )
    .await;
    assert_eq!(w.body, "{\"globalPosition\":2,\"position\":1}\n");
    let r = rpc(&server, r#"["stream.get", "account-1"]"#).await;
    let rows: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let t0 = rows[0][6].as_str().unwrap().to_owned();
    let t1 = rows[1][6].as_str().unwrap().to_owned();
    let server_id = rows[0][0].as_str().unwrap().to_owned();
    assert_eq!(
        server_id.as_bytes()[14],
        b'7',
        "server ids are UUIDv7: {server_id}"
    );
    assert_eq!(
        r.body,
        format!(
            "[[\"{server_id}\",\"Opened\",0,1,{{\"a\":\"\\u003cx\\u003e\",\"b\":1}},null,\"{t0}\"],[\"{id}\",\"T\",1,2,{{}},{{\"m\":1}},\"{t1}\"]]\n"
        )
    );
    assert!(t0.ends_with('Z') && t0.len() == 20, "whole seconds: {t0}");
}

#[tokio::test]
async fn every_json_vector_round_trips_through_the_wire() {
    let server = TestServer::start().await.unwrap();
    let raw = include_str!("vectors/json-roundtrip.json");
    let file: serde_json::Value = serde_json::from_str(raw).unwrap();
    for (i, v) in file["vectors"].as_array().unwrap().iter().enumerate() {
        let sent = v["sent"].as_str().unwrap();
        let stream = format!("vec-{i}");
        let w = rpc(
            &server,
            &format!(r#"["stream.write", "{stream}", {{"type": "V", "data": {sent}}}]"#),
        )
        .await;
        assert_eq!(w.status, 200, "{}", w.body);
        let r = rpc(&server, &format!(r#"["stream.get", "{stream}"]"#)).await;
        let returned = v["returned"].as_str().unwrap();
        assert!(
            r.body.contains(&format!(",{returned},null,")),
            "sent {sent}: got {}",
            r.body
        );
    }
}

#[tokio::test]
async fn envelope_errors_and_status_codes() {
    let server = TestServer::start().await.unwrap();
    let a = rpc(&server, "{}").await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.body,
        "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"Malformed JSON request\",\"details\":{\"error\":\"json: cannot unmarshal object into Go value of type []interface {}\"}}}\n"
    );
    let a = rpc(&server, r#"["stream.get", "s", {"batchSize": 1e400}]"#).await;
    assert_eq!(
        a.body,
        "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"Malformed JSON request\",\"details\":{\"error\":\"json: cannot unmarshal number 1e400 into Go value of type float64\"}}}\n"
    );
    let a = rpc(&server, "[\"sys.version\",").await;
    assert!(
        a.body
            .contains("\"details\":{\"error\":\"unexpected end of JSON input\"}"),
        "{}",
        a.body
    );
    let a = rpc(&server, "[]").await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            400,
            "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"Missing method name\"}}\n"
        )
    );
    let a = rpc(&server, r#"["stream.nope"]"#).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            404,
            "{\"error\":{\"code\":\"METHOD_NOT_FOUND\",\"message\":\"Unknown method: stream.nope\"}}\n"
        )
    );
    let a = answer(
        http()
            .get(format!("{}/rpc", server.url()))
            .bearer_auth(server.default_token())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            405,
            "{\"error\":{\"code\":\"INVALID_REQUEST\",\"message\":\"Only POST method allowed\"}}\n"
        )
    );
    for path in ["/rpc/", "/RPC", "/import", "/"] {
        let a = answer(
            http()
                .post(format!("{}{path}", server.url()))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, 404, "{path}");
        assert_eq!(
            a.body,
            "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"Endpoint not found\"}}"
        );
    }
    let a = answer(
        http()
            .get(format!("{}/health", server.url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((a.status, a.body.as_str()), (200, "{\"status\":\"ok\"}"));
    let a = answer(
        http()
            .get(format!("{}/version", server.url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (200, "{\"version\":\"0.7.0\"}")
    );
}

#[tokio::test]
async fn validation_messages_and_nulls() {
    let server = TestServer::start().await.unwrap();
    let cases = [
        (
            r#"["stream.write", "s"]"#,
            "stream.write requires at least 2 arguments: streamName and message",
        ),
        (
            r#"["stream.write", "", {"type": "T", "data": {}}]"#,
            "streamName must be a non-empty string",
        ),
        (
            r#"["stream.write", "s", {"type": "T", "data": {}, "metadata": null}]"#,
            "message.metadata must be an object",
        ),
        (
            r#"["stream.write", "s", {"type": "T", "data": []}]"#,
            "message.data must be an object",
        ),
        (
            r#"["stream.write", "s", {"type": "", "data": {}}]"#,
            "message.type must be a non-empty string",
        ),
        (
            r#"["stream.write", "s", {"type": "T", "data": {}}, null]"#,
            "options must be an object",
        ),
        (
            r#"["stream.write", "s", {"type": "T", "data": {}}, {"expectedVersion": null}]"#,
            "options.expectedVersion must be a number",
        ),
        (
            r#"["stream.write", "s", {"type": "T", "data": {}}, {"id": 5}]"#,
            "options.id must be a string",
        ),
        (
            r#"["stream.get"]"#,
            "stream.get requires at least 1 argument: streamName",
        ),
        (
            r#"["stream.get", "s", {"batchSize": 10001}]"#,
            "options.batchSize must be \\u003c= 10000 or -1 for unlimited",
        ),
        (
            r#"["stream.get", "s", {"position": "1"}]"#,
            "options.position must be a number",
        ),
        (
            r#"["stream.last", "s", {"type": 1}]"#,
            "options.type must be a string",
        ),
        (
            r#"["stream.version"]"#,
            "stream.version requires 1 argument: streamName",
        ),
        (r#"["category.get", 1]"#, "categoryName must be a string"),
        (
            r#"["category.get", "c", {"consumerGroup": null}]"#,
            "options.consumerGroup must be an object",
        ),
        (
            r#"["category.get", "c", {"consumerGroup": {"member": 0}}]"#,
            "options.consumerGroup requires both member and size",
        ),
        (
            r#"["category.get", "c", {"consumerGroup": {"member": -1, "size": 0}}]"#,
            "options.consumerGroup.member must be non-negative",
        ),
        (
            r#"["category.get", "c", {"consumerGroup": {"member": 0, "size": 0}}]"#,
            "options.consumerGroup.size must be positive",
        ),
        (
            r#"["category.get", "c", {"consumerGroup": {"member": 2, "size": 2}}]"#,
            "options.consumerGroup.member must be \\u003c size",
        ),
        (
            r#"["category.get", "c", {"correlation": null}]"#,
            "options.correlation must be a string",
        ),
        (
            r#"["ns.streams", {"limit": 0}]"#,
            "limit must be between 1 and 1000",
        ),
        (
            r#"["ns.streams", {"prefix": 1}]"#,
            "prefix must be a string",
        ),
        (
            r#"["ns.create", ""]"#,
            "namespace ID must be a non-empty string",
        ),
        (
            r#"["ns.create", "x", {"token": "bad"}]"#,
            "Invalid token format: invalid token format: missing 'ns_' prefix",
        ),
    ];
    for (body, message) in cases {
        let a = rpc(&server, body).await;
        assert_eq!(a.status, 400, "{body}");
        assert_eq!(
            a.body,
            format!("{{\"error\":{{\"code\":\"INVALID_REQUEST\",\"message\":\"{message}\"}}}}\n"),
            "{body}"
        );
    }
    // Unknown keys and extra arguments are ignored; fractions truncate.
    let a = rpc(
        &server,
        r#"["stream.get", "s", {"batch_size": 1, "batchSize": 2.9}, "extra"]"#,
    )
    .await;
    assert_eq!((a.status, a.body.as_str()), (200, "[]\n"));
    // Out-of-range numbers become MinInt64 as in Go on amd64: a negative, unlimited batch.
    let a = rpc(&server, r#"["stream.get", "s", {"batchSize": 1e20}]"#).await;
    assert_eq!((a.status, a.body.as_str()), (200, "[]\n"));
    let a = rpc(&server, r#"["category.get", "c", {"consumerGroup": {}}]"#).await;
    assert_eq!((a.status, a.body.as_str()), (200, "[]\n"));
}

#[tokio::test]
async fn write_conflicts_ids_and_duplicates() {
    let server = TestServer::start().await.unwrap();
    rpc(
        &server,
        r#"["stream.write", "s-1", {"type": "T", "data": {}}]"#,
    )
    .await;
    let a = rpc(
        &server,
        r#"["stream.write", "s-1", {"type": "T", "data": {}}, {"expectedVersion": 5}]"#,
    )
    .await;
    assert_eq!(a.status, 409);
    assert_eq!(
        a.body,
        "{\"error\":{\"code\":\"STREAM_VERSION_CONFLICT\",\"message\":\"Expected version 5, stream is at version 0\",\"details\":{\"actual\":0,\"expected\":5}}}\n"
    );
    let a = rpc(
        &server,
        r#"["stream.write", "s-1", {"type": "T", "data": {}}, {"id": "not-a-uuid"}]"#,
    )
    .await;
    assert_eq!(a.status, 500);
    assert_eq!(
        a.body,
        "{\"error\":{\"code\":\"BACKEND_ERROR\",\"message\":\"Failed to write message: invalid UUID format: invalid UUID length: 10\"}}\n"
    );
    let id = r#"{"id": "urn:uuid:550E8400-E29B-41D4-A716-446655440000"}"#;
    let body = format!(r#"["stream.write", "s-2", {{"type": "T", "data": {{}}}}, {id}]"#);
    assert_eq!(rpc(&server, &body).await.status, 200);
    let a = rpc(&server, &body).await;
    assert_eq!(a.status, 500);
    assert!(
        a.body.contains("UNIQUE constraint failed: messages.id"),
        "{}",
        a.body
    );
    let r = rpc(&server, r#"["stream.last", "s-2"]"#).await;
    assert!(
        r.body
            .starts_with("[\"urn:uuid:550E8400-E29B-41D4-A716-446655440000\",\"T\",0,2,"),
        "{}",
        r.body
    );
    assert_eq!(
        rpc(&server, r#"["stream.version", "s-2"]"#).await.body,
        "0\n"
    );
    assert_eq!(
        rpc(&server, r#"["stream.version", "s-3"]"#).await.body,
        "null\n"
    );
    assert_eq!(
        rpc(&server, r#"["stream.last", "s-3"]"#).await.body,
        "null\n"
    );
}

#[tokio::test]
async fn auth_in_normal_mode() {
    let server = TestServer::start().await.unwrap();
    let body = r#"["sys.version"]"#;
    let a = rpc_as(&server, None, body).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            401,
            "{\"error\":{\"code\":\"AUTH_REQUIRED\",\"message\":\"Authorization header required\"}}\n"
        )
    );
    let raw = |header: &'static str| {
        let url = format!("{}/rpc", server.url());
        async move {
            answer(
                http()
                    .post(url)
                    .header("authorization", header)
                    .body(body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let a = raw("Basic abc").await;
    assert_eq!(
        a.body,
        "{\"error\":{\"code\":\"AUTH_REQUIRED\",\"message\":\"Authorization header must use Bearer scheme\"}}\n"
    );
    let a = raw("Bearer ").await;
    assert_eq!(
        a.body,
        "{\"error\":{\"code\":\"AUTH_REQUIRED\",\"message\":\"Authorization header must use Bearer scheme\"}}\n"
    );
    let a = rpc_as(&server, Some("invalid-token"), body).await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.body,
        "{\"error\":{\"code\":\"AUTH_INVALID_TOKEN\",\"message\":\"Invalid token format\",\"details\":{\"error\":\"invalid token format: missing 'ns_' prefix\"}}}\n"
    );
    let zeros = "0".repeat(64);
    let a = rpc_as(&server, Some(&format!("ns_ZGVmYXVsdA_{zeros}")), body).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            403,
            "{\"error\":{\"code\":\"AUTH_UNAUTHORIZED\",\"message\":\"Token not authorized for namespace\",\"details\":{\"namespace\":\"default\"}}}\n"
        )
    );
    let a = rpc_as(&server, Some(&format!("ns_bm9uZQ_{zeros}")), body).await;
    assert_eq!(a.status, 403);
    // The query parameter wins over the header.
    let url = format!("{}/rpc?token={}", server.url(), server.default_token());
    let a = answer(
        http()
            .post(url)
            .header("authorization", "Basic x")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((a.status, a.body.as_str()), (200, "\"0.7.0\"\n"));
    // Trailing whitespace after the token is trimmed, as fasthttp does.
    let header = format!("Bearer {}  ", server.default_token());
    let a = answer(
        http()
            .post(format!("{}/rpc", server.url()))
            .header("authorization", header)
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn auth_in_test_mode() {
    let zeros = "0".repeat(64);
    let token = format!("ns_ZGVmYXVsdA_{zeros}");
    let server = TestServer::builder()
        .test_mode(true)
        .token(token.clone())
        .start()
        .await
        .unwrap();
    assert_eq!(server.default_token(), token);
    let w = r#"["stream.write", "s-1", {"type": "T", "data": {}}]"#;
    assert_eq!(rpc_as(&server, None, w).await.status, 200);
    assert_eq!(
        rpc_as(&server, Some("garbage"), w).await.body,
        "{\"globalPosition\":2,\"position\":0}\n".replace(":0}", ":1}")
    );
    let any_suffix = format!("ns_ZGVmYXVsdA_{}", "a".repeat(64));
    assert_eq!(
        rpc_as(&server, Some(&any_suffix), r#"["stream.version", "s-1"]"#)
            .await
            .body,
        "1\n"
    );
    let unknown = format!("ns_bm9uZQ_{zeros}");
    let a = rpc_as(&server, Some(&unknown), r#"["stream.get", "s-1"]"#).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            500,
            "{\"error\":{\"code\":\"BACKEND_ERROR\",\"message\":\"Failed to get messages: namespace none not found\"}}\n"
        )
    );
    let a = rpc_as(&server, Some(&unknown), w).await;
    assert!(
        a.body
            .contains("Failed to write message: namespace none not found")
    );
    // ns.create makes it usable; namespaces are isolated.
    let other = namespace(&server, "none").await;
    assert_eq!(
        rpc_as(&server, Some(&other), r#"["stream.get", "s-1"]"#)
            .await
            .body,
        "[]\n"
    );
}

#[tokio::test]
async fn body_over_the_limit_is_a_plain_400() {
    let server = TestServer::builder()
        .body_limit(1024)
        .start()
        .await
        .unwrap();
    let big = format!(
        r#"["stream.write", "s", {{"type": "T", "data": {{"x": "{}"}}}}]"#,
        "a".repeat(2000)
    );
    let resp = http()
        .post(format!("{}/rpc", server.url()))
        .bearer_auth(server.default_token())
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers().get("connection").unwrap(), "close");
    let a = answer(resp).await;
    assert_eq!(
        (a.status, a.content_type.as_str(), a.body.as_str()),
        (
            400,
            "text/plain; charset=utf-8",
            "Error when parsing request"
        )
    );
    assert_eq!(
        rpc(&server, r#"["stream.version", "s"]"#).await.body,
        "null\n"
    );
}
