//! ERROR-001..007.
//!
//! ERROR-002 (missing arguments) and ERROR-003 (arguments of the wrong type) cannot be
//! expressed with the typed API: every method takes exactly its arguments, typed (`&str`,
//! `i64`, `Uuid`, builders), so such a call does not compile. The `compile_fail` doctests on
//! `eventodb_kit_tests::typed_api` show both. The values the types allow but the server
//! refuses (empty stream names, out-of-range batch sizes, ...) are covered in `edge` and
//! `beyond`. ERROR-004..007 are in `broken_server`, against deliberately broken servers.

use eventodb_kit::ErrorCode;
use eventodb_kit_tests::Env;
use serde_json::json;

#[tokio::test]
async fn error_001_unknown_method() {
    let env = Env::new().await;
    let err = env
        .client()
        .call_raw("no.such.method", &[json!("x")])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::MethodNotFound), "{err:?}");
    assert_eq!(err.status(), Some(404));
    assert!(
        err.to_string().contains("Unknown method: no.such.method"),
        "{err}"
    );
}
