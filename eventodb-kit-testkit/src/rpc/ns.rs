//! `ns.create`, `ns.delete`, `ns.list`, `ns.info`, `ns.streams`, `ns.categories` (§1.6).

use super::Ctx;
use super::error::{RpcError, RpcResult, non_empty, opt_int, opt_str, options};
use crate::backend::Backend;
use crate::json::{Json, Object, object};
use crate::reads;
use crate::store::StoreError;
use crate::time::{rfc3339, rfc3339_nano};
use crate::token::{generate_token, hash_token, parse_token};

const ID_MESSAGE: &str = "namespace ID must be a non-empty string";

pub(super) fn create(ctx: &Ctx<'_>, args: &[Json]) -> RpcResult {
    if args.is_empty() {
        return Err(RpcError::invalid(
            "ns.create requires at least 1 argument: namespace ID",
        ));
    }
    let id = non_empty(args.first(), ID_MESSAGE)?;
    let opts = options(args, 1)?;
    let description =
        opt_str(opts, "description", "options.description must be a string")?.unwrap_or_default();
    let provided = opt_str(opts, "token", "options.token must be a string")?;
    if let Some(token) = provided {
        let token_ns = parse_token(token)
            .map_err(|e| RpcError::invalid(format!("Invalid token format: {e}")))?;
        if token_ns != id {
            return Err(RpcError::invalid(format!(
                "Token is for namespace '{token_ns}', not '{id}'"
            )));
        }
    }
    if let Some(meta) = opts.and_then(|o| o.get("metadata")) {
        if !matches!(meta, Json::Object(_)) {
            return Err(RpcError::invalid("options.metadata must be an object"));
        }
    }
    let token = match provided {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => generate_token(id),
    };
    let mut store = ctx.shared.store();
    match store.create_namespace(id, hash_token(&token), description.to_owned()) {
        Ok(()) => Ok(object([
            ("createdAt", Json::str(rfc3339_nano(chrono::Utc::now()))),
            ("namespace", Json::str(id)),
            ("token", Json::str(token)),
        ])),
        Err(StoreError::NamespaceExists) => Err(RpcError::new(
            "NAMESPACE_EXISTS",
            format!("Namespace '{id}' already exists"),
        )),
        Err(e) => Err(RpcError::backend(format!(
            "Failed to create namespace: {e}"
        ))),
    }
}

pub(super) fn delete(ctx: &Ctx<'_>, args: &[Json]) -> RpcResult {
    if args.is_empty() {
        return Err(RpcError::invalid(
            "ns.delete requires 1 argument: namespace ID",
        ));
    }
    let id = non_empty(args.first(), ID_MESSAGE)?;
    let mut store = ctx.shared.store();
    store.delete_namespace(id).map_err(|_| not_found(id))?;
    Ok(object([
        ("deletedAt", Json::str(rfc3339_nano(chrono::Utc::now()))),
        ("messagesDeleted", Json::int(0)),
        ("namespace", Json::str(id)),
    ]))
}

pub(super) fn list(ctx: &Ctx<'_>) -> RpcResult {
    let store = ctx.shared.store();
    let rows = store
        .list_namespaces()
        .into_iter()
        .map(|(id, ns)| {
            object([
                ("createdAt", Json::str(rfc3339_nano(ns.created_at))),
                ("description", Json::str(ns.description.clone())),
                ("messageCount", Json::int(0)),
                ("namespace", Json::str(id)),
            ])
        })
        .collect();
    Ok(Json::Array(rows))
}

pub(super) fn info(ctx: &Ctx<'_>, args: &[Json]) -> RpcResult {
    if args.is_empty() {
        return Err(RpcError::invalid(
            "ns.info requires 1 argument: namespace ID",
        ));
    }
    let id = non_empty(args.first(), ID_MESSAGE)?;
    let store = ctx.shared.store();
    let ns = store.namespace(id).map_err(|_| not_found(id))?;
    Ok(object([
        ("createdAt", Json::str(rfc3339_nano(ns.created_at))),
        ("description", Json::str(ns.description.clone())),
        ("lastActivity", Json::Null),
        ("messageCount", Json::int(ns.messages.len() as i64)),
        ("namespace", Json::str(id)),
        ("streamCount", Json::int(0)),
    ]))
}

pub(super) fn streams(ctx: &Ctx<'_>, args: &[Json]) -> RpcResult {
    let opts: Option<&Object> = options(args, 0)?;
    let prefix = opt_str(opts, "prefix", "prefix must be a string")?.unwrap_or_default();
    let cursor = opt_str(opts, "cursor", "cursor must be a string")?.unwrap_or_default();
    let limit = opt_int(opts, "limit", "limit must be a number")?;
    if let Some(l) = limit {
        if l <= 0 || l > 1000 {
            return Err(RpcError::invalid("limit must be between 1 and 1000"));
        }
    }
    let store = ctx.shared.store();
    let ns = store
        .namespace(ctx.namespace)
        .map_err(|e| RpcError::backend(format!("Failed to list streams: {e}")))?;
    let pebble = ctx.shared.config.backend == Backend::Pebble;
    let rows = reads::list_streams(ns, prefix, cursor, limit.unwrap_or(100), pebble)
        .into_iter()
        .map(|s| {
            object([
                ("lastActivity", Json::str(rfc3339(s.last_activity))),
                ("stream", Json::str(s.stream)),
                ("version", Json::int(s.version)),
            ])
        })
        .collect();
    Ok(Json::Array(rows))
}

pub(super) fn categories(ctx: &Ctx<'_>) -> RpcResult {
    let store = ctx.shared.store();
    let ns = store
        .namespace(ctx.namespace)
        .map_err(|e| RpcError::backend(format!("Failed to list categories: {e}")))?;
    let pebble = ctx.shared.config.backend == Backend::Pebble;
    let rows = reads::list_categories(ns, pebble)
        .into_iter()
        .map(|(category, streams, messages)| {
            object([
                ("category", Json::str(category)),
                ("messageCount", Json::int(messages)),
                ("streamCount", Json::int(streams)),
            ])
        })
        .collect();
    Ok(Json::Array(rows))
}

fn not_found(id: &str) -> RpcError {
    RpcError::new("NAMESPACE_NOT_FOUND", format!("Namespace '{id}' not found"))
}
