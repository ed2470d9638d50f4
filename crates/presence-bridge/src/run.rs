//! `presence-bridge run`: the daemon. Also used in-process by `demo`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use presence_config::{Diagnostic, Loaded};
use presence_cti::CtiServer;
use presence_engine::{Engine, EngineConfig, EngineHandle, EngineOptions};
use presence_sfb::SfbTransport;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::RunArgs;
use crate::admin::{self, AdminState, Reloader};
use crate::files::{Sections, load_config};

/// How long a shutdown waits for publications in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running bridge: SfB transport, engine, contact-centre link and admin API.
pub struct Bridge {
    pub engine: EngineHandle,
    pub transport: SfbTransport,
    pub cti_addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    cti_stop: oneshot::Sender<()>,
    admin_stop: Option<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

/// What [`Bridge::start`] needs.
pub struct Start {
    pub loaded: Loaded<Sections>,
    /// The file to read again on reload (`None`: reload is refused).
    pub config_path: Option<PathBuf>,
    /// Serve the admin API (`[admin]`, default 127.0.0.1:7071).
    pub admin: bool,
    pub metrics: PrometheusHandle,
}

fn log_warnings(warnings: &[Diagnostic]) {
    for w in warnings {
        tracing::warn!("{w}");
    }
}

/// Installs the Prometheus recorder once per process.
pub fn metrics_recorder() -> Result<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

impl Bridge {
    /// Starts every part; the transport connects (and reconnects) on its own.
    pub async fn start(start: Start) -> Result<Bridge> {
        let Loaded {
            config,
            sections,
            warnings,
        } = start.loaded;
        log_warnings(&warnings);
        let sfb = sections.sfb.clone().ok_or_else(|| {
            anyhow!("the configuration has no [sfb] table: `run` needs the Skype for Business pool to talk to (see docs/configuration.md)")
        })?;
        let (transport, events, transport_task) =
            SfbTransport::start(&sfb).context("cannot start the SfB transport")?;
        let engine_config = EngineConfig::new(config).context("cannot compile the profiles")?;
        let (link_tx, link_rx) = mpsc::channel(4096);
        let cti = CtiServer::bind(sections.cti.clone().unwrap_or_default(), link_tx)
            .await
            .context("cannot start the contact-centre link [cti]")?;
        let cti_addr = cti.local_addr();
        let (engine, handle) = Engine::new(
            engine_config,
            Arc::new(transport.clone()),
            cti.sink(),
            EngineOptions::default(),
        );
        let mut tasks = vec![transport_task, tokio::spawn(engine.run(link_rx, events))];
        let (cti_stop, cti_stopped) = oneshot::channel::<()>();
        tasks.push(tokio::spawn(async move {
            if let Err(error) = cti
                .serve(async {
                    let _ = cti_stopped.await;
                })
                .await
            {
                tracing::error!(%error, "contact-centre link stopped");
            }
        }));
        tracing::info!(endpoint = %format!("ws://{cti_addr}{}", presence_cti::PATH), "contact-centre link listening");

        let mut admin_addr = None;
        let mut admin_stop = None;
        if start.admin {
            let settings = sections.admin.clone().unwrap_or_default();
            let listener = admin::bind(&settings).await?;
            admin_addr = Some(listener.local_addr()?);
            let status = transport.clone();
            let state = AdminState {
                engine: handle.clone(),
                metrics: start.metrics.clone(),
                ready: Arc::new(move || status.status().is_connected()),
                reload: reloader(start.config_path.clone(), handle.clone()),
                token: settings.token.clone(),
            };
            let (stop, stopped) = oneshot::channel::<()>();
            admin_stop = Some(stop);
            tasks.push(tokio::spawn(async move {
                let served = axum::serve(listener, admin::router(state))
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
                if let Err(error) = served {
                    tracing::error!(%error, "admin API stopped");
                }
            }));
            tracing::info!(address = ?admin_addr, "admin API listening");
        }
        Ok(Bridge {
            engine: handle,
            transport,
            cti_addr,
            admin_addr,
            cti_stop,
            admin_stop,
            tasks,
        })
    }

    /// Stops taking contact-centre input, flushes the publications that are due (at most
    /// [`SHUTDOWN_GRACE`]), closes the SfB connection, stops the listeners.
    pub async fn shutdown(self) {
        let _ = self.cti_stop.send(());
        self.engine.shutdown(SHUTDOWN_GRACE).await;
        self.transport.shutdown(Duration::from_secs(2)).await;
        if let Some(stop) = self.admin_stop {
            let _ = stop.send(());
        }
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(6), task).await;
        }
    }
}

/// Re-reads the configuration file and every map; applies a valid one, refuses an invalid
/// one with its diagnostics (the running configuration stays).
fn reloader(path: Option<PathBuf>, engine: EngineHandle) -> Reloader {
    Arc::new(move || {
        let path = path.clone();
        let engine = engine.clone();
        Box::pin(async move {
            let Some(path) = path else {
                return Err(vec![
                    "this bridge was started without a configuration file".to_owned(),
                ]);
            };
            let read = tokio::task::spawn_blocking(move || load_config(&path)).await;
            let loaded = match read {
                Err(e) => return Err(vec![format!("reload failed: {e}")]),
                Ok(Err(e)) => return Err(vec![format!("{e:#}")]),
                Ok(Ok(Err(diagnostics))) => {
                    let lines: Vec<String> =
                        diagnostics.0.iter().map(ToString::to_string).collect();
                    tracing::error!(
                        "reload refused, the running configuration stays:\n{}",
                        lines.join("\n")
                    );
                    return Err(lines);
                }
                Ok(Ok(Ok(loaded))) => loaded,
            };
            log_warnings(&loaded.warnings);
            let config = EngineConfig::new(loaded.config).map_err(|e| vec![e.to_string()])?;
            let report = engine
                .reload(config)
                .await
                .map_err(|e| vec![e.to_string()])?;
            tracing::info!(
                ?report,
                "configuration reloaded (changes to [sfb], [cti] and [admin] need a restart)"
            );
            serde_json::to_value(report).map_err(|e| vec![e.to_string()])
        })
    })
}

/// `presence-bridge run --config FILE`.
pub async fn run(args: &RunArgs) -> Result<ExitCode> {
    let path = args.config.config.clone();
    let loaded = match load_config(&path)? {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            return Ok(ExitCode::from(1));
        }
    };
    let metrics = metrics_recorder()?;
    let admin = loaded.sections.admin.is_some() || !args.no_admin;
    let bridge = Bridge::start(Start {
        loaded,
        config_path: Some(path.clone()),
        admin,
        metrics,
    })
    .await?;
    tracing::info!(
        cti = %format!("ws://{}{}", bridge.cti_addr, presence_cti::PATH),
        admin = %bridge.admin_addr.map_or_else(|| "off".to_owned(), |a| format!("http://{a}")),
        "bridge running"
    );
    let reload = reloader(Some(path), bridge.engine.clone());
    wait_for_signals(reload).await?;
    tracing::info!("shutting down: flushing publications");
    bridge.shutdown().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Waits for SIGTERM or Ctrl-C; reloads on SIGHUP meanwhile.
async fn wait_for_signals(reload: Reloader) -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        loop {
            tokio::select! {
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    match reload().await {
                        Ok(report) => tracing::info!(%report, "reload applied"),
                        Err(errors) => tracing::error!(errors = errors.len(), "reload refused"),
                    }
                }
                _ = terminate.recv() => return Ok(()),
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = reload;
        tokio::signal::ctrl_c().await.context("cannot watch Ctrl-C")
    }
}
