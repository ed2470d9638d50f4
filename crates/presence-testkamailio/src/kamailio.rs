//! The Kamailio process: configuration, database, start, stop, restart, inspection.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::HarnessError;
use crate::util::{
    child_pids, free_port, make_unique_dir, port_is_free, process_alive, read_lossy,
    require_program, run_ok, send_signal, tail, terminate, write_file,
};

/// The SIP domain the test server serves (any user, no authentication).
pub const DOMAIN: &str = "test.local";

/// The Kamailio configuration template (`kamailio/kamailio.cfg.in` in this crate), with the
/// placeholders `@RUNDIR@`, `@PORT@` and `@MPATH@`. Its TLS listener is in `#!ifdef
/// WITH_TLS` blocks, switched on by `-A WITH_TLS -A TLS_PORT=N` (see [`Options::tls`]).
pub const CONFIG_TEMPLATE: &str = include_str!("../kamailio/kamailio.cfg.in");

/// Where Debian's `kamailio` package keeps the SQLite schema files.
pub const SCHEMA_DIR: &str = "/usr/share/kamailio/db_sqlite";

/// The environment variable that keeps run directories (their path is printed) instead of
/// deleting them when a [`Kamailio`] is dropped.
pub const KEEP_ENV: &str = "PRESENCE_KEEP_KAMAILIO";

/// How long a stop waits after SIGTERM before it sends SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Timeout of one `kamcmd` or `sqlite3` run.
const TOOL_TIMEOUT: Duration = Duration::from_secs(5);
/// Start attempts when the port is taken between choosing it and Kamailio binding it.
const START_ATTEMPTS: u32 = 4;

/// Where Kamailio keeps published state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Storage {
    /// `publ_cache=1`: publications in the SQLite `presentity` table (what
    /// [`Kamailio::presentity`] reads, bodies included), a URI index in memory. About
    /// 400-500 PUBLISH/s; concurrent writes can fail with 500 ("database is locked").
    /// Worse, a removal whose `DELETE` hits the lock was seen answered `200` with the row
    /// left live until it expired: count live publications exactly in [`Storage::Memory`].
    #[default]
    Sqlite,
    /// `-A PUBL_MEM`, `publ_cache=2`: publications in memory only (listed by `kamcmd
    /// presence.presentity_list`, without bodies); about 5,000-6,000 PUBLISH/s.
    /// Subscriptions still use the database.
    Memory,
}

/// How to start the test Kamailio.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where publications live (default [`Storage::Sqlite`]).
    pub storage: Storage,
    /// Shared memory in MB (`-m`, default 256). tm keeps finished transactions 5 s: at
    /// 2,000 PUBLISH/s the peak was about 200 MB; use 2048 above about 6,000/s.
    pub shm_mb: u32,
    /// Extra preprocessor defines (`-A NAME` or `-A NAME=VALUE` each). A `WORKERS=N` here
    /// replaces [`workers`](Self::workers).
    pub defines: Vec<String>,
    /// `-A DBG`: log every request (method, URI, source) to the log.
    pub debug: bool,
    /// UDP and TCP worker processes each (`-A WORKERS=N`, default 2 as in the shared
    /// configuration). With 2, back-to-back requests of one client run in different
    /// processes that share the SQLite file without a busy timeout: conditional PUBLISHes
    /// get 500 ("database is locked") and, rarely, one answered 200 is lost (see the
    /// README). 1 serialises the requests of each transport and avoids both; use it for
    /// tests that assert on exact sequences.
    pub workers: u32,
    /// How long to wait for the control socket to answer (default 10 s).
    pub startup_timeout: Duration,
    /// A TLS listener as well, on its own port ([`Kamailio::tls_addr`]); default none.
    pub tls: Option<TlsOptions>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            storage: Storage::Sqlite,
            shm_mb: 256,
            defines: Vec::new(),
            debug: false,
            workers: 2,
            startup_timeout: Duration::from_secs(10),
            tls: None,
        }
    }
}

impl Options {
    /// Sets [`storage`](Self::storage).
    #[must_use]
    pub fn storage(mut self, storage: Storage) -> Self {
        self.storage = storage;
        self
    }

    /// Sets [`shm_mb`](Self::shm_mb).
    #[must_use]
    pub fn shm_mb(mut self, mb: u32) -> Self {
        self.shm_mb = mb;
        self
    }

    /// Adds a preprocessor define (`-A NAME`).
    #[must_use]
    pub fn define(mut self, name: impl Into<String>) -> Self {
        self.defines.push(name.into());
        self
    }

    /// Sets [`debug`](Self::debug).
    #[must_use]
    pub fn debug(mut self, debug: bool) -> Self {
        self.debug = debug;
        self
    }

    /// Sets [`workers`](Self::workers) (at least 1).
    #[must_use]
    pub fn workers(mut self, workers: u32) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Sets [`startup_timeout`](Self::startup_timeout).
    #[must_use]
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Adds a TLS listener, `tls:127.0.0.1:TLS_PORT` on a free port of its own
    /// ([`Kamailio::tls_addr`]), with this certificate (see [`TlsOptions`]). Needs Debian's
    /// `kamailio-tls-modules` (`tls.so`); without it the start fails with
    /// [`HarnessError::NotInstalled`].
    #[must_use]
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// The TLS listener of the test Kamailio ([`Options::tls`]): Kamailio's `tls` module with
/// one `[server:default]` profile, `method = TLSv1.2+`.
///
/// The PEM text is written to `RUNDIR/tls/` at start (`server.pem`, `server.key`, and
/// `client-ca.pem`), and `RUNDIR/tls.cfg` names those files. Without
/// [`client_ca_pem`](Self::client_ca_pem) Kamailio asks for no client certificate
/// (`verify_certificate = no`, `require_certificate = no`); with it, a client must present
/// a certificate signed by that CA (`verify_certificate = yes`, `require_certificate =
/// yes`, `ca_list`), or the handshake fails.
///
/// ```no_run
/// use presence_testkamailio::{Kamailio, Options, TlsOptions};
///
/// # let (cert_pem, key_pem) = (String::new(), String::new());
/// let kamailio = Kamailio::start(Options::default().tls(TlsOptions::from_pem(cert_pem, key_pem)))?;
/// let tls = kamailio.tls_addr().expect("started with TLS"); // 127.0.0.1:TLS_PORT
/// # Ok::<(), presence_testkamailio::HarnessError>(())
/// ```
#[derive(Clone)]
pub struct TlsOptions {
    /// The server's certificate chain, PEM, leaf first (Kamailio's `certificate`). It should
    /// name what clients verify: `127.0.0.1` (an IP address SAN) and/or `localhost`.
    pub certificate_pem: String,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1; Kamailio's `private_key`).
    pub private_key_pem: String,
    /// When set, the CA (PEM) whose client certificates Kamailio requires (mutual TLS).
    pub client_ca_pem: Option<String>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field(
                "certificate_pem",
                &format_args!("{} bytes", self.certificate_pem.len()),
            )
            .field("private_key_pem", &"<redacted>")
            .field(
                "client_ca_pem",
                &self.client_ca_pem.as_ref().map(String::len),
            )
            .finish()
    }
}

impl TlsOptions {
    /// A server certificate chain and its key, as PEM text (for example a
    /// `presence-testpki` `TestPki`'s `server_cert_pem` and `server_key_pem`).
    pub fn from_pem(
        certificate_pem: impl Into<String>,
        private_key_pem: impl Into<String>,
    ) -> Self {
        TlsOptions {
            certificate_pem: certificate_pem.into(),
            private_key_pem: private_key_pem.into(),
            client_ca_pem: None,
        }
    }

    /// Reads the certificate chain and the key from PEM files.
    ///
    /// # Errors
    /// [`HarnessError::Io`] when a file cannot be read.
    pub fn from_files(certificate: &Path, private_key: &Path) -> Result<Self, HarnessError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| HarnessError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            })
        };
        Ok(TlsOptions::from_pem(read(certificate)?, read(private_key)?))
    }

    /// Requires a client certificate signed by `ca_pem` (mutual TLS).
    #[must_use]
    pub fn require_client_cert(mut self, ca_pem: impl Into<String>) -> Self {
        self.client_ca_pem = Some(ca_pem.into());
        self
    }
}

/// One publication (a row of `presentity`, or an entry of `presence.presentity_list`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presentity {
    /// The user part of the presentity's AOR (`agent1`).
    pub username: String,
    /// Its domain (`test.local`).
    pub domain: String,
    /// The event package (`presence`).
    pub event: String,
    /// The publication's entity tag (what `SIP-ETag` said).
    pub etag: String,
    /// When the publication expires, Unix seconds. A removed publication has an `expires`
    /// in the past until the `clean_period` timer (an hour here) deletes the row.
    pub expires: i64,
    /// When it was last published, Unix seconds ([`Storage::Sqlite`] only).
    pub received_time: Option<i64>,
    /// The published body as stored (the PIDF as sent) ([`Storage::Sqlite`] only).
    pub body: Option<String>,
    /// The `sender` column (empty for PUBLISH from a user agent).
    pub sender: String,
}

/// One subscription as written to `active_watchers`.
///
/// With `subs_db_mode=2` Kamailio keeps subscriptions in memory and writes them back every
/// `db_update_period` (10 s) and at shutdown: a new subscription may not be there yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveWatcher {
    /// The watched presentity (`sip:agent1@test.local`).
    pub presentity_uri: String,
    /// The watcher's user (`From` user part).
    pub watcher_username: String,
    /// The watcher's domain.
    pub watcher_domain: String,
    /// The dialog's Call-ID.
    pub callid: String,
    /// Where NOTIFYs go.
    pub contact: String,
    /// When the subscription expires, Unix seconds.
    pub expires: i64,
    /// Kamailio's status: 1 active, 2 pending, 3 terminated, 4 waiting.
    pub status: i64,
    /// The termination reason, if any.
    pub reason: String,
}

/// The programs and files the harness uses, found once.
#[derive(Clone, Debug)]
struct Tools {
    kamailio: PathBuf,
    kamcmd: PathBuf,
    sqlite3: PathBuf,
    module_dir: PathBuf,
}

impl Tools {
    fn find() -> Result<Tools, HarnessError> {
        let kamailio = require_program("kamailio")?;
        let kamcmd = require_program("kamcmd")?;
        let sqlite3 = require_program("sqlite3")?;
        let module_dir = module_dir()?;
        for schema in ["standard-create.sql", "presence-create.sql"] {
            if !Path::new(SCHEMA_DIR).join(schema).is_file() {
                return Err(HarnessError::NotInstalled {
                    what: format!("the Kamailio SQLite schema ({SCHEMA_DIR}/{schema})"),
                });
            }
        }
        Ok(Tools {
            kamailio,
            kamcmd,
            sqlite3,
            module_dir,
        })
    }
}

/// The directory holding Kamailio's modules, with presence, presence_xml and db_sqlite.
fn module_dir() -> Result<PathBuf, HarnessError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        for e in entries.filter_map(Result::ok) {
            candidates.push(e.path().join("kamailio/modules"));
        }
    }
    for dir in [
        "/usr/lib/kamailio/modules",
        "/usr/lib64/kamailio/modules",
        "/usr/local/lib/kamailio/modules",
        "/usr/local/lib64/kamailio/modules",
    ] {
        candidates.push(PathBuf::from(dir));
    }
    let Some(dir) = candidates.into_iter().find(|d| d.join("tm.so").is_file()) else {
        return Err(HarnessError::NotInstalled {
            what: "kamailio (no module directory with tm.so)".to_owned(),
        });
    };
    for (module, package) in [
        ("presence.so", "kamailio-presence-modules"),
        ("presence_xml.so", "kamailio-presence-modules"),
        ("db_sqlite.so", "kamailio-sqlite-modules"),
    ] {
        if !dir.join(module).is_file() {
            return Err(HarnessError::NotInstalled {
                what: format!("{package} ({} missing)", dir.join(module).display()),
            });
        }
    }
    Ok(dir)
}

/// `tls.so` in the module directory, or [`HarnessError::NotInstalled`] naming its package.
fn require_tls_module(module_dir: &Path) -> Result<(), HarnessError> {
    let module = module_dir.join("tls.so");
    if module.is_file() {
        Ok(())
    } else {
        Err(HarnessError::NotInstalled {
            what: format!(
                "kamailio-tls-modules ({} missing, needed by Options::tls)",
                module.display()
            ),
        })
    }
}

/// The `tls.cfg` of a TLS listener whose files are in `tls_dir` (`server.pem`,
/// `server.key` and, for mutual TLS, `client-ca.pem`).
pub fn render_tls_config(tls_dir: &Path, mutual: bool) -> String {
    let file = |name: &str| tls_dir.join(name).display().to_string();
    let mut cfg = format!(
        "# Written by presence-testkamailio (Options::tls).\n\
         [server:default]\n\
         method = TLSv1.2+\n\
         certificate = {}\n\
         private_key = {}\n",
        file("server.pem"),
        file("server.key"),
    );
    if mutual {
        cfg.push_str(&format!(
            "verify_certificate = yes\nrequire_certificate = yes\nca_list = {}\n",
            file("client-ca.pem")
        ));
    } else {
        cfg.push_str("verify_certificate = no\nrequire_certificate = no\n");
    }
    cfg
}

/// [`CONFIG_TEMPLATE`] with its placeholders filled in.
pub fn render_config(run_dir: &Path, port: u16, module_dir: &Path) -> String {
    let mut mpath = module_dir.display().to_string();
    if !mpath.ends_with('/') {
        mpath.push('/');
    }
    CONFIG_TEMPLATE
        .replace("@RUNDIR@", &run_dir.display().to_string())
        .replace("@PORT@", &port.to_string())
        .replace("@MPATH@", &mpath)
}

/// A private Kamailio presence server on `127.0.0.1:`[`port`](Self::port) (UDP and TCP,
/// and TLS on [`tls_port`](Self::tls_port) with [`Options::tls`]), domain [`DOMAIN`], state
/// in its own run directory. Dropping it stops the process and
/// deletes the run directory (unless [`KEEP_ENV`] is set).
#[derive(Debug)]
pub struct Kamailio {
    options: Options,
    tools: Tools,
    port: u16,
    tls_port: Option<u16>,
    run_dir: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Kamailio {
    /// Starts Kamailio on a free loopback port: writes the configuration, creates the
    /// SQLite database from Kamailio's own schema, starts `kamailio -DD -E` and waits until
    /// `kamcmd core.uptime` answers.
    ///
    /// # Errors
    /// [`HarnessError::NotInstalled`] when kamailio, kamcmd, sqlite3, the modules or the
    /// schema are missing (with [`Options::tls`], also `tls.so` of `kamailio-tls-modules`); [`HarnessError::Died`] (with the log's tail) when Kamailio
    /// exits; [`HarnessError::Timeout`] when it does not answer within
    /// [`Options::startup_timeout`]; I/O errors for the run directory.
    pub fn start(options: Options) -> Result<Kamailio, HarnessError> {
        let tools = Tools::find()?;
        if options.tls.is_some() {
            require_tls_module(&tools.module_dir)?;
        }
        let run_dir = make_unique_dir("presence-kamailio")?;
        let mut kamailio = Kamailio {
            options,
            tools,
            port: 0,
            tls_port: None,
            run_dir,
            child: None,
            starts: 0,
        };
        // From here on, an error drops `kamailio`, which cleans up.
        kamailio.create_database()?;
        kamailio.write_tls_files()?;
        kamailio.pick_ports()?;
        kamailio.launch(true)?;
        Ok(kamailio)
    }

    /// [`Kamailio::start`] with the default [`Options`] (SQLite storage).
    ///
    /// # Errors
    /// As [`Kamailio::start`].
    pub fn start_default() -> Result<Kamailio, HarnessError> {
        Kamailio::start(Options::default())
    }

    /// The port Kamailio listens on (UDP and TCP, 127.0.0.1). It stays the same across
    /// [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
    }

    /// The port of the TLS listener (127.0.0.1, TCP), distinct from [`port`](Self::port);
    /// `None` without [`Options::tls`]. It stays the same across [`restart`](Self::restart).
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// `127.0.0.1:tls_port`, where SIP over TLS is served; `None` without [`Options::tls`].
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_port
            .map(|port| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)))
    }

    /// The served domain, [`DOMAIN`].
    pub fn domain(&self) -> &'static str {
        DOMAIN
    }

    /// `sip:user@test.local`.
    pub fn aor(&self, user: &str) -> String {
        format!("sip:{user}@{DOMAIN}")
    }

    /// The options it was started with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The run directory: `kamailio.cfg`, `kamailio.log`, `kamailio.pid`, `kamailio_ctl`,
    /// `presence.sqlite`, and the SIPp runs' directories.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// `RUNDIR/kamailio.log` (Kamailio's stderr and stdout, all starts appended).
    pub fn log_path(&self) -> PathBuf {
        self.run_dir.join("kamailio.log")
    }

    /// `RUNDIR/kamailio.cfg`.
    pub fn config_path(&self) -> PathBuf {
        self.run_dir.join("kamailio.cfg")
    }

    /// `RUNDIR/tls.cfg`, the tls module's configuration (written only with
    /// [`Options::tls`]); the PEM files it names are in `RUNDIR/tls/`.
    pub fn tls_config_path(&self) -> PathBuf {
        self.run_dir.join("tls.cfg")
    }

    /// `RUNDIR/presence.sqlite`.
    pub fn db_path(&self) -> PathBuf {
        self.run_dir.join("presence.sqlite")
    }

    /// `RUNDIR/kamailio_ctl`, the binrpc control socket for `kamcmd -s unix:PATH`.
    pub fn ctl_path(&self) -> PathBuf {
        self.run_dir.join("kamailio_ctl")
    }

    /// The log so far (all starts), as text.
    pub fn log(&self) -> String {
        read_lossy(&self.log_path())
    }

    /// The pid of the main process (with `-DD` it stays in the foreground: the pid of the
    /// child the harness spawned); `None` when stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The main process and its children (Kamailio's UDP, TCP, timer and other workers).
    pub fn pids(&self) -> Vec<u32> {
        match self.pid() {
            Some(pid) => {
                let mut all = vec![pid];
                all.extend(child_pids(pid));
                all
            }
            None => Vec::new(),
        }
    }

    /// Whether the main process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Runs `kamcmd -s unix:RUNDIR/kamailio_ctl ARGS...` and returns its output, for
    /// example `kamcmd(&["core.uptime"])`, `kamcmd(&["tm.stats"])`.
    ///
    /// # Errors
    /// [`HarnessError::Command`] when kamcmd fails (Kamailio down, unknown command),
    /// [`HarnessError::Timeout`] after 5 s.
    pub fn kamcmd(&self, args: &[&str]) -> Result<String, HarnessError> {
        let mut cmd = Command::new(&self.tools.kamcmd);
        cmd.arg("-s")
            .arg(format!("unix:{}", self.ctl_path().display()))
            .args(args);
        let out = run_ok(cmd, None, TOOL_TIMEOUT)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Runs an SQL statement on `presence.sqlite` with the `sqlite3` CLI (busy timeout
    /// 3 s) and returns the rows, each a list of column texts (NULL is empty). Values must
    /// not contain the ASCII unit or record separators (0x1F, 0x1E).
    ///
    /// # Errors
    /// [`HarnessError::Command`] when sqlite3 fails.
    pub fn sqlite(&self, sql: &str) -> Result<Vec<Vec<String>>, HarnessError> {
        let mut cmd = Command::new(&self.tools.sqlite3);
        cmd.arg("-bail")
            .arg("-readonly")
            .arg("-cmd")
            .arg(".timeout 3000")
            .arg("-ascii")
            .arg(self.db_path())
            .arg(sql);
        let out = run_ok(cmd, None, TOOL_TIMEOUT)?;
        let text = String::from_utf8_lossy(&out);
        Ok(text
            .split('\u{1e}')
            .filter(|row| !row.is_empty())
            .map(|row| row.split('\u{1f}').map(str::to_owned).collect())
            .collect())
    }

    /// Every publication Kamailio holds, live or not yet cleaned: the `presentity` table
    /// ([`Storage::Sqlite`], with bodies), or `kamcmd presence.presentity_list`
    /// ([`Storage::Memory`], without bodies and received times).
    ///
    /// # Errors
    /// As [`sqlite`](Self::sqlite) / [`kamcmd`](Self::kamcmd); [`HarnessError::Parse`] for
    /// output that does not fit.
    pub fn presentity(&self) -> Result<Vec<Presentity>, HarnessError> {
        match self.options.storage {
            Storage::Sqlite => self.presentity_from_db(),
            Storage::Memory => parse_presentity_list(&self.kamcmd(&["presence.presentity_list"])?),
        }
    }

    /// The publications with `expires > now_unix` (see [`crate::unix_now`]).
    ///
    /// # Errors
    /// As [`presentity`](Self::presentity).
    pub fn live_presentity(&self, now_unix: i64) -> Result<Vec<Presentity>, HarnessError> {
        let mut all = self.presentity()?;
        all.retain(|p| p.expires > now_unix);
        Ok(all)
    }

    /// Polls [`live_presentity`](Self::live_presentity) every 20 ms until `done` holds
    /// for the live publications, and returns them. Kamailio may answer a PUBLISH before
    /// its change is visible in the table or list: poll, do not read once.
    ///
    /// # Errors
    /// [`HarnessError::Timeout`] (with the last rows seen), or as
    /// [`presentity`](Self::presentity).
    pub fn wait_live_presentity(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[Presentity]) -> bool,
    ) -> Result<Vec<Presentity>, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let rows = self.live_presentity(crate::unix_now())?;
            if done(&rows) {
                return Ok(rows);
            }
            if Instant::now() >= deadline {
                let seen: Vec<String> = rows
                    .iter()
                    .map(|p| {
                        format!(
                            "  {}@{} etag {} expires {}",
                            p.username, p.domain, p.etag, p.expires
                        )
                    })
                    .collect();
                return Err(HarnessError::Timeout {
                    what: "the awaited presentity state".to_owned(),
                    after: timeout,
                    log_tail: format!("live publications:\n{}", seen.join("\n")),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn presentity_from_db(&self) -> Result<Vec<Presentity>, HarnessError> {
        let rows = self.sqlite(
            "select username, domain, event, etag, expires, received_time, body, sender \
             from presentity order by received_time, id",
        )?;
        rows.into_iter()
            .map(|r| {
                let [
                    username,
                    domain,
                    event,
                    etag,
                    expires,
                    received,
                    body,
                    sender,
                ] = <[String; 8]>::try_from(r).map_err(|r| HarnessError::Parse {
                    what: "the presentity table",
                    detail: format!("expected 8 columns, got {}", r.len()),
                })?;
                Ok(Presentity {
                    username,
                    domain,
                    event,
                    etag,
                    expires: int("presentity.expires", &expires)?,
                    received_time: Some(int("presentity.received_time", &received)?),
                    body: Some(body),
                    sender,
                })
            })
            .collect()
    }

    /// The subscriptions written to the `active_watchers` table (see [`ActiveWatcher`]
    /// for the write-back delay).
    ///
    /// # Errors
    /// As [`sqlite`](Self::sqlite).
    pub fn active_watchers(&self) -> Result<Vec<ActiveWatcher>, HarnessError> {
        let rows = self.sqlite(
            "select presentity_uri, watcher_username, watcher_domain, callid, contact, \
             expires, status, reason from active_watchers order by id",
        )?;
        rows.into_iter()
            .map(|r| {
                let [uri, user, domain, callid, contact, expires, status, reason] =
                    <[String; 8]>::try_from(r).map_err(|r| HarnessError::Parse {
                        what: "the active_watchers table",
                        detail: format!("expected 8 columns, got {}", r.len()),
                    })?;
                Ok(ActiveWatcher {
                    presentity_uri: uri,
                    watcher_username: user,
                    watcher_domain: domain,
                    callid,
                    contact,
                    expires: int("active_watchers.expires", &expires)?,
                    status: int("active_watchers.status", &status)?,
                    reason,
                })
            })
            .collect()
    }

    /// Stops Kamailio: SIGTERM to the main process (its children exit with it), up to 5 s,
    /// then SIGKILL to it and its children. The run directory stays;
    /// [`restart`](Self::restart) starts it again. Stopping a stopped server does nothing.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let children = child_pids(child.id());
        let _ = terminate(&mut child, STOP_GRACE);
        // Children normally exit with the main process; make sure.
        let deadline = Instant::now() + Duration::from_secs(2);
        for pid in children {
            while process_alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if process_alive(pid) {
                send_signal(pid, "KILL");
            }
        }
    }

    /// Stops Kamailio (if running) and starts it again on the **same port**, with the same
    /// configuration and the same SQLite database, and waits until it answers. A bridge can
    /// reconnect to the same address.
    ///
    /// What survives (checked with Kamailio 5.6.3; a restart takes about 60 ms):
    /// - [`Storage::Sqlite`]: the publications (the `presentity` rows are reloaded; a modify
    ///   with an old ETag gets 200). [`Storage::Memory`]: publications are lost (the old
    ///   ETag gets 412; publish anew).
    /// - Subscriptions, in both modes: `subs_db_mode=2` writes them to `active_watchers` at
    ///   shutdown and reloads them, so a UDP watcher keeps getting NOTIFYs on its dialog.
    /// - TCP connections are closed. A SIPp [`Watcher`](crate::Watcher) over TCP ends
    ///   then (SIPp aborts a call whose connection closes); a bridge must reconnect.
    ///
    /// # Errors
    /// As [`Kamailio::start`]; the port is retried for a few seconds if it is still busy.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        self.launch(false)
    }

    /// Starts the process on `self.port` and waits for its control socket. With
    /// `new_port_on_conflict`, a port taken meanwhile is replaced by a fresh one.
    fn launch(&mut self, new_port_on_conflict: bool) -> Result<(), HarnessError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            if !new_port_on_conflict {
                let deadline = Instant::now() + Duration::from_secs(5);
                let ports = || std::iter::once(self.port).chain(self.tls_port);
                while !ports().all(port_is_free) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            match self.spawn_and_wait() {
                Err(HarnessError::Died { log_tail, .. })
                    if attempt < START_ATTEMPTS && log_tail.contains("Address already in use") =>
                {
                    if new_port_on_conflict {
                        self.pick_ports()?;
                    } else {
                        std::thread::sleep(Duration::from_millis(300));
                    }
                }
                other => return other,
            }
        }
    }

    /// A free port for UDP and TCP, and one more for TLS when it is on.
    fn pick_ports(&mut self) -> Result<(), HarnessError> {
        self.port = free_port()?;
        self.tls_port = match self.options.tls {
            Some(_) => Some(free_port()?),
            None => None,
        };
        Ok(())
    }

    /// With [`Options::tls`]: `RUNDIR/tls/` (the PEM files, the key readable by the owner
    /// only) and `RUNDIR/tls.cfg`.
    fn write_tls_files(&self) -> Result<(), HarnessError> {
        let Some(tls) = &self.options.tls else {
            return Ok(());
        };
        let dir = self.run_dir.join("tls");
        std::fs::create_dir(&dir).map_err(|source| HarnessError::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        write_file(&dir.join("server.pem"), &tls.certificate_pem)?;
        let key = dir.join("server.key");
        write_file(&key, &tls.private_key_pem)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).map_err(
                |source| HarnessError::Io {
                    action: "restrict",
                    path: key.clone(),
                    source,
                },
            )?;
        }
        if let Some(ca) = &tls.client_ca_pem {
            write_file(&dir.join("client-ca.pem"), ca)?;
        }
        write_file(
            &self.tls_config_path(),
            &render_tls_config(&dir, tls.client_ca_pem.is_some()),
        )?;
        Ok(())
    }

    fn create_database(&self) -> Result<(), HarnessError> {
        let mut schema = Vec::new();
        for file in ["standard-create.sql", "presence-create.sql"] {
            let path = Path::new(SCHEMA_DIR).join(file);
            let mut text = std::fs::read(&path).map_err(|source| HarnessError::Io {
                action: "read",
                path,
                source,
            })?;
            schema.append(&mut text);
            schema.push(b'\n');
        }
        let mut cmd = Command::new(&self.tools.sqlite3);
        cmd.arg("-bail").arg(self.db_path());
        run_ok(cmd, Some(schema), TOOL_TIMEOUT)?;
        Ok(())
    }

    /// The log written since the current start's marker line.
    fn current_log_tail(&self) -> String {
        let log = self.log();
        let marker = format!("==== presence-testkamailio: start #{} ", self.starts);
        let current = log.rfind(&marker).map_or(log.as_str(), |i| &log[i..]);
        tail(current, 25)
    }

    fn spawn_and_wait(&mut self) -> Result<(), HarnessError> {
        self.starts += 1;
        let cfg = self.config_path();
        write_file(
            &cfg,
            &render_config(&self.run_dir, self.port, &self.tools.module_dir),
        )?;
        let pidfile = self.run_dir.join("kamailio.pid");
        let _ = std::fs::remove_file(&pidfile);
        let _ = std::fs::remove_file(self.ctl_path());
        let log_path = self.log_path();
        let io_err = |source| HarnessError::Io {
            action: "write",
            path: log_path.clone(),
            source,
        };
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err)?;
        let tls_note = self
            .tls_port
            .map(|p| format!(", TLS on 127.0.0.1:{p}"))
            .unwrap_or_default();
        writeln!(
            log,
            "==== presence-testkamailio: start #{} on 127.0.0.1:{}{tls_note} ====",
            self.starts, self.port
        )
        .map_err(io_err)?;
        let log_err = log.try_clone().map_err(io_err)?;

        let mut cmd = Command::new(&self.tools.kamailio);
        cmd.arg("-f")
            .arg(&cfg)
            .arg("-P")
            .arg(&pidfile)
            .arg("-Y")
            .arg(&self.run_dir)
            .arg("-m")
            .arg(self.options.shm_mb.to_string())
            .arg("-M")
            .arg("16")
            .arg("-DD")
            .arg("-E");
        if self.options.storage == Storage::Memory {
            cmd.arg("-A").arg("PUBL_MEM");
        }
        if self.options.debug {
            cmd.arg("-A").arg("DBG");
        }
        if let Some(tls_port) = self.tls_port {
            cmd.arg("-A")
                .arg("WITH_TLS")
                .arg("-A")
                .arg(format!("TLS_PORT={tls_port}"));
        }
        // A WORKERS among the extra defines wins (Kamailio refuses a define given twice).
        if !self
            .options
            .defines
            .iter()
            .any(|d| d.starts_with("WORKERS"))
        {
            cmd.arg("-A")
                .arg(format!("WORKERS={}", self.options.workers.max(1)));
        }
        for define in &self.options.defines {
            cmd.arg("-A").arg(define);
        }
        cmd.current_dir(&self.run_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let child = cmd.spawn().map_err(|source| HarnessError::Spawn {
            program: self.tools.kamailio.display().to_string(),
            source,
        })?;
        self.child = Some(child);

        let timeout = self.options.startup_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(HarnessError::Died {
                    program: "kamailio",
                    status: status.to_string(),
                    log_tail: self.current_log_tail(),
                });
            }
            if self.ctl_path().exists() && self.kamcmd(&["core.uptime"]).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let log_tail = self.current_log_tail();
                self.stop();
                return Err(HarnessError::Timeout {
                    what: format!(
                        "kamailio on 127.0.0.1:{} answering `kamcmd core.uptime`",
                        self.port
                    ),
                    after: timeout,
                    log_tail,
                });
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "presence-testkamailio: kamailio on port {} ({}), last lines of its log:\n{}",
                self.port,
                self.run_dir.display(),
                tail(&self.log(), 30)
            );
        }
        if std::env::var_os(KEEP_ENV).is_some() {
            eprintln!(
                "presence-testkamailio: kept the kamailio run directory {} ({KEEP_ENV} is set)",
                self.run_dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.run_dir);
        }
    }
}

fn int(what: &'static str, text: &str) -> Result<i64, HarnessError> {
    text.trim().parse().map_err(|_| HarnessError::Parse {
        what,
        detail: format!("not an integer: {text:?}"),
    })
}

/// Parses `kamcmd presence.presentity_list`: `{` blocks of `key: value` lines.
fn parse_presentity_list(text: &str) -> Result<Vec<Presentity>, HarnessError> {
    let mut out = Vec::new();
    let mut current: Option<Vec<(String, String)>> = None;
    for line in text.lines() {
        let line = line.trim();
        match line {
            "{" => current = Some(Vec::new()),
            "}" => {
                let Some(fields) = current.take() else {
                    continue;
                };
                let get = |k: &str| {
                    fields
                        .iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                out.push(Presentity {
                    username: get("user"),
                    domain: get("domain"),
                    event: get("event"),
                    etag: get("etag"),
                    expires: int("presentity_list expires", &get("expires"))?,
                    received_time: None,
                    body: None,
                    sender: get("sender"),
                });
            }
            _ => {
                if let (Some(fields), Some((k, v))) = (current.as_mut(), line.split_once(':')) {
                    fields.push((k.trim().to_owned(), v.trim().to_owned()));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presentity_list_is_parsed() {
        let text = "{\n\tuser: agent7\n\tdomain: test.local\n\tevent: presence\n\
                    \tetag: a.1796187916.14169.3.2\n\tsender: \n\texpires: 1796191517\n}\n";
        let list = parse_presentity_list(text).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].username, "agent7");
        assert_eq!(list[0].etag, "a.1796187916.14169.3.2");
        assert_eq!(list[0].expires, 1_796_191_517);
        assert_eq!(list[0].body, None);
    }

    #[test]
    fn config_is_filled_in() {
        let cfg = render_config(
            Path::new("/tmp/run"),
            5099,
            Path::new("/usr/lib/x/kamailio/modules"),
        );
        assert!(cfg.contains("listen=udp:127.0.0.1:5099"));
        assert!(cfg.contains("listen=tcp:127.0.0.1:5099"));
        assert!(cfg.contains("sqlite:///tmp/run/presence.sqlite"));
        assert!(cfg.contains("mpath=\"/usr/lib/x/kamailio/modules/\""));
        assert!(!cfg.contains('@'), "a placeholder is left");
    }
}
