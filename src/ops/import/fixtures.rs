//! Tables in the old server's shapes, built in memory for the unit tests: the
//! single-tenant file here, the multi-tenant one in `multi`.
use permetrix_storage::{TenantId, Timestamp, VendorId};

use super::anomalies::Anomalies;
use super::cells::{Cell, RawFile, RawRows};
use super::plan::{self, Draft, Settings};
use super::rows;

mod multi;

pub use multi::multi_tenant;

/// The draft of tenant `acme` of [`single_tenant`], vendor `techvendor`, as the
/// importer plans it (every digest `[7; 32]`).
pub fn single_tenant_draft() -> Draft {
    let s = Settings {
        now: Timestamp::from_secs(1_765_000_000),
        single_tenant: Some(TenantId::parse("acme").unwrap()),
        vendor: Some(VendorId::parse("techvendor").unwrap()),
        signing_secret: false,
    };
    let mut anomalies = Anomalies::default();
    let rows = rows::read(&single_tenant(), s.now, &mut anomalies);
    plan::draft(&rows, &s, &|_| [7; 32], &mut anomalies)
        .tenants
        .remove(0)
}

/// A cell from a literal: `"text"`, `5`, `1.5`, or [`NULL`].
pub trait IntoCell {
    fn cell(self) -> Cell;
}

impl IntoCell for &str {
    fn cell(self) -> Cell {
        Cell::Text(self.into())
    }
}

impl IntoCell for i64 {
    fn cell(self) -> Cell {
        Cell::Int(self)
    }
}

impl IntoCell for f64 {
    fn cell(self) -> Cell {
        Cell::Real(self)
    }
}

impl IntoCell for Cell {
    fn cell(self) -> Cell {
        self
    }
}

/// SQL `NULL`.
pub const NULL: Cell = Cell::Null;

/// A row of cells.
macro_rules! row {
    ($($v:expr),* $(,)?) => {
        vec![$($crate::ops::import::fixtures::IntoCell::cell($v)),*]
    };
}
pub(crate) use row;

/// Adds a table to `file`.
pub fn table(file: &mut RawFile, name: &str, columns: &[&str], rows: Vec<Vec<Cell>>) {
    let mut t = RawRows::new(columns);
    t.rows = rows;
    file.insert(name.into(), t);
}

pub const LICENSE_COLUMNS: [&str; 14] = [
    "tool",
    "total",
    "borrowed",
    "commit_qty",
    "max_overage",
    "commit_price",
    "overage_price_per_license",
    "vendor_total",
    "vendor_commit_qty",
    "vendor_max_overage",
    "customer_total",
    "customer_commit_qty",
    "customer_max_overage",
    "customer_max_spend",
];

pub const ECU: &str = "ECU Development Suite";
pub const CAN: &str = "CAN Bus Analyzer Pro";
pub const HELD: [&str; 3] = [
    "6f1d2c3b-4a59-4e68-b7c6-d5e4f3a2b1c0",
    "7a2e3d4c-5b6a-4f79-88d7-e6f5a4b3c2d1",
    "8b3f4e5d-6c7b-4a8a-99e8-f7a6b5c4d3e2",
];

/// A single-tenant file: two tools (one with vendor and customer columns), seats
/// held, charges, keys and users, with the field's anomalies.
pub fn single_tenant() -> RawFile {
    let mut f = RawFile::new();
    table(
        &mut f,
        "licenses",
        &LICENSE_COLUMNS,
        vec![
            // Vendor limits 25 = 5 + 20 override the plain 20 = 5 + 15; the customer
            // restricts the total to 18 and caps the spend at 2500.
            row![
                ECU, 20, 7, 5, 15, 1000.0, 500.0, 25, 5, 20, 18, 5, NULL, 2500.0
            ],
            // Its counter says 3, more than its total; the rows (two) win.
            row![
                CAN, 1, 3, 1, 0, 0.0, 0.0, NULL, NULL, NULL, NULL, NULL, NULL, NULL
            ],
        ],
    );
    table(
        &mut f,
        "borrows",
        &["id", "tool", "user", "borrowed_at", "is_overage"],
        vec![
            row![HELD[0], ECU, "dev1", "2025-11-07T10:15:02.123456+00:00", 0],
            row![HELD[1], CAN, "ci1", "2025-11-07 10:16:02", 0],
            row![HELD[2], CAN, "ci2", "2025-11-07T10:17:02+00:00", 1],
            row!["not-a-uuid", ECU, "dev3", "2025-11-07T10:16:02+00:00", 0],
            row![
                "9c4a5f6e-7d8c-4b9b-aaf9-a8b7c6d5e4f3",
                "Unknown Tool",
                "dev4",
                "2025-11-07T10:16:02+00:00",
                0
            ],
            row![
                "0d5b6a7f-8e9d-4cac-bb0a-b9c8d7e6f5a4",
                ECU,
                "dev5",
                "last tuesday",
                0
            ],
        ],
    );
    table(
        &mut f,
        "overage_charges",
        &["id", "tool", "borrow_id", "user", "charged_at", "amount"],
        vec![
            row![
                "c2",
                ECU,
                HELD[0],
                "dev1",
                "2025-11-08T09:00:00+00:00",
                500.0
            ],
            // Earlier in time than c2, later in the file: the ledger is in time order.
            row![
                "c1",
                ECU,
                "bogus",
                "dev2",
                "2025-10-31T23:59:59+00:00",
                12.345
            ],
            row![
                "c3",
                ECU,
                HELD[0],
                "dev1",
                "2025-11-08T09:00:01+00:00",
                -5.0
            ],
        ],
    );
    table(
        &mut f,
        "api_keys",
        &[
            "id",
            "tenant_id",
            "key_hash",
            "name",
            "environment",
            "created_at",
            "last_used_at",
            "expires_at",
            "status",
            "scopes",
        ],
        vec![
            row![
                "key_0000000000000001",
                NULL,
                &*"a".repeat(64),
                "farm",
                "live",
                "2025-01-01T00:00:00+00:00",
                "2025-11-07T10:00:00+00:00",
                NULL,
                "active",
                "borrow,return,status"
            ],
            row![
                "key_0000000000000002",
                NULL,
                &*"b".repeat(64),
                "old",
                "test",
                NULL,
                NULL,
                NULL,
                "revoked",
                "status"
            ],
            row![
                "key_0000000000000003",
                NULL,
                &*"C".repeat(64),
                "ops",
                "live",
                NULL,
                NULL,
                "2030-01-01T00:00:00Z",
                "active",
                "admin,fly"
            ],
            row![
                "key_0000000000000004",
                NULL,
                "not-hex",
                "bad",
                "live",
                NULL,
                NULL,
                NULL,
                "active",
                NULL
            ],
        ],
    );
    table(
        &mut f,
        "users",
        &[
            "username",
            "password_hash",
            "role",
            "status",
            "created_at",
            "vendor_id",
        ],
        vec![
            row![
                "Ann",
                "$pbkdf2-sha256$8000$XAuBMIYQQogxRg$tRRlz8hYn63B9LYiCd6PRo6FMiunY9ozmMMI3srxeRE",
                "admin",
                "active",
                "2025-01-01T00:00:00",
                NULL
            ],
            row!["bob", "pending", "viewer", "active", NULL, NULL],
            row!["carl", "plaintext!", "admin", "active", NULL, NULL],
            row!["vendy", "pending", "admin", "active", NULL, "techvendor"],
            row![
                "no spaces allowed",
                "pending",
                "admin",
                "active",
                NULL,
                NULL
            ],
        ],
    );
    f
}
