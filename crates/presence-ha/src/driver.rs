//! The tokio driver: owns the [`ElectorCore`], sends its requests with reqwest, feeds the
//! answers and timeouts back, publishes the role on a watch channel and logs transitions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tokio::time::{Instant, sleep_until};

use crate::HaError;
use crate::core::{
    ElectorCore, Event, Failure, Fencing, HaStatus, MAX_BODY, Request, RequestId, Response, Role,
    Why,
};
use crate::settings::HaSettings;

/// The `User-Agent` of every request.
const USER_AGENT: &str = concat!("presence-bridge/", env!("CARGO_PKG_VERSION"));

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

enum Command {
    Shutdown(oneshot::Sender<()>),
}

#[derive(Debug)]
struct Shared {
    core: Mutex<ElectorCore>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ElectorCore> {
        self.core
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// This node's part in the election: a handle over one driver task. Cheap to clone.
///
/// - [`fencing`](Self::fencing) before every write to a presence platform: `Some(token)`
///   only while this node leads **and** its local deadline has not passed, read against the
///   clock at the call (not only when the driver task last ran).
/// - [`roles`](Self::roles): a watch channel of the [`Role`], for reacting to changes
///   (connect the transports and resync on `Leader`, drop their sessions on `Standby`). A
///   watch keeps the latest value only: a new term is recognised by a new fencing token.
/// - [`status`](Self::status) for the admin API and metrics.
/// - [`shutdown`](Self::shutdown) resigns (a standby takes over at once). Dropping every
///   handle resigns too; aborting the task (the returned `JoinHandle`) does not, as a
///   crash would not.
#[derive(Clone, Debug)]
pub struct Elector {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
    roles: watch::Receiver<Role>,
}

impl Elector {
    /// Validates `settings` (refusing what [`HaSettings::findings`] calls an error), reads
    /// the password and the TLS files now, and spawns the driver task on the current tokio
    /// runtime. The node starts as standby and campaigns at once.
    ///
    /// # Errors
    /// [`HaError::Setting`], [`HaError::Tls`], [`HaError::Client`],
    /// [`HaError::NoRuntime`].
    pub fn start(settings: &HaSettings) -> Result<(Elector, JoinHandle<()>), HaError> {
        let config = settings.core_config()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| HaError::NoRuntime)?;
        let client = http_client(settings)?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5eed, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        let core = ElectorCore::new(config, seed, now());
        let (roles_tx, roles) = watch::channel(core.role().clone());
        let shared = Arc::new(Shared {
            core: Mutex::new(core),
        });
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let driver = Driver {
            shared: Arc::clone(&shared),
            client,
            commands: commands_rx,
            commands_open: true,
            requests: JoinSet::new(),
            aborts: HashMap::new(),
            roles: roles_tx,
            waiting: Vec::new(),
            logged: None,
        };
        let task = runtime.spawn(driver.run());
        Ok((
            Elector {
                commands,
                shared,
                roles,
            },
            task,
        ))
    }

    /// The current role (as of the driver's last step).
    pub fn role(&self) -> Role {
        self.roles.borrow().clone()
    }

    /// A receiver of role changes (the current role is marked seen).
    pub fn roles(&self) -> watch::Receiver<Role> {
        let mut roles = self.roles.clone();
        roles.mark_unchanged();
        roles
    }

    /// The fencing token while this node leads and its local deadline has not passed,
    /// checked against the clock now; `None` otherwise. Check it before each write to a
    /// presence platform.
    pub fn fencing(&self) -> Option<Fencing> {
        self.shared.lock().fencing(now())
    }

    /// What the node knows about the election, now.
    pub fn status(&self) -> HaStatus {
        self.shared.lock().status(now())
    }

    /// Resigns: leadership ends at once, the election key is deleted and the lease revoked
    /// (so a standby takes over without waiting for the TTL); returns when etcd answered
    /// or after two request timeouts, and the driver task ends.
    pub async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Shutdown(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// The gate in front of the presence transports (`presence_transport::Gate`) asks the
/// elector before every write: [`Elector::fencing`], as a number.
impl presence_transport::Fence for Elector {
    fn token(&self) -> Option<u64> {
        self.fencing().map(|fencing| fencing.0)
    }
}

/// The HTTP client: HTTP/1.1 (etcd's gateway), our own rustls configuration (ring), no
/// proxy, no redirect.
fn http_client(settings: &HaSettings) -> Result<reqwest::Client, HaError> {
    let mut tls = if settings.uses_tls() {
        let certificate = settings
            .tls
            .certificate
            .as_deref()
            .zip(settings.tls.private_key.as_deref());
        presence_tls::client_config(&presence_tls::ClientTls {
            keys: presence_tls::TlsKeys {
                ca: "ha.tls.ca",
                certificate: "ha.tls.certificate",
                private_key: "ha.tls.private-key",
            },
            roots: presence_tls::Roots::BundleOrSystem(settings.tls.ca.as_deref()),
            client_certificate: certificate,
        })?
    } else {
        // Never used (no https:// endpoint), but reqwest wants one: trusting nothing.
        rustls::ClientConfig::builder_with_provider(presence_tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|source| presence_tls::TlsError::Setup {
                source: Box::new(source),
            })?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    };
    // The gateway serves JSON over HTTP/1.1; HTTP/2 on that port is gRPC's.
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .http1_only()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(settings.request_timeout)
        // A campaign waits on its connection for as long as another node leads: notice a
        // member host that vanished.
        .tcp_keepalive(Duration::from_secs(5))
        .user_agent(USER_AGENT)
        .build()
        .map_err(HaError::Client)
}

type Answer = (RequestId, Result<Response, Failure>);

struct Driver {
    shared: Arc<Shared>,
    client: reqwest::Client,
    commands: mpsc::UnboundedReceiver<Command>,
    commands_open: bool,
    requests: JoinSet<Answer>,
    aborts: HashMap<RequestId, AbortHandle>,
    roles: watch::Sender<Role>,
    waiting: Vec<oneshot::Sender<()>>,
    /// What was last logged of a standby role: (leader, reason code).
    logged: Option<(Option<String>, &'static str)>,
}

impl Driver {
    async fn run(mut self) {
        loop {
            let wake = self.flush();
            if self.shared.lock().is_finished() {
                break;
            }
            tokio::select! {
                command = self.commands.recv(), if self.commands_open => match command {
                    Some(Command::Shutdown(done)) => {
                        self.waiting.push(done);
                        self.shared.lock().shutdown(now());
                    }
                    // Every handle is gone: resign and stop.
                    None => {
                        self.commands_open = false;
                        self.shared.lock().shutdown(now());
                    }
                },
                Some(joined) = self.requests.join_next(), if !self.requests.is_empty() => {
                    // A cancelled request ends as a `JoinError`: nothing to report.
                    if let Ok((id, answer)) = joined {
                        self.aborts.remove(&id);
                        let mut core = self.shared.lock();
                        match answer {
                            Ok(response) => core.handle_response(id, response, now()),
                            Err(failure) => core.handle_failure(id, failure, now()),
                        }
                    }
                }
                () = sleep_until(wake.unwrap_or_else(far_future)), if wake.is_some() => {
                    self.shared.lock().handle_timeout(now());
                }
            }
        }
        self.flush();
        // Requests still on the wire (a standby's campaign) are dropped with the set.
        self.requests.abort_all();
        for done in self.waiting.drain(..) {
            let _ = done.send(());
        }
    }

    /// Sends what the core wants sent, cancels what it gave up, reports its events;
    /// returns when to wake it.
    fn flush(&mut self) -> Option<Instant> {
        let (requests, cancels, events, wake, status) = {
            let mut core = self.shared.lock();
            let requests: Vec<Request> = std::iter::from_fn(|| core.poll_request()).collect();
            let cancels: Vec<RequestId> = std::iter::from_fn(|| core.poll_cancel()).collect();
            let events: Vec<Event> = std::iter::from_fn(|| core.poll_event()).collect();
            let wake = core.poll_timeout().map(Instant::from_std);
            let status = (!events.is_empty()).then(|| core.status(now()));
            (requests, cancels, events, wake, status)
        };
        for id in cancels {
            if let Some(handle) = self.aborts.remove(&id) {
                handle.abort();
            }
        }
        for request in requests {
            tracing::trace!(id = request.id.0, kind = ?request.kind, url = %request.url, "etcd request");
            let client = self.client.clone();
            let id = request.id;
            let handle = self.requests.spawn(async move {
                let answer = exchange(&client, request).await;
                (id, answer)
            });
            self.aborts.insert(id, handle);
        }
        for event in events {
            self.event(event, status.as_ref());
        }
        wake
    }

    fn event(&mut self, event: Event, status: Option<&HaStatus>) {
        let node = status.map(|s| s.node_id.to_string()).unwrap_or_default();
        match event {
            Event::Role(role) => {
                match &role {
                    Role::Leader { fencing } => {
                        self.logged = None;
                        let lease = status
                            .and_then(|s| s.lease.as_ref())
                            .map(|l| l.id.to_string());
                        tracing::info!(
                            node = %node,
                            fencing = fencing.0,
                            lease = lease.as_deref().unwrap_or(""),
                            "this node is now the leader"
                        );
                    }
                    Role::Standby { leader, why } => {
                        let key = (leader.as_ref().map(ToString::to_string), why.code());
                        if self.logged.as_ref() != Some(&key) {
                            let was_leader = self.roles.borrow().is_leader();
                            let leader = key.0.clone().unwrap_or_default();
                            if was_leader || matches!(why, Why::LeaseNotRenewed { .. }) {
                                tracing::warn!(node = %node, leader = %leader, why = %why, code = why.code(), "this node is no longer the leader");
                            } else {
                                tracing::info!(node = %node, leader = %leader, why = %why, code = why.code(), "this node is standby");
                            }
                            self.logged = Some(key);
                        }
                    }
                }
                self.roles.send_replace(role);
            }
            Event::EtcdTrouble { endpoint, message } => {
                tracing::warn!(node = %node, %endpoint, %message, "etcd does not answer as it should; retrying");
            }
            Event::EtcdRecovered { endpoint } => {
                tracing::info!(node = %node, %endpoint, "etcd answers again");
            }
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

/// One exchange: the answer with at most [`MAX_BODY`] body bytes, or why there is none.
async fn exchange(client: &reqwest::Client, request: Request) -> Result<Response, Failure> {
    let mut builder = client
        .post(&request.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(request.body);
    if let Some(token) = &request.token {
        builder = builder.header(reqwest::header::AUTHORIZATION, token);
    }
    let work = async move {
        let mut response = builder.send().await.map_err(failure)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failure)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(Failure::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response { status, body })
    };
    match request.timeout {
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .unwrap_or(Err(Failure::Timeout)),
        None => work.await,
    }
}

fn failure(error: reqwest::Error) -> Failure {
    if error.is_timeout() {
        return Failure::Timeout;
    }
    let mut text = presence_model::error_chain(&error);
    let host = error
        .url()
        .and_then(|url| url.host_str())
        .map_or_else(|| "the etcd member".to_owned(), |host| format!("`{host}`"));
    let peer = presence_tls::Peer {
        name: &host,
        ca_setting: "`[ha.tls] ca`",
        name_setting: "`[ha] endpoints`",
        client_certificate_setting: Some("`[ha.tls] certificate` and `private-key`"),
    };
    if let Some(sentence) = peer.explain(&error) {
        text = format!("{sentence} ({text})");
    }
    Failure::Network(text)
}
