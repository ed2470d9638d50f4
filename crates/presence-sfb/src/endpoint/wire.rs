//! The publication request written straight into its bytes: what building it with
//! [`presence_sip::Request`] and serializing it gives, without the `format!`s, the header
//! table and the copy of the body into it.

use presence_model::Decimal;
use presence_model::random::HexDigits;
use presence_sip::Method;

use super::BRANCH_MAGIC;
use crate::settings::EndpointConfig;

/// The `Content-Type` of a publication.
pub(super) const PUBLISH_CONTENT_TYPE: &str = "application/msrtc-category-publish+xml";

/// The header fields of a request that only depend on the settings, written and checked
/// once (as [`presence_sip::Headers::append`] checks and trims them).
#[derive(Debug)]
pub(super) struct Head {
    /// `Via: SIP/2.0/<transport> <host>;branch=z9hG4bK`
    via: String,
    /// `Contact: <…>\r\nUser-Agent: …\r\n`
    contact_and_agent: String,
    /// Whether to write `P-Asserted-Identity`.
    p_asserted_identity: bool,
}

/// One publication request: what changes from one to the next.
pub(super) struct Publication<'a> {
    /// The user: Request-URI, `From`, `To` (and `P-Asserted-Identity`).
    pub(super) target: &'a str,
    /// The digits of the branch, after the magic cookie.
    pub(super) branch: HexDigits,
    pub(super) call_id: HexDigits,
    pub(super) from_tag: HexDigits,
    pub(super) epid: &'a str,
    pub(super) cseq: u32,
    pub(super) body: &'a str,
}

impl Head {
    /// The head for `config`; `None` when a value would be refused as a header value, so
    /// that requests are built field by field (and fail as such).
    pub(super) fn new(config: &EndpointConfig) -> Option<Head> {
        let via_value = format!(
            "SIP/2.0/{} {};branch={BRANCH_MAGIC}",
            config.transport.via_token(),
            config.local_host
        );
        let contact = format!("<{}>", config.contact);
        // A value starting with `S` or `<` and ending in the branch or `>` is not trimmed.
        for (name, value) in [
            ("Via", via_value.as_str()),
            ("Contact", &contact),
            ("User-Agent", &config.user_agent),
        ] {
            presence_sip::check_header(name, value).ok()?;
        }
        let agent = config.user_agent.trim_matches([' ', '\t']);
        Some(Head {
            via: format!("Via: {via_value}"),
            contact_and_agent: format!("Contact: {contact}\r\nUser-Agent: {agent}\r\n"),
            p_asserted_identity: config.p_asserted_identity,
        })
    }

    /// Whether `target` is a valid Request-URI (not empty, no white space or control
    /// characters): then it is a valid header value inside `<…>` too, and
    /// [`write_publish`](Self::write_publish) writes what the builder would.
    pub(super) fn accepts(target: &str) -> bool {
        !target.is_empty() && !target.bytes().any(|b| b <= b' ' || b == 0x7f)
    }

    /// The bytes of the `SERVICE` request for `p`, for a `target` it
    /// [`accepts`](Self::accepts): the fields in the order `base_request` appends them,
    /// then `Content-Type`, `Content-Length`, the empty line and the body.
    pub(super) fn write_publish(&self, p: &Publication<'_>) -> Vec<u8> {
        let method = Method::Service.as_str();
        let target = p.target;
        let mut out = String::with_capacity(
            300 + self.via.len()
                + self.contact_and_agent.len()
                + 4 * target.len()
                + 3 * 32
                + p.epid.len()
                + p.body.len(),
        );
        for part in [method, " ", target, " SIP/2.0\r\n", &self.via] {
            out.push_str(part);
        }
        p.branch.push_to(&mut out);
        for part in ["\r\nMax-Forwards: 70\r\nFrom: <", target, ">;tag="] {
            out.push_str(part);
        }
        p.from_tag.push_to(&mut out);
        for part in [";epid=", p.epid, "\r\nTo: <", target, ">\r\nCall-ID: "] {
            out.push_str(part);
        }
        p.call_id.push_to(&mut out);
        out.push_str("\r\nCSeq: ");
        out.push_str(Decimal::new(u64::from(p.cseq)).as_str());
        for part in [" ", method, "\r\n", &self.contact_and_agent] {
            out.push_str(part);
        }
        if self.p_asserted_identity {
            for part in ["P-Asserted-Identity: <", target, ">\r\n"] {
                out.push_str(part);
            }
        }
        for part in [
            "Content-Type: ",
            PUBLISH_CONTENT_TYPE,
            "\r\nContent-Length: ",
        ] {
            out.push_str(part);
        }
        // A usize always fits in a u64 on the targets Rust supports.
        out.push_str(Decimal::new(p.body.len() as u64).as_str());
        out.push_str("\r\n\r\n");
        out.push_str(p.body);
        out.into_bytes()
    }
}
