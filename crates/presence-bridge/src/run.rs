//! `presence-bridge run`: the daemon. Also used in-process by `demo`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use presence_config::{Diagnostic, Loaded, PlatformSpec};
use presence_cti::CtiServer;
use presence_engine::{Engine, EngineConfig, EngineHandle, EngineOptions};
use presence_ha::{Elector, HaSettings};
use presence_transport::{Gate, PresenceTransport, event_channel};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::RunArgs;
use crate::admin::{self, AdminState, Reloader};
use crate::files::{Prepared, prepare, prepare_settled};
use crate::ha;
use crate::transports::{self, Configured, Severity};

/// How long a shutdown waits for publications in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running bridge: the transports behind one router, the engine, the contact-centre link
/// and the admin API.
pub(crate) struct Bridge {
    pub engine: EngineHandle,
    /// Every transport: the router, or with `[ha]` the gate in front of the current
    /// term's router.
    pub transport: Arc<dyn PresenceTransport>,
    /// With `[ha]`: this node's part in the election.
    pub elector: Option<Elector>,
    /// Re-reads the configuration (SIGHUP, `POST /v1/reload`).
    pub reload: Reloader,
    pub cti_addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    cti_stop: oneshot::Sender<()>,
    admin_stop: Option<oneshot::Sender<()>>,
    /// With `[ha]`: the task that follows the role.
    follower: Option<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
}

/// What [`Bridge::start`] needs.
pub(crate) struct Start {
    /// The configuration, its DNs' users resolved on the platforms it configures.
    pub prepared: Prepared,
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
pub(crate) fn metrics_recorder() -> Result<PrometheusHandle> {
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
    /// Starts every part; the transports connect (and reconnect) on their own.
    pub(crate) async fn start(start: Start) -> Result<Bridge> {
        let Prepared { loaded, users } = start.prepared;
        let Loaded {
            config,
            sections,
            warnings,
        } = loaded;
        log_warnings(&warnings);
        let configured = Configured::all(&sections);
        if let Err(refused) = runnable(&configured, sections.ha.as_ref()) {
            bail!("{}", refused.join("\n"));
        }
        let platforms = transports::specs(&configured);
        let engine_config =
            EngineConfig::new(config, users).context("cannot compile the profiles")?;
        let (events, receiver) = event_channel();
        let ha = sections.ha.clone();
        let mut tasks = Vec::new();
        let (transport, elector, gate): (Arc<dyn PresenceTransport>, _, _) = match &ha {
            None => {
                let (router, started) = transports::start_all(&configured, &events)?;
                drop(events);
                for platform in router.platforms() {
                    tracing::info!(%platform, "presence transport started");
                }
                tasks.extend(started);
                (Arc::new(router), None, None)
            }
            Some(settings) => {
                let (elector, task) =
                    Elector::start(settings).context("cannot start the HA elector [ha]")?;
                tasks.push(task);
                let names = configured.iter().map(Configured::platform).collect();
                let gate = Arc::new(Gate::new(names, Arc::new(elector.clone()), events));
                tracing::info!(
                    node = %settings.node_id,
                    election = %settings.election,
                    endpoints = %settings.endpoint_urls().join(", "),
                    "high availability: the presence transports start when this node leads"
                );
                (
                    Arc::clone(&gate) as Arc<dyn PresenceTransport>,
                    Some(elector),
                    Some(gate),
                )
            }
        };
        let (link_tx, link_rx) = mpsc::channel(4096);
        let cti = CtiServer::bind(sections.cti.clone().unwrap_or_default(), link_tx)
            .await
            .context("cannot start the contact-centre link [cti]")?;
        let cti_addr = cti.local_addr();
        let sink: Arc<dyn presence_tlib::ClientSink> = match &elector {
            None => Arc::new(cti.sink()),
            Some(elector) => Arc::new(ha::LeaderOnlyDnd {
                inner: cti.sink(),
                elector: elector.clone(),
            }),
        };
        let (engine, handle) = Engine::new(
            engine_config,
            Arc::clone(&transport),
            sink,
            EngineOptions::default(),
        );
        tasks.push(tokio::spawn(engine.run(link_rx, receiver)));
        let follower = elector
            .clone()
            .zip(gate)
            .map(|(elector, gate)| tokio::spawn(ha::follow(elector, gate, configured.clone())));
        let reload = reloader(start.config_path.clone(), handle.clone(), platforms, ha);
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

        let mut admin_addr = None;
        let mut admin_stop = None;
        if start.admin {
            let settings = sections.admin.clone().unwrap_or_default();
            let listener = admin::bind(&settings).await?;
            let address = listener.local_addr();
            admin_addr = Some(address);
            let state = AdminState {
                engine: handle.clone(),
                metrics: start.metrics.clone(),
                transport: Arc::clone(&transport),
                elector: elector.clone(),
                reload: reload.clone(),
                token: settings.token.clone(),
            };
            let (stop, stopped) = oneshot::channel::<()>();
            admin_stop = Some(stop);
            tasks.push(tokio::spawn(async move {
                let served = listener
                    .serve(admin::router(state), async {
                        let _ = stopped.await;
                    })
                    .await;
                if let Err(error) = served {
                    tracing::error!(%error, "admin API stopped");
                }
            }));
            tracing::info!(endpoint = %format!("http://{address}"), "admin API listening");
        }
        Ok(Bridge {
            engine: handle,
            transport,
            elector,
            reload,
            cti_addr,
            admin_addr,
            cti_stop,
            admin_stop,
            follower,
            tasks,
        })
    }

    /// Stops as a crash would, for `demo --ha`: no flush and no resignation (the lease runs
    /// out in etcd); the transports' connections close, as the system closes a dead
    /// process's sockets.
    pub(crate) async fn crash(self) {
        if let Some(follower) = &self.follower {
            follower.abort();
        }
        for task in &self.tasks {
            task.abort();
        }
        let _ = self.cti_stop.send(());
        self.transport.shutdown(Duration::ZERO).await;
    }

    /// Stops taking contact-centre input, flushes the publications that are due (at most
    /// [`SHUTDOWN_GRACE`]), closes the transports' connections, resigns from the election
    /// (a standby takes over at once), stops the listeners.
    pub(crate) async fn shutdown(self) {
        let _ = self.cti_stop.send(());
        self.engine.shutdown(SHUTDOWN_GRACE).await;
        if let Some(follower) = self.follower {
            follower.abort();
        }
        self.transport.shutdown(Duration::from_secs(2)).await;
        if let Some(elector) = &self.elector {
            elector.shutdown().await;
        }
        if let Some(stop) = self.admin_stop {
            let _ = stop.send(());
        }
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(6), task).await;
        }
    }
}

/// What `run` refuses beyond the file's own diagnostics, and a reload refuses alike: no
/// transport table (an empty or truncated file), a transport table with an error, or an
/// `[ha]` table with an error.
fn runnable(configured: &[Configured], ha: Option<&HaSettings>) -> Result<(), Vec<String>> {
    if configured.is_empty() {
        return Err(vec![
            "the configuration has no transport table: `run` needs [sfb] (Skype for Business), [teams] (Microsoft Teams) and/or [simple] (SIP SIMPLE) to talk to (see docs/configuration.md)"
                .to_owned(),
        ]);
    }
    let mut refused: Vec<String> = configured
        .iter()
        .flat_map(Configured::findings)
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.message)
        .collect();
    refused.extend(
        ha.map(HaSettings::findings)
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| format!("`{}`: {}", f.key, f.message)),
    );
    if refused.is_empty() {
        Ok(())
    } else {
        Err(refused)
    }
}

/// The listener tables as `run` checks them when it binds: a file that a restart would
/// refuse is refused by a reload too, though their changes only apply at the restart.
fn listeners_valid(
    cti: Option<&presence_cti::CtiConfig>,
    admin: Option<&admin::AdminSettings>,
) -> Result<(), Vec<String>> {
    let mut refused = Vec::new();
    if let Some(Err(e)) = cti.map(presence_cti::CtiConfig::validate) {
        refused.push(format!("[cti]: {e}"));
    }
    if let Some(Err(e)) = admin.map(admin::AdminSettings::validate) {
        refused.push(format!("{e:#}"));
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(refused)
    }
}

/// Re-reads the configuration file and every map; applies a valid one, refuses an invalid
/// one with its diagnostics (the running configuration stays). The file is validated
/// exactly as `run` validates it (so an empty or truncated file is refused, not applied
/// as "no DNs"), and read until two reads agree (so a file being rewritten in place is
/// not caught half-written). DNs are checked against the platforms of the running
/// transports: a transport is added or removed by a restart. `[ha]` cannot change without a
/// restart (the election's identity and timing are fixed for the process's life): a file
/// whose `[ha]` differs from the running one is refused.
fn reloader(
    path: Option<PathBuf>,
    engine: EngineHandle,
    platforms: Vec<PlatformSpec>,
    ha: Option<HaSettings>,
) -> Reloader {
    let platforms: Arc<[PlatformSpec]> = platforms.into();
    let ha = Arc::new(ha);
    Arc::new(move || {
        let path = path.clone();
        let engine = engine.clone();
        let platforms = Arc::clone(&platforms);
        let ha = Arc::clone(&ha);
        Box::pin(async move {
            let Some(path) = path else {
                return Err(vec![
                    "this bridge was started without a configuration file".to_owned(),
                ]);
            };
            let read =
                tokio::task::spawn_blocking(move || prepare_settled(&path, Some(&platforms))).await;
            let prepared = match read {
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
                Ok(Ok(Ok(prepared))) => prepared,
            };
            let sections = &prepared.loaded.sections;
            if let Err(lines) = runnable(&Configured::all(sections), sections.ha.as_ref())
                .and_then(|()| listeners_valid(sections.cti.as_ref(), sections.admin.as_ref()))
                .and_then(|()| ha_unchanged(ha.as_ref().as_ref(), sections.ha.as_ref()))
            {
                tracing::error!(
                    "reload refused, the running configuration stays:\n{}",
                    lines.join("\n")
                );
                return Err(lines);
            }
            let Prepared { loaded, users } = prepared;
            log_warnings(&loaded.warnings);
            let config =
                EngineConfig::new(loaded.config, users).map_err(|e| vec![e.to_string()])?;
            let report = engine
                .reload(config)
                .await
                .map_err(|e| vec![e.to_string()])?;
            tracing::info!(
                dns = report.dns,
                added = report.added,
                removed = report.removed,
                reassigned = report.reassigned,
                moved = report.moved,
                "configuration reloaded (changes to [sfb], [teams], [simple], [cti] and [admin] need a restart; [ha] cannot change)"
            );
            serde_json::to_value(report).map_err(|e| vec![e.to_string()])
        })
    })
}

/// A reload keeps the running `[ha]`: one that adds, removes or changes it is refused.
fn ha_unchanged(running: Option<&HaSettings>, new: Option<&HaSettings>) -> Result<(), Vec<String>> {
    if running == new {
        return Ok(());
    }
    let what = match (running, new) {
        (None, Some(_)) => "adds an [ha] table",
        (Some(_), None) => "removes the [ha] table",
        _ => "changes the [ha] table",
    };
    Err(vec![format!(
        "the new configuration {what}: [ha] cannot change while the bridge runs (restart it, one node at a time, to change it)"
    )])
}

/// `presence-bridge run --config FILE`.
pub(crate) async fn run(args: &RunArgs) -> Result<ExitCode> {
    let path = args.config.config.clone();
    let prepared = match prepare(&path, None)? {
        Ok(prepared) => prepared,
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            return Ok(ExitCode::from(1));
        }
    };
    let metrics = metrics_recorder()?;
    // `--no-admin` wins over an `[admin]` table.
    let admin = !args.no_admin;
    let bridge = Bridge::start(Start {
        prepared,
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
    let reload = bridge.reload.clone();
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
                    // The reloader logs what it applied, or why it refused.
                    let _ = reload().await;
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
