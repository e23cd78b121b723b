//! `stream.write`, `stream.get`, `stream.last`, `stream.version`, `category.get` (§1.6).

use std::sync::Arc;

use super::Ctx;
use super::error::{RpcError, RpcResult, non_empty, opt_int, opt_str, options};
use crate::backend::Backend;
use crate::json::{Json, object};
use crate::pubsub::Poke;
use crate::reads::{self, CategoryQuery, StreamQuery};
use crate::store::{NewMessage, StoreError, StoredMessage};
use crate::time::rfc3339_nano;

const BATCH_MESSAGE: &str = "options.batchSize must be <= 10000 or -1 for unlimited";

fn backend(action: &str, err: &StoreError) -> RpcError {
    RpcError::backend(format!("Failed to {action}: {err}"))
}

pub(super) fn write(ctx: &Ctx<'_>, args: &[Json]) -> RpcResult {
    if args.len() < 2 {
        return Err(RpcError::invalid(
            "stream.write requires at least 2 arguments: streamName and message",
        ));
    }
    let stream = non_empty(args.first(), "streamName must be a non-empty string")?;
    let Json::Object(message) = &args[1] else {
        return Err(RpcError::invalid("message must be an object"));
    };
    let message_type = non_empty(
        message.get("type"),
        "message.type must be a non-empty string",
    )?;
    let data = match message.get("data") {
        Some(d @ Json::Object(_)) => d.clone(),
        _ => return Err(RpcError::invalid("message.data must be an object")),
    };
    let metadata = match message.get("metadata") {
        None => None,
        Some(m @ Json::Object(_)) => Some(m.clone()),
        Some(_) => return Err(RpcError::invalid("message.metadata must be an object")),
    };
    let opts = options(args, 2)?;
    let id = opt_str(opts, "id", "options.id must be a string")?.unwrap_or_default();
    let expected_version = opt_int(
        opts,
        "expectedVersion",
        "options.expectedVersion must be a number",
    )?;

    let new = NewMessage {
        stream: stream.to_owned(),
        message_type: message_type.to_owned(),
        data,
        metadata,
        id: id.to_owned(),
        expected_version,
    };
    let mut store = ctx.shared.store();
    match store.write(ctx.namespace, new) {
        Ok(written) => {
            // Published under the store lock, so subscribers see pokes in write order.
            ctx.shared.hub.publish(&Poke {
                namespace: ctx.namespace.to_owned(),
                stream: stream.to_owned(),
                position: written.position,
                global_position: written.global_position,
            });
            Ok(object([
                ("globalPosition", Json::int(written.global_position)),
                ("position", Json::int(written.position)),
            ]))
        }
        Err(e @ StoreError::VersionConflict { .. }) if pebble(ctx) => {
            Err(RpcError::new("STREAM_VERSION_CONFLICT", e.to_string()))
        }
        Err(StoreError::VersionConflict { expected, actual }) => Err(RpcError::new(
            "STREAM_VERSION_CONFLICT",
            format!("Expected version {expected}, stream is at version {actual}"),
        )
        .with_details(object([
            ("actual", Json::int(actual)),
            ("expected", Json::int(expected)),
        ]))),
        Err(e) => Err(backend("write message", &e)),
    }
}

fn pebble(ctx: &Ctx<'_>) -> bool {
    ctx.shared.config.backend == Backend::Pebble
}

/// Shared by `stream.get` and `category.get`: validated, then as the backend applies it.
fn batch_size(ctx: &Ctx<'_>, opts: Option<&crate::json::Object>) -> Result<i64, RpcError> {
    let size = opt_int(opts, "batchSize", "options.batchSize must be a number")?.unwrap_or(1000);
    if size > 10000 && size != -1 {
        return Err(RpcError::invalid(BATCH_MESSAGE));
    }
    Ok(ctx.shared.config.backend.effective_batch_size(size))
}

pub(super) fn get(ctx: &Ctx<'_>, args: &[Json]) -> RpcResult {
    if args.is_empty() {
        return Err(RpcError::invalid(
            "stream.get requires at least 1 argument: streamName",
        ));
    }
    let stream = non_empty(args.first(), "streamName must be a non-empty string")?;
    let opts = options(args, 1)?;
    let position = opt_int(opts, "position", "options.position must be a number")?.unwrap_or(0);
    let global_position = opt_int(
        opts,
        "globalPosition",
        "options.globalPosition must be a number",
    )?;
    let batch_size = batch_size(ctx, opts)?;
    let store = ctx.shared.store();
    let ns = store
        .namespace(ctx.namespace)
        .map_err(|e| backend("get messages", &e))?;
    let query = StreamQuery {
        position,
        global_position,
        batch_size,
        both: pebble(ctx),
    };
    let rows = reads::stream_get(ns, stream, query);
    Ok(Json::Array(rows.iter().map(stream_row).collect()))
}

pub(super) fn last(ctx: &Ctx<'_>, args: &[Json]) -> RpcResult {
    if args.is_empty() {
        return Err(RpcError::invalid(
            "stream.last requires at least 1 argument: streamName",
        ));
    }
    let stream = non_empty(args.first(), "streamName must be a non-empty string")?;
    let opts = options(args, 1)?;
    let message_type = opt_str(opts, "type", "options.type must be a string")?;
    let store = ctx.shared.store();
    let ns = store
        .namespace(ctx.namespace)
        .map_err(|e| backend("get last message", &e))?;
    if pebble(ctx) && message_type == Some("") {
        // Pebble compares the type literally, and no message has an empty type.
        return Ok(Json::Null);
    }
    Ok(reads::stream_last(ns, stream, message_type).map_or(Json::Null, |m| stream_row(&m)))
}

pub(super) fn version(ctx: &Ctx<'_>, args: &[Json]) -> RpcResult {
    if args.is_empty() {
        return Err(RpcError::invalid(
            "stream.version requires 1 argument: streamName",
        ));
    }
    let stream = non_empty(args.first(), "streamName must be a non-empty string")?;
    let store = ctx.shared.store();
    let ns = store
        .namespace(ctx.namespace)
        .map_err(|e| backend("get stream version", &e))?;
    match ns.stream_version(stream) {
        -1 => Ok(Json::Null),
        v => Ok(Json::int(v)),
    }
}

pub(super) fn category(ctx: &Ctx<'_>, args: &[Json]) -> RpcResult {
    if args.is_empty() {
        return Err(RpcError::invalid(
            "category.get requires at least 1 argument: categoryName",
        ));
    }
    let Json::String(category) = &args[0] else {
        return Err(RpcError::invalid("categoryName must be a string"));
    };
    let opts = options(args, 1)?;
    let position = opt_int(opts, "position", "options.position must be a number")?.unwrap_or(1);
    let global_position = opt_int(
        opts,
        "globalPosition",
        "options.globalPosition must be a number",
    )?;
    let batch_size = batch_size(ctx, opts)?;
    let correlation = opt_str(opts, "correlation", "options.correlation must be a string")?;
    let mut group = consumer_group(opts)?;
    let mut from = global_position.unwrap_or(position);
    if pebble(ctx) {
        // Pebble ignores globalPosition here, and the group for the "" (all) category.
        from = position;
        if category.is_empty() {
            group = None;
        }
    }
    let query = CategoryQuery {
        position: from,
        batch_size,
        correlation: correlation.map(str::to_owned),
        group,
        correlation_by_category: pebble(ctx),
        scan_limit: pebble(ctx),
    };
    let store = ctx.shared.store();
    let ns = store
        .namespace(ctx.namespace)
        .map_err(|e| backend("get category messages", &e))?;
    let rows = reads::category_get(ns, category, &query);
    Ok(Json::Array(rows.iter().map(category_row).collect()))
}

fn consumer_group(opts: Option<&crate::json::Object>) -> Result<Option<(i64, i64)>, RpcError> {
    let group = match opts.and_then(|o| o.get("consumerGroup")) {
        None => return Ok(None),
        Some(Json::Object(g)) => g,
        Some(_) => return Err(RpcError::invalid("options.consumerGroup must be an object")),
    };
    let member = opt_int(
        Some(group),
        "member",
        "options.consumerGroup.member must be a number",
    )?;
    let size = opt_int(
        Some(group),
        "size",
        "options.consumerGroup.size must be a number",
    )?;
    match (member, size) {
        (None, None) => Ok(None),
        (Some(member), Some(size)) => {
            if member < 0 {
                Err(RpcError::invalid(
                    "options.consumerGroup.member must be non-negative",
                ))
            } else if size <= 0 {
                Err(RpcError::invalid(
                    "options.consumerGroup.size must be positive",
                ))
            } else if member >= size {
                Err(RpcError::invalid(
                    "options.consumerGroup.member must be < size",
                ))
            } else {
                Ok(Some((member, size)))
            }
        }
        _ => Err(RpcError::invalid(
            "options.consumerGroup requires both member and size",
        )),
    }
}

fn stream_row(m: &Arc<StoredMessage>) -> Json {
    Json::Array(vec![
        Json::str(m.id.clone()),
        Json::str(m.message_type.clone()),
        Json::int(m.position),
        Json::int(m.global_position),
        m.data.clone(),
        m.metadata.clone().unwrap_or(Json::Null),
        Json::str(rfc3339_nano(m.time)),
    ])
}

fn category_row(m: &Arc<StoredMessage>) -> Json {
    Json::Array(vec![
        Json::str(m.id.clone()),
        Json::str(m.stream.clone()),
        Json::str(m.message_type.clone()),
        Json::int(m.position),
        Json::int(m.global_position),
        m.data.clone(),
        m.metadata.clone().unwrap_or(Json::Null),
        Json::str(rfc3339_nano(m.time)),
    ])
}
