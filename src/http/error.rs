//! The one place where errors become HTTP responses.
//!
//! Every error is JSON `{"error": "<snake_case_code>", "detail": "<sentence>"}`.
//! Internal causes are logged once, with their chain, and never sent to clients.
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use permetrix_actors::TenantError;
use permetrix_actors::domain::DomainError;
use permetrix_storage::{Broker, StorageError};
use serde::Serialize;

/// Result of a handler.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or violates a rule.
    #[error("{detail}")]
    BadRequest {
        /// Code.
        code: &'static str,
        /// Sentence.
        detail: String,
    },
    /// 401: no valid credential.
    #[error("{detail}")]
    Unauthorized {
        /// Code.
        code: &'static str,
        /// Sentence.
        detail: String,
    },
    /// 403: a valid credential that may not do this here.
    #[error("{detail}")]
    Forbidden {
        /// Code.
        code: &'static str,
        /// Sentence.
        detail: String,
    },
    /// 404.
    #[error("{detail}")]
    NotFound {
        /// Code.
        code: &'static str,
        /// Sentence.
        detail: String,
    },
    /// 409.
    #[error("{detail}")]
    Conflict {
        /// Code.
        code: &'static str,
        /// Sentence.
        detail: String,
    },
    /// 405 with `Allow`: the path exists, the method does not.
    #[error("this path answers {allow} only")]
    MethodNotAllowed {
        /// The methods the path answers, as the `Allow` header lists them.
        allow: &'static str,
    },
    /// 415: the body is not of the media type the endpoint requires.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 413.
    #[error("the request body is larger than the limit of {limit} bytes; send less")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// 503 with `Retry-After`.
    #[error("{detail}")]
    Unavailable {
        /// Code.
        code: &'static str,
        /// Sentence.
        detail: String,
        /// Back-off.
        retry_after: Duration,
    },
    /// 429 with `Retry-After`: a rate limit or login throttle.
    #[error("{detail}")]
    TooManyRequests {
        /// Code.
        code: &'static str,
        /// Sentence.
        detail: String,
        /// Back-off.
        retry_after: Duration,
    },
    /// 408, 414 or 431: the request broke a size or time limit (`crate::http::limits`).
    #[error("{detail}")]
    RequestLimit {
        /// Status.
        status: StatusCode,
        /// Code.
        code: &'static str,
        /// Sentence.
        detail: String,
    },
    /// An error of the OAuth 2.0 token endpoint (RFC 6749 §5.2): 401 with a `Basic`
    /// challenge for `invalid_client`, else 400; the body also carries the RFC's
    /// `error_description`.
    #[error("{detail}")]
    OAuth {
        /// The RFC's error code.
        code: &'static str,
        /// Sentence.
        detail: String,
    },
    /// 503 `tenant_elsewhere` with `Retry-After`: another broker owns the tenant. The
    /// routing middleware sends such a request to the owner where it can
    /// (`crate::http::routing`); what is left is answered, and the client retries.
    #[error("this tenant is served by another broker ({}) right now; retry shortly", .0.node)]
    Elsewhere(Broker),
    /// A rule of the domain refused the operation.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// 500: a bug or an unexpected failure. Logged, not shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Code of the 503 that refuses a request for a full tenant mailbox.
const TENANT_OVERLOADED: &str = "tenant_overloaded";
/// Code of the 503 of a request whose tenant another broker owns.
const TENANT_ELSEWHERE: &str = "tenant_elsewhere";
/// How soon a request for a tenant that moved may be retried.
const MOVED_RETRY_AFTER: Duration = Duration::from_secs(1);

/// `Retry-After` of a quarantined tenant's refusals: only an operator ends a quarantine,
/// so clients are asked to come back in a minute rather than at once.
pub const QUARANTINE_RETRY_AFTER: Duration = Duration::from_secs(60);

impl ApiError {
    /// The `Retry-After` of a refusal for a full tenant mailbox (`None` for any other
    /// error).
    pub fn overload_retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Unavailable {
                code: TENANT_OVERLOADED,
                retry_after,
                ..
            } => Some(*retry_after),
            _ => None,
        }
    }

    /// The broker that owns the tenant, for a request that belongs there.
    pub fn elsewhere(&self) -> Option<&Broker> {
        match self {
            ApiError::Elsewhere(broker) => Some(broker),
            _ => None,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid(detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code: "invalid_request",
            detail: detail.into(),
        }
    }

    /// 404 `not_found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::NotFound {
            code: "not_found",
            detail: detail.into(),
        }
    }

    /// 404 `unknown_tenant`.
    pub fn unknown_tenant() -> Self {
        ApiError::NotFound {
            code: "unknown_tenant",
            detail: "no tenant has this host name; check the subdomain".into(),
        }
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        ApiError::Unauthorized {
            code: "unauthorized",
            detail: detail.into(),
        }
    }

    /// 403 `forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        ApiError::Forbidden {
            code: "forbidden",
            detail: detail.into(),
        }
    }

    /// 500 from any error.
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }

    /// The error code (`error` field of the body; `reason` of borrow failure metrics).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Unauthorized { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::NotFound { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Unavailable { code, .. }
            | ApiError::TooManyRequests { code, .. }
            | ApiError::RequestLimit { code, .. }
            | ApiError::OAuth { code, .. } => code,
            ApiError::TooLarge { .. } => "payload_too_large",
            ApiError::Elsewhere(_) => TENANT_ELSEWHERE,
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Domain(e) => e.code(),
            ApiError::Internal(_) => "internal_error",
        }
    }
}

fn domain_status(e: &DomainError) -> StatusCode {
    match e {
        DomainError::UnknownTool(_)
        | DomainError::UnknownBorrow
        | DomainError::UnknownPackage(_)
        | DomainError::UnknownRequest(_) => StatusCode::NOT_FOUND,
        DomainError::PackageRevoked(_)
        | DomainError::RequestDecided { .. }
        | DomainError::RequestPending { .. } => StatusCode::CONFLICT,
        DomainError::NoSeats { .. }
        | DomainError::MaxOverageReached { .. }
        | DomainError::UserLimitReached { .. }
        | DomainError::OfflineLimitReached { .. }
        | DomainError::PackageExists(_) => StatusCode::CONFLICT,
        DomainError::SpendCapReached { .. } | DomainError::PackageInactive { .. } => {
            StatusCode::FORBIDDEN
        }
        DomainError::ExceedsVendorLimit { .. } | DomainError::Invalid(_) => StatusCode::BAD_REQUEST,
        // An expired lease is gone, as API.md says of heartbeats ("404 if the lease is
        // gone"); the code tells it apart from an id that never existed.
        DomainError::LeaseExpired { .. } => StatusCode::NOT_FOUND,
        DomainError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        DomainError::ReplayedNonce | DomainError::StaleSignature => StatusCode::UNAUTHORIZED,
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    detail: String,
    /// The same sentence under the name OAuth 2.0 clients read (token endpoint only).
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<String>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable { .. } | ApiError::Elsewhere(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RequestLimit { status, .. } => *status,
            ApiError::OAuth { code, .. } if *code == "invalid_client" => StatusCode::UNAUTHORIZED,
            ApiError::OAuth { .. } => StatusCode::BAD_REQUEST,
            ApiError::Domain(e) => domain_status(e),
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let detail = match self {
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "the server hit an unexpected error; it has been logged, retry later".into()
            }
            other => other.to_string(),
        };
        let mut res = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unavailable { retry_after, .. }
            | ApiError::TooManyRequests { retry_after, .. } => {
                res.insert_header((
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after.as_secs().max(1)),
                ));
            }
            ApiError::Elsewhere(_) => {
                res.insert_header((
                    header::RETRY_AFTER,
                    HeaderValue::from(MOVED_RETRY_AFTER.as_secs()),
                ));
            }
            ApiError::Unauthorized { .. } => {
                res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            ApiError::MethodNotAllowed { allow } => {
                res.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
            }
            ApiError::OAuth { code, .. } => {
                // RFC 6749 §5.1/§5.2: token responses are never cached; a failed client
                // authentication is challenged with the scheme the endpoint takes.
                res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
                res.insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
                if *code == "invalid_client" {
                    res.insert_header((
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"permetrix\""),
                    ));
                }
            }
            _ => {}
        }
        let error_description = matches!(self, ApiError::OAuth { .. }).then(|| detail.clone());
        res.json(Body {
            error: self.code(),
            detail,
            error_description,
        })
    }
}

impl From<TenantError> for ApiError {
    fn from(e: TenantError) -> Self {
        match e {
            TenantError::UnknownTenant => ApiError::unknown_tenant(),
            // Signature refusals the tenant decides answer like the edge's: 401 with
            // `WWW-Authenticate`.
            TenantError::Domain(d @ (DomainError::ReplayedNonce | DomainError::StaleSignature)) => {
                ApiError::Unauthorized {
                    code: d.code(),
                    detail: d.to_string(),
                }
            }
            TenantError::Domain(d) => ApiError::Domain(d),
            TenantError::Overloaded { retry_after } => ApiError::Unavailable {
                code: TENANT_OVERLOADED,
                detail: format!(
                    "this tenant's request queue is full; retry in {} s",
                    retry_after.as_secs().max(1)
                ),
                retry_after,
            },
            TenantError::Unavailable(why) => ApiError::Unavailable {
                code: "tenant_unavailable",
                detail: format!("the tenant is temporarily unavailable: {why}; retry shortly"),
                retry_after: Duration::from_secs(1),
            },
            TenantError::Quarantined { restarts, period } => ApiError::Unavailable {
                code: "tenant_unavailable",
                detail: format!(
                    "this tenant is quarantined: its actor crashed {restarts} times within {} s, \
                     so its requests are refused until the platform operator resumes it; \
                     retrying sooner will not help",
                    period.as_secs()
                ),
                retry_after: QUARANTINE_RETRY_AFTER,
            },
            TenantError::Storage(s) => s.into(),
            TenantError::Elsewhere(broker) => ApiError::Elsewhere(broker),
            TenantError::Timeout => ApiError::Unavailable {
                code: "timeout",
                detail: "the tenant did not answer in time; retry shortly".into(),
                retry_after: Duration::from_secs(1),
            },
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        if e.is_host_taken()
            && let StorageError::AlreadyExists { key, .. } = &e
        {
            // Which tenant holds it is not said: it may be another vendor's customer.
            return ApiError::Conflict {
                code: "host_taken",
                detail: format!(
                    "'{key}' is a custom host of another tenant; it must be removed there first"
                ),
            };
        }
        match e {
            StorageError::AlreadyExists { table, key } => ApiError::Conflict {
                code: "already_exists",
                detail: format!("{table} '{key}' already exists"),
            },
            // The write was not applied and its actor stopped: a retry reaches the
            // tenant's new owner.
            StorageError::Fenced { .. } => ApiError::Unavailable {
                code: TENANT_ELSEWHERE,
                detail: "this tenant moved to another broker; the request was not applied, \
                         retry"
                    .into(),
                retry_after: MOVED_RETRY_AFTER,
            },
            other => {
                tracing::error!(error = %other, "storage error");
                ApiError::Unavailable {
                    code: "storage_unavailable",
                    detail: "storage is unavailable; the request was not applied, retry later"
                        .into(),
                    retry_after: Duration::from_secs(5),
                }
            }
        }
    }
}
