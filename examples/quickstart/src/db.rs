//! The shop's own tables (customers, orders, the sales projection) on either database.
//! The SQL is the same for both: `$1` placeholders and `CAST` work in PostgreSQL and SQLite.

use std::future::Future;

use eventodb_kit::Backend;
use sqlx::{Pool, Postgres, Sqlite};
use uuid::Uuid;

/// Totals of one run, read back at the end.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Totals {
    /// Orders written by the shop.
    pub(crate) orders: i64,
    /// Their revenue, in cents.
    pub(crate) revenue: i64,
    /// Orders the sales consumer recorded (in its own transaction).
    pub(crate) sales: i64,
    /// The revenue the sales consumer recorded, in cents.
    pub(crate) sales_revenue: i64,
}

/// A database the shop can keep its tables in.
pub(crate) trait AppDb: Backend {
    /// Creates the shop's tables if they do not exist.
    fn create_tables(pool: &Pool<Self>) -> impl Future<Output = sqlx::Result<()>> + Send;

    /// Inserts a customer of run `run`.
    fn insert_customer<'c>(
        conn: &'c mut Self::Connection,
        run: &'c str,
        id: Uuid,
        email: &'c str,
    ) -> impl Future<Output = sqlx::Result<()>> + Send + 'c;

    /// Inserts an order of run `run`.
    fn insert_order<'c>(
        conn: &'c mut Self::Connection,
        run: &'c str,
        id: Uuid,
        customer: Uuid,
        total: i64,
    ) -> impl Future<Output = sqlx::Result<()>> + Send + 'c;

    /// Records a sale (the sales consumer's projection).
    fn record_sale<'c>(
        conn: &'c mut Self::Connection,
        order: Uuid,
        total: i64,
    ) -> impl Future<Output = sqlx::Result<()>> + Send + 'c;

    /// The totals of run `run`.
    fn totals(pool: &Pool<Self>, run: &str) -> impl Future<Output = sqlx::Result<Totals>> + Send;
}

const TABLES: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS quickstart_customers \
     (id TEXT PRIMARY KEY, run_id TEXT NOT NULL, email TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS quickstart_orders \
     (id TEXT PRIMARY KEY, run_id TEXT NOT NULL, customer_id TEXT NOT NULL, total_minor BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS quickstart_sales \
     (order_id TEXT PRIMARY KEY, total_minor BIGINT NOT NULL)",
];

const TOTALS: &str = "SELECT \
     (SELECT COUNT(*) FROM quickstart_orders WHERE run_id = $1), \
     (SELECT CAST(COALESCE(SUM(total_minor), 0) AS BIGINT) FROM quickstart_orders WHERE run_id = $1), \
     (SELECT COUNT(*) FROM quickstart_sales s JOIN quickstart_orders o ON o.id = s.order_id WHERE o.run_id = $1), \
     (SELECT CAST(COALESCE(SUM(s.total_minor), 0) AS BIGINT) FROM quickstart_sales s \
      JOIN quickstart_orders o ON o.id = s.order_id WHERE o.run_id = $1)";

/// The same implementation for both databases.
macro_rules! app_db {
    ($db:ty) => {
        impl AppDb for $db {
            async fn create_tables(pool: &Pool<Self>) -> sqlx::Result<()> {
                for table in TABLES {
                    sqlx::query(table).execute(pool).await?;
                }
                Ok(())
            }

            async fn insert_customer<'c>(
                conn: &'c mut Self::Connection,
                run: &'c str,
                id: Uuid,
                email: &'c str,
            ) -> sqlx::Result<()> {
                sqlx::query(
                    "INSERT INTO quickstart_customers (id, run_id, email) VALUES ($1, $2, $3)",
                )
                .bind(id.to_string())
                .bind(run)
                .bind(email)
                .execute(conn)
                .await?;
                Ok(())
            }

            async fn insert_order<'c>(
                conn: &'c mut Self::Connection,
                run: &'c str,
                id: Uuid,
                customer: Uuid,
                total: i64,
            ) -> sqlx::Result<()> {
                sqlx::query(
                    "INSERT INTO quickstart_orders (id, run_id, customer_id, total_minor) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(id.to_string())
                .bind(run)
                .bind(customer.to_string())
                .bind(total)
                .execute(conn)
                .await?;
                Ok(())
            }

            async fn record_sale(
                conn: &mut Self::Connection,
                order: Uuid,
                total: i64,
            ) -> sqlx::Result<()> {
                sqlx::query("INSERT INTO quickstart_sales (order_id, total_minor) VALUES ($1, $2)")
                    .bind(order.to_string())
                    .bind(total)
                    .execute(conn)
                    .await?;
                Ok(())
            }

            async fn totals(pool: &Pool<Self>, run: &str) -> sqlx::Result<Totals> {
                let (orders, revenue, sales, sales_revenue): (i64, i64, i64, i64) =
                    sqlx::query_as(TOTALS).bind(run).fetch_one(pool).await?;
                Ok(Totals {
                    orders,
                    revenue,
                    sales,
                    sales_revenue,
                })
            }
        }
    };
}

app_db!(Sqlite);
app_db!(Postgres);
