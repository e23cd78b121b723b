//! SYS-001..002: `sys.version`, `sys.health`.

use eventodb_kit_tests::Env;

#[tokio::test]
async fn sys_001_version_is_a_non_empty_string() {
    let env = Env::new().await;
    let version = env.client().sys_version().await.unwrap();
    // Not necessarily semver: Docker images report `dev`.
    assert!(!version.trim().is_empty());
}

#[tokio::test]
async fn sys_002_health_has_status() {
    let env = Env::new().await;
    let health = env.client().sys_health().await.unwrap();
    assert_eq!(health.status, "ok");
}
