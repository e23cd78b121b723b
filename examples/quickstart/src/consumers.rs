//! The two consumers: `Welcome` (the `user` category, run as a 3-member group) and
//! `Sales` (the `order` category, transactional: its projection row commits with its
//! position, so each sale is recorded exactly once).

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use eventodb_kit::consumer;
use eventodb_kit::consumer::{Context, HandlerError};

use crate::db::AppDb;
use crate::events::{OrderPlaced, UserCreated};
use crate::track::Track;

/// Greets new customers. One value per group member; each counts what it handled.
pub(crate) struct Welcome {
    pub(crate) track: Arc<Track>,
    pub(crate) handled: Arc<AtomicU64>,
}

#[consumer(category = "user")]
impl Welcome {
    async fn created(&self, event: UserCreated) -> Result<(), HandlerError> {
        // A real app would send an email to `event.email` here.
        self.track.handled(event.user_id);
        self.handled.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Records each placed order in the `quickstart_sales` table.
pub(crate) struct Sales<DB> {
    pub(crate) track: Arc<Track>,
    pub(crate) db: PhantomData<fn() -> DB>,
}

#[consumer(category = "order", transactional)]
impl<DB: AppDb> Sales<DB> {
    async fn placed(
        &self,
        event: OrderPlaced,
        ctx: &mut Context<'_, DB>,
    ) -> Result<(), HandlerError> {
        let total = i64::try_from(event.total.amount_minor).map_err(HandlerError::permanent)?;
        DB::record_sale(ctx.transaction()?, event.order_id, total).await?;
        self.track.handled(event.order_id);
        Ok(())
    }
}
