//! The one place that knows the concrete transports: which tables configure them, how
//! their users are addressed, how their settings are checked, how they start. Everything
//! else in the binary handles them as `Arc<dyn PresenceTransport>` behind a `Router`.

use std::sync::Arc;

use anyhow::{Context, Result};
use presence_config::{Addressing, PlatformSpec};
use presence_graph::{GraphSettings, GraphTransport};
use presence_model::{Platform, Publication};
use presence_sfb::{SfbSettings, SfbTransport};
use presence_simple::{SimpleSettings, SimpleTransport};
use presence_transport::{EventSender, PresenceTransport, Router};
use tokio::task::JoinHandle;

use crate::files::Sections;

pub(crate) use presence_transport::settings::Severity;

/// A finding about a transport's table, for `check` and for `run`'s refusal.
#[derive(Clone, Debug)]
pub(crate) struct Finding {
    pub severity: Severity,
    /// The key it is about, with its table (`sfb.tls.certificate`), to find its line.
    pub key: &'static str,
    /// `` `key`: what is wrong ``.
    pub message: String,
}

/// A transport the configuration asks for.
#[derive(Clone, Debug)]
pub(crate) enum Configured {
    /// `[sfb]`: Skype for Business Server.
    Sfb(Box<SfbSettings>),
    /// `[teams]`: Microsoft Teams over Graph.
    Teams(Box<GraphSettings>),
    /// `[simple]`: a SIP SIMPLE presence server.
    Simple(Box<SimpleSettings>),
}

impl Configured {
    /// Every transport table of the configuration, in a fixed order.
    pub(crate) fn all(sections: &Sections) -> Vec<Configured> {
        let mut out = Vec::new();
        if let Some(sfb) = &sections.sfb {
            out.push(Configured::Sfb(Box::new(sfb.clone())));
        }
        if let Some(teams) = &sections.teams {
            out.push(Configured::Teams(Box::new(teams.clone())));
        }
        if let Some(simple) = &sections.simple {
            out.push(Configured::Simple(Box::new(simple.clone())));
        }
        out
    }

    /// The platform it serves, named like its table.
    pub(crate) fn platform(&self) -> Platform {
        match self {
            Configured::Sfb(_) => Platform::sfb(),
            Configured::Teams(_) => Platform::teams(),
            Configured::Simple(_) => Platform::simple(),
        }
    }

    /// The platform and how it knows users, for the configuration's user resolution.
    pub(crate) fn spec(&self) -> PlatformSpec {
        PlatformSpec {
            name: self.platform(),
            addressing: match self {
                Configured::Sfb(_) | Configured::Simple(_) => Addressing::Sip,
                Configured::Teams(_) => Addressing::Entra,
            },
        }
    }

    /// What the transport's own validation says about its table (offline: files and
    /// environment variables are looked at, nothing is contacted).
    pub(crate) fn findings(&self) -> Vec<Finding> {
        let findings = match self {
            Configured::Sfb(settings) => settings.findings(),
            Configured::Teams(settings) => settings.findings(),
            Configured::Simple(settings) => settings.findings(),
        };
        findings
            .into_iter()
            .map(|f| Finding {
                severity: f.severity,
                key: f.key,
                message: format!("`{}`: {}", f.key, f.message),
            })
            .collect()
    }

    /// What the platform shows once `publication` is published, for `explain`.
    pub(crate) fn describe(&self, publication: &Publication) -> String {
        match self {
            Configured::Sfb(_) => format!(
                "availability {} ({}) with its activity texts",
                publication.presence.availability,
                publication.presence.availability.class()
            ),
            Configured::Teams(settings) => match settings.mapping() {
                Ok(mapping) => {
                    let target = mapping.push(publication);
                    let message = match (target, mapping.status_message(publication)) {
                        (presence_graph::mapping::Target::Clear, _) => {
                            ": the bridge's session and status message end, the user's own presence shows".to_owned()
                        }
                        (_, Some(text)) => format!(", status message \"{text}\""),
                        (_, None) => String::new(),
                    };
                    format!("{target}{message}")
                }
                Err(error) => format!("(the [teams] mapping is invalid: {error})"),
            },
            Configured::Simple(settings) => match settings.mapping() {
                Ok(mapping) => match mapping.push(publication) {
                    presence_simple::mapping::PushTarget::Remove => {
                        "the bridge's publication is removed (Expires: 0), the user's own presence shows".to_owned()
                    }
                    presence_simple::mapping::PushTarget::Nothing => "nothing is published".to_owned(),
                    presence_simple::mapping::PushTarget::Publish(state) => {
                        format!("PIDF {state} with the activity texts as notes")
                    }
                },
                Err(error) => format!("(the [simple] mapping is invalid: {error})"),
            },
        }
    }

    /// Starts the transport on the current runtime, reporting into `events`.
    pub(crate) fn start(
        &self,
        events: EventSender,
    ) -> Result<(Arc<dyn PresenceTransport>, JoinHandle<()>)> {
        let platform = self.platform();
        Ok(match self {
            Configured::Sfb(settings) => {
                let (transport, task) = SfbTransport::start(settings, platform, events)
                    .context("cannot start the Skype for Business transport [sfb]")?;
                (Arc::new(transport), task)
            }
            Configured::Teams(settings) => {
                let (transport, task) = GraphTransport::start(settings, platform, events)
                    .context("cannot start the Teams transport [teams]")?;
                (Arc::new(transport), task)
            }
            Configured::Simple(settings) => {
                let (transport, task) = SimpleTransport::start(settings, platform, events)
                    .context("cannot start the SIP SIMPLE transport [simple]")?;
                (Arc::new(transport), task)
            }
        })
    }
}

/// The platforms of a set of configured transports.
pub(crate) fn specs(configured: &[Configured]) -> Vec<PlatformSpec> {
    configured.iter().map(Configured::spec).collect()
}

/// Starts every configured transport behind one router.
pub(crate) fn start_all(
    configured: &[Configured],
    events: &EventSender,
) -> Result<(Router, Vec<JoinHandle<()>>)> {
    let mut router = Router::new();
    let mut tasks = Vec::new();
    for transport in configured {
        let (handle, task) = transport.start(events.clone())?;
        router = router.with(transport.platform(), handle);
        tasks.push(task);
    }
    Ok((router, tasks))
}
