//! `--demo`: seed an empty store with a vendor, two tenants and five tools, and say how
//! to use them.
use std::fmt::Write as _;
use std::net::SocketAddr;

use permetrix_actors::domain::SettingsPatch;
use permetrix_actors::messages::UpdateSettings;
use permetrix_storage::records::{
    PackageRecord, PackageStatus, Scope, SignaturePolicy, UserRecord, UserRole,
};
use permetrix_storage::{Money, TenantId, VendorId};
use secrecy::SecretString;

use crate::api::accounts::{self, NewTenant, NewVendor};
use crate::auth::now;
use crate::auth::secrets::random_hex;
use crate::server::state::AppState;

/// `(product id, product name, total, commit, max overage, overage price)`.
pub const TOOLS: [(&str, &str, u32, u32, u32, i64); 5] = [
    ("ecu-dev-suite", "ECU Development Suite", 20, 5, 15, 500),
    ("greenhills-multi", "GreenHills Multi IDE", 15, 10, 5, 800),
    (
        "autosar-config",
        "AUTOSAR Configuration Tool",
        12,
        8,
        4,
        400,
    ),
    ("can-analyzer-pro", "CAN Bus Analyzer Pro", 10, 10, 0, 0),
    ("mbd-studio", "Model-Based Design Studio", 18, 6, 12, 600),
];

/// What the demo created (secrets shown once).
pub struct DemoCredentials {
    /// Vendor id.
    pub vendor_id: String,
    /// Vendor portal password.
    pub vendor_password: String,
    /// Vendor API key.
    pub vendor_api_key: String,
    /// Vendor signing secret.
    pub signing_secret: String,
    /// The demo tenants.
    pub tenants: Vec<DemoTenant>,
}

/// One demo tenant's credentials.
pub struct DemoTenant {
    /// Tenant id.
    pub id: String,
    /// Admin-scope API key.
    pub admin_key: String,
    /// Borrow-scope API key.
    pub borrow_key: String,
    /// Password of the tenant's portal user `admin` (its dashboard's login); each
    /// tenant has its own, so that one tenant's password opens no other dashboard.
    pub admin_password: String,
}

/// Creates the portal user `admin` (role admin) of a demo tenant.
async fn add_portal_admin(
    state: &AppState,
    tenant: &TenantId,
    password: &str,
) -> anyhow::Result<()> {
    let record = UserRecord {
        user_id: random_hex::<16>(),
        tenant_id: tenant.to_string(),
        username: "admin".into(),
        password_hash: Some(
            state
                .security
                .hash_password(tenant.as_str(), password.to_owned())
                .await?,
        ),
        role: UserRole::Admin,
        created_at: now(state),
    };
    state.platform.add_user(&record)?.wait().await?;
    Ok(())
}

/// Seeds demo data if no vendor exists yet; `None` if the store already had data.
pub async fn seed_if_empty(state: &AppState) -> anyhow::Result<Option<DemoCredentials>> {
    if !state.platform.vendors()?.is_empty() {
        return Ok(None);
    }
    let vendor_id = VendorId::parse("vector")?;
    let vendor_password = format!("demo-{}", random_hex::<6>());
    let vendor = accounts::create_vendor(
        state,
        NewVendor {
            vendor_id: vendor_id.clone(),
            vendor_name: "Vector Informatik (demo)".into(),
            contact_email: Some("licensing@vector.example".into()),
            password: Some(SecretString::from(vendor_password.clone())),
            signing_secret: None,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("seeding the demo vendor: {e}"))?;

    let mut tenants = Vec::new();
    for (id, company, policy) in [
        // acme has signatures off so that plain curl works; globex keeps the default (v1).
        ("acme", "ACME Automotive", SignaturePolicy::Off),
        ("globex", "Globex Motors", SignaturePolicy::V1),
    ] {
        let tenant_id = TenantId::parse(id)?;
        let created = accounts::create_tenant(
            state,
            &vendor_id,
            NewTenant {
                tenant_id: tenant_id.clone(),
                company_name: company.into(),
                domain: Some(format!("{id}.example")),
                crm_id: None,
                custom_hosts: Vec::new(),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("seeding demo tenant {id}: {e}"))?;
        for (product_id, name, total, commit, overage, price) in TOOLS {
            let package = PackageRecord {
                package_id: format!("pkg-{}", random_hex::<8>()),
                vendor_id: vendor_id.to_string(),
                product_id: product_id.into(),
                product_name: name.into(),
                total,
                commit_qty: commit,
                max_overage: overage,
                commit_price: Money::ZERO,
                overage_price: Money::from_cents(price * 100),
                crm_opportunity_id: None,
                valid_from: None,
                valid_until: None,
                status: PackageStatus::Active,
                created_at: now(state),
                // A week away from the broker, as FlexNet's default, for one seat.
                max_offline_hours: 168,
                max_offline_seats: 1,
            };
            accounts::provision(state, &vendor_id, &tenant_id, package)
                .await
                .map_err(|e| anyhow::anyhow!("provisioning {name} to {id}: {e}"))?;
        }
        state
            .registry
            .send(
                &tenant_id,
                UpdateSettings(SettingsPatch {
                    signature_policy: Some(policy),
                    ..SettingsPatch::default()
                }),
            )
            .await?;
        let borrow_key =
            accounts::create_key(state, &tenant_id, "demo build farm".into(), Scope::Borrow)
                .await
                .map_err(|e| anyhow::anyhow!("creating a demo key for {id}: {e}"))?;
        let admin_password = format!("demo-{}", random_hex::<6>());
        add_portal_admin(state, &tenant_id, &admin_password)
            .await
            .map_err(|e| anyhow::anyhow!("creating the portal user of {id}: {e}"))?;
        tenants.push(DemoTenant {
            id: id.to_owned(),
            admin_key: created.admin_api_key,
            borrow_key: borrow_key.api_key,
            admin_password,
        });
    }
    tracing::info!("seeded demo data: vendor 'vector', tenants acme and globex");
    Ok(Some(DemoCredentials {
        vendor_id: vendor.vendor_id,
        vendor_password,
        vendor_api_key: vendor.api_key,
        signing_secret: vendor.signing_secret,
        tenants,
    }))
}

impl DemoCredentials {
    /// The text printed once at start-up: credentials and copy-paste examples.
    pub fn banner(&self, addr: SocketAddr) -> String {
        let base = format!("http://{addr}");
        let mut s = String::new();
        let _ = writeln!(s, "Demo data seeded (shown once; keep it):");
        let _ = writeln!(
            s,
            "  vendor         {} (portal password: {})",
            self.vendor_id, self.vendor_password
        );
        let _ = writeln!(s, "  vendor key     {}", self.vendor_api_key);
        let _ = writeln!(s, "  signing secret {}", self.signing_secret);
        for t in &self.tenants {
            let _ = writeln!(s, "  tenant {:<7} admin key  {}", t.id, t.admin_key);
            let _ = writeln!(s, "  tenant {:<7} borrow key {}", t.id, t.borrow_key);
        }
        let _ = writeln!(
            s,
            "\nPortals (in a browser; *.localhost resolves to this machine):"
        );
        let _ = writeln!(
            s,
            "  vendor portal  http://vendor.localhost:{}/  user {} password {}",
            addr.port(),
            self.vendor_id,
            self.vendor_password
        );
        for t in &self.tenants {
            let _ = writeln!(
                s,
                "  dashboard      http://{}.localhost:{}/  user admin password {}",
                t.id,
                addr.port(),
                t.admin_password
            );
        }
        if let Some(DemoTenant {
            id,
            borrow_key: borrow,
            ..
        }) = self.tenants.first()
        {
            let _ = writeln!(s, "\nTry it (tenant {id}, signatures off):");
            let _ = writeln!(
                s,
                "  curl -s {base}/licenses/status -H 'Host: {id}.localhost' -H 'Authorization: Bearer {borrow}'"
            );
            let _ = writeln!(
                s,
                "  curl -s {base}/licenses/borrow -H 'Host: {id}.localhost' -H 'Authorization: Bearer {borrow}' \\\n       -H 'Content-Type: application/json' -d '{{\"tool\":\"ECU Development Suite\",\"user\":\"dev1@{id}.example\"}}'"
            );
            let _ = writeln!(
                s,
                "  curl -s {base}/licenses/return -H 'Host: {id}.localhost' -H 'Content-Type: application/json' -d '{{\"id\":\"<id from the borrow>\"}}'"
            );
            let _ = writeln!(
                s,
                "  curl -s {base}/api/vendor/customers -H 'Host: vendor.localhost' -H 'Authorization: Bearer {}'",
                self.vendor_api_key
            );
        }
        s
    }
}
