//! How a service is assembled and run: shared resources, the app constructor used by both
//! `main` and the tests, and the process lifecycle (migrations, signals, graceful shutdown).

use std::{
    any::{Any, TypeId},
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use axum::Router;
use sqlx::PgPool;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;
use utoipa::openapi::{
    ComponentsBuilder, InfoBuilder, OpenApi,
    security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::{router::OpenApiRouter, routes};
use utoipa_swagger_ui::SwaggerUi;

use secrecy::ExposeSecret;

use crate::{
    auth,
    chain::{
        Chain,
        txqueue::{LowBalance, SenderConfig, TxSender},
    },
    config::{Config, HttpConfig},
    daemon::{Daemon, DaemonRunner},
    db, errors,
    http::{
        self,
        health::{Check, CheckStatus},
        ratelimit::IpBudget,
    },
    mail::Mailer,
    storage::Storage,
    telemetry,
    workflow::{BoxFuture, Dispatcher, Subscriber, outbox::DispatchPolicy},
};

/// What makes a service a service: its name, its routes and where it listens.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec {
    /// Short name used in logs, metrics and the OpenAPI title (`payment`).
    pub name: &'static str,
    /// One sentence for the OpenAPI document.
    pub description: &'static str,
    /// The service's own routes; health, metrics and docs are added by [`App`].
    pub routes: fn() -> OpenApiRouter<AppState>,
    /// Its listen address in the configuration.
    pub addr: fn(&HttpConfig) -> SocketAddr,
    /// The outbox subscribers it runs.
    pub subscribers: fn(&Resources) -> Vec<Arc<dyn Subscriber>>,
    /// The daemons it runs (under leases, so every replica can offer them).
    pub daemons: fn(&Resources) -> Vec<Arc<dyn Daemon>>,
    /// Builds what only this service uses (its configuration section, its clients of third
    /// parties) as [`Part`]s of the resources, before it serves: a process that runs the service
    /// refuses to start, naming the variable, when its section is wrong; one that does not run it
    /// never reads it.
    pub prepare: fn(&Resources) -> anyhow::Result<()>,
    /// The service's own readiness check beside the database, migrations and RPC (the indexer:
    /// whether it keeps up with the chain); `None` when it has none.
    pub ready: fn(&AppState) -> BoxFuture<'_, Option<Check>>,
}

impl ServiceSpec {
    /// For services without subscribers or daemons (yet).
    pub fn none<T: ?Sized>(_: &Resources) -> Vec<Arc<T>> {
        Vec::new()
    }

    /// For services with nothing of their own to prepare.
    pub fn nothing_to_prepare(_: &Resources) -> anyhow::Result<()> {
        Ok(())
    }

    /// For services whose readiness is their dependencies'.
    pub fn no_own_check(_: &AppState) -> BoxFuture<'_, Option<Check>> {
        Box::pin(async { None })
    }
}

/// Something one service owns and builds from the resources (its configuration section, a
/// client of a third party), held once per process by [`Resources::part`].
pub trait Part: Send + Sync + 'static {
    /// Builds it; an error names the configuration variable at fault.
    fn build(resources: &Resources) -> anyhow::Result<Self>
    where
        Self: Sized;
}

/// Whether the embedded migrations have been applied to the database.
#[derive(Debug, Default)]
pub struct Migrations {
    applied: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl Migrations {
    pub fn check(&self) -> Check {
        if self.applied.load(Ordering::Acquire) {
            let count = db::MIGRATOR.iter().count();
            return Check { status: CheckStatus::Up, detail: format!("{count} applied"), latency_ms: 0 };
        }
        let detail =
            self.last_error.lock().ok().and_then(|e| e.clone()).unwrap_or_else(|| "not applied yet".to_owned());
        Check { status: CheckStatus::Down, detail, latency_ms: 0 }
    }
}

/// What every request handler can reach. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    service: &'static str,
    resources: Resources,
    ready: fn(&AppState) -> BoxFuture<'_, Option<Check>>,
}

impl AppState {
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The service's own readiness check, if it has one.
    pub async fn own_check(&self) -> Option<http::health::Check> {
        (self.ready)(self).await
    }
    pub fn config(&self) -> &Config {
        &self.resources.config
    }
    pub fn db(&self) -> &PgPool {
        &self.resources.db
    }
    pub fn chain(&self) -> &Chain {
        &self.resources.chain
    }
    pub fn migrations(&self) -> &Migrations {
        &self.resources.migrations
    }
    pub fn mailer(&self) -> &Mailer {
        &self.resources.mailer
    }
    pub fn storage(&self) -> &Storage {
        &self.resources.storage
    }
    /// A service's own part (see [`Resources::part`]).
    pub fn part<P: Part>(&self) -> anyhow::Result<Arc<P>> {
        self.resources.part()
    }
    /// Everything the process holds, for code shared by handlers and background work.
    pub fn resources(&self) -> &Resources {
        &self.resources
    }
}

/// The connections a process holds, shared by every service it runs.
#[derive(Clone, Debug)]
pub struct Resources {
    config: Arc<Config>,
    db: PgPool,
    chain: Chain,
    mailer: Mailer,
    storage: Storage,
    parts: Arc<Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>>,
    migrations: Arc<Migrations>,
}

impl Resources {
    /// Creates the pool and the chain client. Neither connects yet: a process whose database or
    /// node is down starts, and says so on `/health/ready`.
    pub fn new(config: Config) -> anyhow::Result<Self> {
        let db = db::pool(&config.database).context("DATABASE_URL")?;
        let chain = Chain::connect(&config.chain).context("RPC_URL")?;
        let mailer = Mailer::new(&config.mail)?;
        let storage = Storage::new(&config.storage)?;
        if config.kyc.dev_only_key {
            tracing::warn!("KYC_ENCRYPTION_KEY is not set: KYC documents are encrypted with a public dev-only key");
        }
        Ok(Self {
            config: Arc::new(config),
            db,
            chain,
            mailer,
            storage,
            parts: Arc::default(),
            migrations: Arc::default(),
        })
    }

    /// The process's one `P`, built on first use (services build theirs in
    /// [`ServiceSpec::prepare`], so a bad section stops the process at start).
    pub fn part<P: Part>(&self) -> anyhow::Result<Arc<P>> {
        let id = TypeId::of::<P>();
        let cached = self.parts.lock().map_err(|_| anyhow::anyhow!("parts lock poisoned"))?.get(&id).cloned();
        if let Some(part) = cached {
            return part.downcast::<P>().map_err(|_| anyhow::anyhow!("part of another type under its id"));
        }
        // Built outside the lock (it may take a while); a racing builder's copy is dropped.
        let built: Arc<dyn Any + Send + Sync> = Arc::new(P::build(self)?);
        let part =
            self.parts.lock().map_err(|_| anyhow::anyhow!("parts lock poisoned"))?.entry(id).or_insert(built).clone();
        part.downcast::<P>().map_err(|_| anyhow::anyhow!("part of another type under its id"))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn db(&self) -> &PgPool {
        &self.db
    }

    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    /// Resolves once the migrations are applied.
    pub async fn migrated(&self) {
        while !self.migrations.applied.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Applies migrations, retrying with backoff while the database is unreachable, until they
    /// are applied or `shutdown` fires.
    pub async fn migrate(&self, shutdown: CancellationToken) {
        let mut delay = Duration::from_millis(250);
        loop {
            match db::migrate(&self.db).await {
                Ok(()) => {
                    self.migrations.applied.store(true, Ordering::Release);
                    tracing::info!("database migrations applied");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "database migrations failed");
                    if let Ok(mut last) = self.migrations.last_error.lock() {
                        *last = Some(e.to_string());
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(delay) => delay = (delay * 2).min(Duration::from_secs(10)),
            }
        }
    }
}

/// A service bound to its listener, ready to serve.
#[derive(Debug)]
pub struct App {
    spec: ServiceSpec,
    listener: TcpListener,
    router: Router,
}

impl App {
    /// Builds the service and binds `addr` (port 0 picks a free port; see [`App::address`]).
    pub async fn build(spec: ServiceSpec, resources: &Resources, addr: SocketAddr) -> anyhow::Result<Self> {
        (spec.prepare)(resources).with_context(|| format!("{}: configuration", spec.name))?;
        let listener =
            TcpListener::bind(addr).await.with_context(|| format!("{}: cannot listen on {addr}", spec.name))?;
        let router = router(spec, resources.clone());
        Ok(Self { spec, listener, router })
    }

    /// The address actually bound.
    pub fn address(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until `shutdown` fires, then lets in-flight requests finish.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let name = self.spec.name;
        tracing::info!(service = name, address = %self.address(), "listening");
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, service).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
        tracing::info!(service = name, "stopped");
        Ok(())
    }
}

/// The complete router of a service: its routes plus health, metrics, `/openapi.json`, Swagger
/// UI at `/docs` and the pages' stylesheet, inside the shared middleware stack.
pub fn router(spec: ServiceSpec, resources: Resources) -> Router {
    let (router, api) = split(spec);
    http::metrics::describe_service(spec.name);
    let timeout = resources.config.http.request_timeout;
    let auth = &resources.config.auth;
    let ip_budget = IpBudget::new(auth.rate_limits.ip_per_minute, auth.trust_forwarded_for);
    let state = AppState { service: spec.name, resources, ready: spec.ready };
    let router = router
        .with_state(state.clone())
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api))
        .merge(crate::pages::assets())
        .layer(axum::middleware::from_fn(crate::pages::html_errors))
        // The permission wall (`auth::require`) runs as a route layer and reads the state from here.
        .layer(axum::Extension(state));
    http::with_middleware(router, spec.name, timeout, ip_budget)
}

/// The service's routes with the operational ones, and its OpenAPI document.
pub fn openapi_router(spec: ServiceSpec) -> OpenApiRouter<AppState> {
    let mut api = OpenApi::default();
    api.info = InfoBuilder::new()
        .title(format!("Brandmint {}", spec.name))
        .description(Some(spec.description))
        .version(env!("CARGO_PKG_VERSION"))
        .build();
    api.components = Some(
        ComponentsBuilder::new()
            .security_scheme(
                auth::SECURITY_SCHEME,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT access token, or a brand API key bm_<prefix>_<secret>")
                        .build(),
                ),
            )
            .build(),
    );
    OpenApiRouter::with_openapi(api)
        .routes(auth::public(routes!(http::health::live)))
        .routes(auth::public(routes!(http::health::ready)))
        .routes(auth::public(routes!(http::metrics::render)))
        .merge(crate::pages::session_routes())
        .merge((spec.routes)())
}

/// The OpenAPI document of a service, without starting it.
pub fn openapi(spec: ServiceSpec) -> OpenApi {
    split(spec).1
}

/// The service's routes and their finished OpenAPI document.
fn split(spec: ServiceSpec) -> (axum::Router<AppState>, OpenApi) {
    let (router, mut api) = openapi_router(spec).split_for_parts();
    http::problem::document_problems(&mut api);
    (router, api)
}

/// Runs the given services in this process until SIGINT/SIGTERM: loads the configuration,
/// starts telemetry, applies migrations in the background and serves every service.
pub async fn run(specs: &[ServiceSpec]) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    telemetry::init(&config.log);
    crate::chain::install_crypto_provider();
    let _sentry = config.observability.sentry_dsn.as_ref().map(|dsn| {
        sentry::init((dsn.expose_secret(), {
            let mut options = sentry::ClientOptions::default();
            options.release = Some(env!("CARGO_PKG_VERSION").into());
            options.environment = Some(format!("{:?}", config.environment).to_lowercase().into());
            options
        }))
    });
    let grace = config.http.shutdown_grace;
    let resources = Resources::new(config)?;
    let shutdown = CancellationToken::new();

    let mut tasks = JoinSet::new();
    for spec in specs {
        let app = App::build(*spec, &resources, (spec.addr)(&resources.config.http)).await?;
        tasks.spawn(app.run(shutdown.clone()));
    }
    // Not in `tasks`: finishing the migrations is not a reason to stop serving.
    let migrations = tokio::spawn({
        let (resources, shutdown) = (resources.clone(), shutdown.clone());
        async move { resources.migrate(shutdown).await }
    });
    // Background work starts once the schema is there.
    tasks.spawn({
        let (resources, shutdown, specs) = (resources.clone(), shutdown.clone(), specs.to_vec());
        async move {
            resources.migrated().await;
            background(&resources, &specs, shutdown).await.map_err(std::io::Error::other)
        }
    });

    tokio::select! {
        () = termination() => tracing::info!(grace = ?grace, "shutting down"),
        Some(result) = tasks.join_next() => {
            // A server only returns early when it failed; take the others down with it.
            shutdown.cancel();
            result.context("service task panicked")?.context("service failed")?;
        }
    }
    shutdown.cancel();
    drop(migrations.await);
    let deadline = Instant::now() + grace;
    while let Ok(Some(result)) = tokio::time::timeout_at(deadline.into(), tasks.join_next()).await {
        result.context("service task panicked")?.context("service failed")?;
    }
    if !tasks.is_empty() {
        tracing::warn!(remaining = tasks.len(), "grace period over; aborting in-flight work");
        tasks.shutdown().await;
    }
    resources.db.close().await;
    Ok(())
}

/// The outbox dispatcher, the daemon runner and one transaction sender per configured signer key
/// (leases and per-signer locks pick the active replica), with the subscribers and daemons of
/// every service it runs plus the platform's own (error log cleanup).
pub async fn background(
    resources: &Resources,
    specs: &[ServiceSpec],
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let instance = format!(
        "{}:{}:{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut dispatcher = Dispatcher::new(resources.db.clone(), DispatchPolicy::default());
    let retention = resources.config.observability.error_log_retention;
    let mut runner = DaemonRunner::new(resources.db.clone(), instance)
        .with(errors::ErrorLogCleanup { retention })
        .with(auth::IdentityCleanup)
        .with(http::ratelimit::RateLimitCleanup);
    for spec in specs {
        for subscriber in (spec.subscribers)(resources) {
            dispatcher = dispatcher.subscribe_arc(subscriber);
        }
        for daemon in (spec.daemons)(resources) {
            runner = runner.with_arc(daemon);
        }
    }
    let mut senders = tokio::task::JoinSet::new();
    let chain = &resources.config.chain;
    for key in &chain.signer_keys {
        let signer: alloy::signers::local::PrivateKeySigner = key.expose_secret().parse()?;
        let config = SenderConfig {
            stuck_after: chain.stuck_after,
            fee_bump_percent: chain.fee_bump_percent,
            max_fee_per_gas: chain.max_fee_per_gas,
            low_balance: match chain.low_balance_wei {
                Some(wei) => LowBalance::Wei(wei),
                None => LowBalance::Transactions(chain.low_balance_transactions),
            },
            ..SenderConfig::default()
        };
        let sender = TxSender::new(resources.db.clone(), resources.chain.provider().clone(), signer, config);
        senders.spawn(sender.run(shutdown.clone()));
    }
    let senders = async {
        while let Some(result) = senders.join_next().await {
            result??;
        }
        anyhow::Ok(())
    };
    tokio::try_join!(dispatcher.run(shutdown.clone()), runner.run(shutdown), senders)?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn termination() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
