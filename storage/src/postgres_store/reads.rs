//! Reading tenant records from PostgreSQL: the one ordered scan the shared readers of
//! [`crate::layout`] are built on.
use super::pool::Conn;
use crate::layout::{self, IdRange, Order, TenantSource};
use crate::{StorageError, TenantId};

/// `SELECT` of one kind's values in an id range of `$table`, in `$order`, at most `$4`;
/// `$bound` adds the exclusive end `$5`.
macro_rules! scan {
    ($table:literal, $order:literal, $bound:literal) => {
        concat!(
            "SELECT value FROM ",
            $table,
            " WHERE tenant = $1 AND kind = $2 AND id >= $3",
            $bound,
            " ORDER BY id ",
            $order,
            " LIMIT $4"
        )
    };
}

fn scan_sql(log: bool, order: Order, bounded: bool) -> &'static str {
    match (log, order, bounded) {
        (false, Order::Forward, false) => scan!("tenant_records", "ASC", ""),
        (false, Order::Forward, true) => scan!("tenant_records", "ASC", " AND id < $5"),
        (false, Order::Backward, false) => scan!("tenant_records", "DESC", ""),
        (false, Order::Backward, true) => scan!("tenant_records", "DESC", " AND id < $5"),
        (true, Order::Forward, false) => scan!("tenant_log", "ASC", ""),
        (true, Order::Forward, true) => scan!("tenant_log", "ASC", " AND id < $5"),
        (true, Order::Backward, false) => scan!("tenant_log", "DESC", ""),
        (true, Order::Backward, true) => scan!("tenant_log", "DESC", " AND id < $5"),
    }
}

/// Tenant records read over one connection (inside a transaction or not).
pub(super) struct PgSource<'c>(pub(super) &'c mut Conn);

impl TenantSource for PgSource<'_> {
    fn scan(
        &mut self,
        tenant: &TenantId,
        kind: u8,
        ids: IdRange<'_>,
        order: Order,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StorageError> {
        let sql = scan_sql(layout::append_only(kind), order, ids.end.is_some());
        let kind = kind as i8;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let context = || format!("reading the state of {tenant}");
        let rows = match &ids.end {
            Some(end) => self.0.query_now(
                sql,
                &[&tenant.as_str(), &kind, &ids.start, &limit, end],
                context(),
            )?,
            None => self.0.query_now(
                sql,
                &[&tenant.as_str(), &kind, &ids.start, &limit],
                context(),
            )?,
        };
        rows.iter()
            .map(|row| {
                row.try_get::<_, Vec<u8>>(0)
                    .map_err(|e| StorageError::io(context(), e))
            })
            .collect()
    }
}
