//! Bootstrapping the load tenants through the public APIs, and the credentials file
//! that lets later runs reuse them.
use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;

use anyhow::{Context, bail};
use awc::Client;
use awc::http::Method;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::LoadArgs;
use super::report::progress_bar;

/// Credentials of one load tenant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TenantCreds {
    /// Tenant id.
    pub id: String,
    /// Its admin API key (admin keys may borrow).
    pub key: String,
}

/// What `--setup` created; kept in `--credentials FILE`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Credentials {
    /// The vendor that owns every load tenant.
    pub vendor_id: String,
    /// Its API key.
    pub vendor_key: String,
    /// Its request-signing secret.
    pub signing_secret: String,
    /// Tools provisioned to every tenant: `tool-0` … `tool-<n-1>`.
    pub tools: usize,
    /// Signature policy the tenants currently have (`off` or `v1`).
    pub signature_policy: String,
    /// Tenants, in creation order.
    pub tenants: Vec<TenantCreds>,
}

impl Credentials {
    /// Reads a credentials file written by `--setup`.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading the load credentials {}; run with --setup first",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a load credentials file; delete it and run with --setup",
                path.display()
            )
        })
    }

    fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string(self)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// Fails unless the file has as many tenants and tools as the run asks for.
    pub fn check_covers(&self, args: &LoadArgs) -> anyhow::Result<()> {
        let needed = args.first_tenant + args.tenants;
        if self.tenants.len() < needed || self.tools < args.tools {
            bail!(
                "the credentials file has {} tenants with {} tools each; the run needs {needed} \
                 with {}: run with --setup to add tenants (tools can only be set for a new file)",
                self.tenants.len(),
                self.tools,
                args.tools
            );
        }
        Ok(())
    }
}

/// Tool names of the load tenants.
pub fn tool_name(i: usize) -> String {
    format!("tool-{i}")
}

fn policy_of(args: &LoadArgs) -> &'static str {
    if args.signed { "v1" } else { "off" }
}

/// A JSON request; returns the status and the body (Null if not JSON).
pub(super) async fn call(
    client: &Client,
    args: &LoadArgs,
    method: Method,
    host: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let url = format!("http://{}{}", args.server, path);
    let mut req = client
        .request(method, &url)
        .insert_header(("Host", host.to_owned()));
    if let Some(t) = token {
        req = req.insert_header(("Authorization", format!("Bearer {t}")));
    }
    let res = match body {
        Some(b) => req.send_json(&b).await,
        None => req.send().await,
    };
    let mut res = res.map_err(|e| anyhow::anyhow!("{path} on {}: {e}", args.server))?;
    let status = res.status().as_u16();
    let bytes = res
        .body()
        .limit(64 * 1024 * 1024)
        .await
        .map_err(|e| anyhow::anyhow!("reading the reply of {path}: {e}"))?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

fn expect(what: &str, status: u16, want: u16, body: &Value) -> anyhow::Result<()> {
    if status != want {
        bail!("{what}: expected {want}, got {status}: {body}");
    }
    Ok(())
}

fn text_field(body: &Value, field: &str) -> anyhow::Result<String> {
    body[field]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("reply lacks '{field}': {body}"))
}

async fn create_vendor(client: &Client, args: &LoadArgs) -> anyhow::Result<Credentials> {
    let token = args
        .admin_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .context("--setup creates a vendor through the operator API: set PERMETRIX_ADMIN_TOKEN")?;
    let (status, body) = call(
        client,
        args,
        Method::POST,
        &args.base_domain,
        "/api/admin/vendors",
        Some(token),
        Some(json!({"vendor_id": args.vendor, "vendor_name": "permetrix load"})),
    )
    .await?;
    if status == 409 {
        bail!(
            "vendor '{}' already exists on this server but {} does not hold its credentials; \
             pass that file with --credentials, or another --vendor",
            args.vendor,
            args.credentials.display()
        );
    }
    expect("creating the load vendor", status, 201, &body)?;
    Ok(Credentials {
        vendor_id: args.vendor.clone(),
        vendor_key: text_field(&body, "api_key")?,
        signing_secret: text_field(&body, "signing_secret")?,
        tools: args.tools,
        signature_policy: "v1".into(),
        tenants: Vec::new(),
    })
}

async fn create_tenant(
    client: &Client,
    args: &LoadArgs,
    creds: &Credentials,
    id: String,
    policy: &str,
) -> anyhow::Result<TenantCreds> {
    let vendor_host = format!("vendor.{}", args.base_domain);
    let (status, body) = call(
        client,
        args,
        Method::POST,
        &vendor_host,
        "/api/vendor/customers",
        Some(&creds.vendor_key),
        Some(json!({"tenant_id": id, "company_name": format!("{id} load")})),
    )
    .await?;
    expect(&format!("creating tenant {id}"), status, 201, &body)?;
    let key = text_field(&body, "admin_api_key")?;
    for t in 0..creds.tools {
        let name = tool_name(t);
        let (status, body) = call(
            client,
            args,
            Method::POST,
            &vendor_host,
            "/api/vendor/provision",
            Some(&creds.vendor_key),
            Some(json!({
                "tenant_id": id, "product_id": name, "product_name": name,
                "total": args.seats, "commit_qty": args.seats, "max_overage": 0,
            })),
        )
        .await?;
        expect(&format!("provisioning {name} to {id}"), status, 201, &body)?;
    }
    set_policy(client, args, &id, &key, policy).await?;
    Ok(TenantCreds { id, key })
}

async fn set_policy(
    client: &Client,
    args: &LoadArgs,
    tenant: &str,
    key: &str,
    policy: &str,
) -> anyhow::Result<()> {
    let host = format!("{tenant}.{}", args.base_domain);
    let (status, body) = call(
        client,
        args,
        Method::PUT,
        &host,
        "/config/security",
        Some(key),
        Some(json!({"signature_policy": policy})),
    )
    .await?;
    expect(
        &format!("setting the signature policy of {tenant}"),
        status,
        200,
        &body,
    )
}

/// Runs `job(i)` for `i in 0..count` with at most `concurrency` at once, advancing
/// `bar`; stops at the first error.
async fn for_each<F, Fut>(
    count: usize,
    concurrency: usize,
    bar: &ProgressBar,
    job: F,
) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let next = Cell::new(0usize);
    let failed: RefCell<Option<anyhow::Error>> = RefCell::new(None);
    let lane = || async {
        loop {
            let i = next.get();
            if i >= count || failed.borrow().is_some() {
                return;
            }
            next.set(i + 1);
            if let Err(e) = job(i).await {
                failed.borrow_mut().get_or_insert(e);
                return;
            }
            bar.inc(1);
        }
    };
    futures_util::future::join_all((0..concurrency.max(1)).map(|_| lane())).await;
    match failed.into_inner() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Creates whatever the credentials file lacks for this run, and saves it.
pub async fn ensure(client: &Client, args: &LoadArgs) -> anyhow::Result<Credentials> {
    let mut creds = if args.credentials.exists() {
        Credentials::read(&args.credentials)?
    } else {
        let mut c = create_vendor(client, args).await?;
        c.signature_policy = policy_of(args).into();
        c.write(&args.credentials)?;
        c
    };
    if creds.tools < args.tools {
        bail!(
            "{} was set up with {} tools per tenant; delete it (and use a fresh server or \
             another --vendor) to set up {}",
            args.credentials.display(),
            creds.tools,
            args.tools
        );
    }
    let have = creds.tenants.len();
    let needed = args.first_tenant + args.tenants;
    if have >= needed {
        return Ok(creds);
    }
    let missing = needed - have;
    eprintln!(
        "setting up {missing} tenants with {} tools each",
        creds.tools
    );
    let bar = progress_bar(args, missing as u64, "setup");
    let created: RefCell<Vec<TenantCreds>> = RefCell::new(Vec::with_capacity(missing));
    let policy = creds.signature_policy.clone();
    let shared = Rc::new(creds.clone());
    let result = for_each(missing, args.connections, &bar, |i| {
        let id = format!("{}-{}", args.tenant_prefix, have + i);
        let (shared, policy, created) = (Rc::clone(&shared), policy.clone(), &created);
        async move {
            let t = create_tenant(client, args, &shared, id, &policy).await?;
            created.borrow_mut().push(t);
            Ok(())
        }
    })
    .await;
    bar.finish_and_clear();
    let mut created = created.into_inner();
    // Keep the file in tenant-id order so that `--tenants N` means the first N.
    created.sort_by_key(|t| tenant_index(&t.id));
    creds.tenants.extend(created);
    creds.write(&args.credentials)?;
    result.with_context(|| {
        format!(
            "setting up tenants (those created so far are saved in {})",
            args.credentials.display()
        )
    })?;
    Ok(creds)
}

fn tenant_index(id: &str) -> usize {
    id.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// Sets every tenant's signature policy to what the run needs (signed or not).
pub async fn ensure_policy(
    client: &Client,
    args: &LoadArgs,
    creds: &Credentials,
) -> anyhow::Result<()> {
    let want = policy_of(args);
    if creds.signature_policy == want {
        return Ok(());
    }
    eprintln!(
        "setting signature policy '{want}' on {} tenants",
        creds.tenants.len()
    );
    let bar = progress_bar(args, creds.tenants.len() as u64, "policy");
    let result = for_each(creds.tenants.len(), args.connections, &bar, |i| {
        let t = &creds.tenants[i];
        set_policy(client, args, &t.id, &t.key, want)
    })
    .await;
    bar.finish_and_clear();
    result?;
    let mut updated = creds.clone();
    updated.signature_policy = want.into();
    updated.write(&args.credentials)
}

/// Reads every tenant's status once (which activates its actor); returns how many
/// answered 200.
pub async fn touch(client: &Client, args: &LoadArgs, creds: &Credentials) -> anyhow::Result<u64> {
    let bar = progress_bar(args, args.tenants as u64, "touch");
    let ok = Cell::new(0u64);
    let result = for_each(args.tenants, args.connections, &bar, |i| {
        let t = &creds.tenants[args.first_tenant + i];
        let ok = &ok;
        async move {
            let host = format!("{}.{}", t.id, args.base_domain);
            let (status, body) = call(
                client,
                args,
                Method::GET,
                &host,
                "/licenses/status",
                Some(&t.key),
                None,
            )
            .await?;
            expect(&format!("status of {}", t.id), status, 200, &body)?;
            ok.set(ok.get() + 1);
            Ok(())
        }
    })
    .await;
    bar.finish_and_clear();
    result.map(|()| ok.get())
}
