//! Unit tests of the core: every rule on a synthetic clock.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::{
    AppRegistration, Availability, Budget, GraphWorld, HttpRequest, HttpResponse, Permission,
    RequestKind, SimConfig, SimEvent, SimUser, TEAMS_CLIENT, WriteKind,
};

const ID: &str = SimConfig::DEFAULT_CLIENT_ID;
const SECRET: &str = SimConfig::DEFAULT_CLIENT_SECRET;
const TOKEN_PATH: &str = "/contoso.onmicrosoft.com/oauth2/v2.0/token";

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn config() -> SimConfig {
    SimConfig::default().with_generated_users(3)
}

fn world(config: SimConfig) -> (GraphWorld, Instant) {
    let t0 = Instant::now();
    (GraphWorld::new(config, t0).unwrap(), t0)
}

fn user(i: usize) -> String {
    SimUser::generated(i).id
}

fn token_request(fields: &[(&str, &str)]) -> HttpRequest {
    HttpRequest::post(TOKEN_PATH).with_form(fields)
}

fn credentials<'a>(client_id: &'a str, secret: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
        ("scope", "https://graph.microsoft.com/.default"),
    ]
}

fn token_for(world: &mut GraphWorld, client_id: &str, secret: &str, now: Instant) -> String {
    let response = world.handle(&token_request(&credentials(client_id, secret)), now);
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    response.json()["access_token"].as_str().unwrap().to_owned()
}

fn token(world: &mut GraphWorld, now: Instant) -> String {
    token_for(world, ID, SECRET, now)
}

fn presence_path(user: &str, action: &str) -> String {
    format!("/v1.0/users/{user}/presence/{action}")
}

fn set_presence(
    world: &mut GraphWorld,
    token: &str,
    user: &str,
    availability: &str,
    activity: &str,
    expiration: Option<&str>,
    now: Instant,
) -> HttpResponse {
    let mut body = json!({"sessionId": ID, "availability": availability, "activity": activity});
    if let Some(expiration) = expiration {
        body["expirationDuration"] = json!(expiration);
    }
    world.handle(
        &HttpRequest::post(presence_path(user, "setPresence"))
            .with_bearer(token)
            .with_json(&body),
        now,
    )
}

fn get(world: &mut GraphWorld, token: &str, path: &str, now: Instant) -> HttpResponse {
    world.handle(&HttpRequest::get(path).with_bearer(token), now)
}

fn post(
    world: &mut GraphWorld,
    token: &str,
    path: &str,
    body: &Value,
    now: Instant,
) -> HttpResponse {
    world.handle(
        &HttpRequest::post(path).with_bearer(token).with_json(body),
        now,
    )
}

fn shows(world: &mut GraphWorld, user: &str, now: Instant) -> (Availability, String) {
    let shown = world.shows(user, now).unwrap();
    (shown.availability, shown.activity)
}

fn pair(availability: Availability, activity: &str) -> (Availability, String) {
    (availability, activity.to_owned())
}

fn graph_error(response: &HttpResponse) -> (u16, String, String) {
    let json = response.json();
    (
        response.status,
        json["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        json["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

fn entra_error(response: &HttpResponse) -> (u16, String, u64, String) {
    let json = response.json();
    (
        response.status,
        json["error"].as_str().unwrap_or_default().to_owned(),
        json["error_codes"][0].as_u64().unwrap_or_default(),
        json["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

// ---------------------------------------------------------------------- tokens

#[test]
fn a_token_is_issued_by_tenant_name_or_id() {
    let (mut world, t0) = world(config());
    let response = world.handle(&token_request(&credentials(ID, SECRET)), t0);
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let json = response.json();
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["expires_in"], 3599);
    assert_eq!(json["ext_expires_in"], 3599);
    assert!(json["access_token"].as_str().is_some_and(|t| t.len() > 20));

    let tenant_id = world.config().tenant_id.clone();
    let by_id = HttpRequest::post(format!("/{}/oauth2/v2.0/token", tenant_id.to_uppercase()))
        .with_form(&credentials(ID, SECRET));
    assert_eq!(world.handle(&by_id, t0).status, 200);
    let by_name = HttpRequest::post("/CONTOSO.onmicrosoft.com/oauth2/v2.0/token")
        .with_form(&credentials(&ID.to_uppercase(), SECRET));
    assert_eq!(world.handle(&by_name, t0).status, 200);
    assert_eq!(world.stats().tokens_issued, 3);
    assert!(matches!(
        world.poll_event(),
        Some(SimEvent::TokenIssued {
            expires_in: 3599,
            ..
        })
    ));
}

#[test]
fn the_configured_lifetime_is_expires_in() {
    let (mut world, t0) = world(SimConfig {
        token_lifetime: Duration::from_millis(600_900),
        ..config()
    });
    let response = world.handle(&token_request(&credentials(ID, SECRET)), t0);
    assert_eq!(response.json()["expires_in"], 600);
}

#[test]
fn token_refusals_have_the_entra_shape() {
    let (mut world, t0) = world(config());
    let cases: Vec<(HttpRequest, u16, &str, u64, &str)> = vec![
        (
            HttpRequest::post("/fabrikam.onmicrosoft.com/oauth2/v2.0/token")
                .with_form(&credentials(ID, SECRET)),
            400,
            "invalid_request",
            90002,
            "Tenant 'fabrikam.onmicrosoft.com' not found",
        ),
        (
            token_request(&[
                ("grant_type", "client_credentials"),
                ("client_secret", SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ]),
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        ),
        (
            token_request(&[("client_id", ID), ("client_secret", SECRET)]),
            400,
            "invalid_request",
            900144,
            "'grant_type'",
        ),
        (
            token_request(&[
                ("grant_type", "client_credentials"),
                ("client_id", ID),
                ("client_secret", SECRET),
            ]),
            400,
            "invalid_request",
            900144,
            "'scope'",
        ),
        (
            token_request(&[
                ("grant_type", "client_credentials"),
                ("client_id", ID),
                ("scope", "https://graph.microsoft.com/.default"),
            ]),
            400,
            "invalid_request",
            900144,
            "'client_secret'",
        ),
        (
            token_request(&[
                ("grant_type", "password"),
                ("client_id", ID),
                ("client_secret", SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ]),
            400,
            "unsupported_grant_type",
            70003,
            "unsupported grant type 'password'",
        ),
        (
            token_request(&[
                ("grant_type", "client_credentials"),
                ("client_id", ID),
                ("client_secret", SECRET),
                ("scope", "Presence.ReadWrite.All"),
            ]),
            400,
            "invalid_scope",
            1002012,
            "The provided value for scope Presence.ReadWrite.All is not valid",
        ),
        (
            token_request(&credentials("00000000-1111-2222-3333-444444444444", SECRET)),
            400,
            "unauthorized_client",
            700016,
            "Application with identifier '00000000-1111-2222-3333-444444444444' was not found \
             in the directory 'contoso.onmicrosoft.com'",
        ),
        (
            token_request(&credentials(ID, "wrong")),
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the \
             client secret value, not the client secret ID, for a secret added to app '6e5f9a3c",
        ),
        (
            HttpRequest::get(TOKEN_PATH),
            400,
            "invalid_request",
            900561,
            "only accepts POST",
        ),
    ];
    for (request, status, error, code, text) in cases {
        let response = world.handle(&request, t0);
        let (got_status, got_error, got_code, description) = entra_error(&response);
        assert_eq!(
            (got_status, got_error.as_str(), got_code),
            (status, error, code),
            "{description}"
        );
        assert!(
            description.starts_with(&format!("AADSTS{code}: ")),
            "{description}"
        );
        assert!(description.contains(text), "{description} lacks {text}");
        let json = response.json();
        assert!(crate::rng::is_guid(json["trace_id"].as_str().unwrap()));
        assert!(crate::rng::is_guid(
            json["correlation_id"].as_str().unwrap()
        ));
        assert!(json["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(world.stats().tokens_refused, 10);
    assert_eq!(world.stats().tokens_issued, 0);

    // The caller's client-request-id is the correlation id; secrets never show.
    let correlation = "0f0e0d0c-0b0a-4909-8807-060504030201";
    let response = world.handle(
        &token_request(&credentials(ID, "wrong")).with_header("client-request-id", correlation),
        t0,
    );
    assert_eq!(response.json()["correlation_id"], correlation);
    let mut events = Vec::new();
    while let Some(event) = world.poll_event() {
        events.push(format!("{event} {event:?}"));
    }
    assert!(
        events
            .iter()
            .all(|e| !e.contains(SECRET) && !e.contains("wrong")),
        "{events:?}"
    );
}

#[test]
fn tokens_expire_after_their_lifetime() {
    let (mut world, t0) = world(config());
    let token = token(&mut world, t0);
    let path = format!("/v1.0/users/{}", user(1));
    assert_eq!(get(&mut world, &token, &path, t0 + secs(3598)).status, 200);
    let response = get(&mut world, &token, &path, t0 + secs(3599));
    assert_eq!(
        graph_error(&response),
        (
            401,
            "InvalidAuthenticationToken".to_owned(),
            "Access token has expired or is not yet valid.".to_owned()
        )
    );
    // A new token works.
    let fresh = token_for(&mut world, ID, SECRET, t0 + secs(3600));
    assert_eq!(get(&mut world, &fresh, &path, t0 + secs(3600)).status, 200);
}

// ---------------------------------------------------------------------- authentication

#[test]
fn graph_needs_a_bearer_token() {
    let (mut world, t0) = world(config());
    let token = token(&mut world, t0);
    let path = format!("/v1.0/users/{}/presence", user(1));

    let response = world.handle(
        &HttpRequest::get(&path).with_header("client-request-id", "my-request-1"),
        t0,
    );
    assert_eq!(
        graph_error(&response),
        (
            401,
            "InvalidAuthenticationToken".to_owned(),
            "Access token is empty.".to_owned()
        )
    );
    assert!(
        response
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    let inner = &response.json()["error"]["innerError"];
    assert_eq!(inner["client-request-id"], "my-request-1");
    assert!(crate::rng::is_guid(inner["request-id"].as_str().unwrap()));
    assert_eq!(inner["date"], "2025-01-01T00:00:00Z");
    assert_eq!(response.header("client-request-id"), Some("my-request-1"));

    for header in ["Bearer", "Basic abc", "Bearer    "] {
        let response = world.handle(
            &HttpRequest::get(&path).with_header("Authorization", header),
            t0,
        );
        assert_eq!(
            graph_error(&response).2,
            "Access token is empty.",
            "{header}"
        );
    }
    let response = get(&mut world, "sim.nonsense", &path, t0);
    assert_eq!(response.status, 401);
    assert!(response.header("www-authenticate").is_some());

    // The scheme is case-insensitive.
    let response = world.handle(
        &HttpRequest::get(&path).with_header("authorization", format!("bEaReR {token}")),
        t0,
    );
    assert_eq!(response.status, 200);
    assert_eq!(world.stats().refused_auth, 5);
}

#[test]
fn revoked_tokens_are_refused_and_new_ones_work() {
    let (mut world, t0) = world(config());
    let old = token(&mut world, t0);
    world.revoke_tokens();
    let path = format!("/v1.0/users/{}/presence", user(1));
    assert_eq!(get(&mut world, &old, &path, t0).status, 401);
    let new = token(&mut world, t0);
    assert_eq!(get(&mut world, &new, &path, t0).status, 200);
    assert_eq!(get(&mut world, &old, &path, t0).status, 401);
}

#[test]
fn a_wrong_secret_can_be_made_right_again() {
    let (mut world, t0) = world(config());
    let earlier = token(&mut world, t0);
    world.set_client_secret(ID, "rotated").unwrap();
    let refused = world.handle(&token_request(&credentials(ID, SECRET)), t0);
    assert_eq!(entra_error(&refused).1, "invalid_client");
    assert_eq!(refused.status, 401);
    // Tokens issued before stay valid.
    assert_eq!(
        get(
            &mut world,
            &earlier,
            &format!("/v1.0/users/{}", user(1)),
            t0
        )
        .status,
        200
    );
    token_for(&mut world, ID, "rotated", t0);
    world.set_client_secret(ID, SECRET).unwrap();
    token(&mut world, t0);
    assert!(world.set_client_secret("nobody", "x").is_err());
}

// ---------------------------------------------------------------------- users

#[test]
fn users_are_found_by_id_or_upn() {
    let (mut world, t0) = world(config());
    let token = token(&mut world, t0);
    for path in [
        format!("/v1.0/users/{}", user(2)),
        format!("/v1.0/users/{}", user(2).to_uppercase()),
        "/v1.0/users/Agent2@Contoso.COM".to_owned(),
        "/v1.0/users/agent2%40contoso.com?$select=id".to_owned(),
        "/V1.0/Users/agent2@contoso.com/".to_owned(),
    ] {
        let response = get(&mut world, &token, &path, t0);
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(
            response.json(),
            json!({"id": user(2), "userPrincipalName": "agent2@contoso.com"}),
            "{path}"
        );
    }
    let response = get(&mut world, &token, "/v1.0/users/ghost@contoso.com", t0);
    assert_eq!(
        graph_error(&response),
        (
            404,
            "Request_ResourceNotFound".to_owned(),
            "Resource 'ghost@contoso.com' does not exist or one of its queried \
             reference-property objects are not present."
                .to_owned()
        )
    );
}

#[test]
fn users_can_be_added() {
    let (mut world, t0) = world(config());
    let id = world.add_user("new.person@contoso.com", t0).unwrap();
    assert_eq!(id, SimUser::new("new.person@contoso.com").id);
    assert_eq!(world.add_user("NEW.person@contoso.com", t0).unwrap(), id);
    assert_eq!(world.user_id("new.person@contoso.com"), Some(id.as_str()));
    assert_eq!(world.user_count(), 4);
    assert!(world.add_user("no-at-sign", t0).is_err());
    let token = token(&mut world, t0);
    assert_eq!(
        set_presence(&mut world, &token, &id, "Busy", "InACall", None, t0).status,
        200
    );
}

// ---------------------------------------------------------------------- setPresence

#[test]
fn set_presence_creates_and_replaces_the_apps_session() {
    let (mut world, t0) = world(config());
    let token = token(&mut world, t0);
    let agent = user(1);
    assert_eq!(
        shows(&mut world, &agent, t0),
        pair(Availability::Offline, "Offline")
    );

    let response = set_presence(
        &mut world,
        &token,
        &agent,
        "Busy",
        "InACall",
        Some("PT1H"),
        t0,
    );
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty());
    assert_eq!(
        shows(&mut world, &agent, t0),
        pair(Availability::Busy, "InACall")
    );
    let shown = world.shows("agent1@contoso.com", t0).unwrap();
    assert_eq!(shown.sessions.len(), 1);
    assert_eq!(shown.sessions[0].source, ID);
    assert_eq!(shown.sessions[0].expires_in, Some(secs(3600)));

    // Replaced, not added; case-insensitive names come back canonical.
    let response = set_presence(
        &mut world,
        &token,
        &agent,
        "donotdisturb",
        "presenting",
        None,
        t0,
    );
    assert_eq!(response.status, 200);
    let shown = world.shows(&agent, t0).unwrap();
    assert_eq!(shown.sessions.len(), 1);
    assert_eq!(
        (shown.availability, shown.activity.as_str()),
        (Availability::DoNotDisturb, "Presenting")
    );

    for (availability, activity) in [
        ("Available", "Available"),
        ("Busy", "InACall"),
        ("Busy", "InAConferenceCall"),
        ("Away", "Away"),
        ("DoNotDisturb", "Presenting"),
    ] {
        let response = set_presence(&mut world, &token, &agent, availability, activity, None, t0);
        assert_eq!(response.status, 200, "{availability}/{activity}");
    }
}

#[test]
fn set_presence_refusals() {
    let (mut world, t0) = world(config());
    let token = token(&mut world, t0);
    let agent = user(1);
    let path = presence_path(&agent, "setPresence");

    let response = post(
        &mut world,
        &token,
        &path,
        &json!({"sessionId": "another-app", "availability": "Busy", "activity": "InACall"}),
        t0,
    );
    assert_eq!(graph_error(&response).1, "InvalidArgument");
    assert_eq!(response.status, 400);

    let response = set_presence(&mut world, &token, &agent, "Busy", "Busy", None, t0);
    let (status, code, message) = graph_error(&response);
    assert_eq!((status, code.as_str()), (400, "InvalidArgument"));
    assert!(message.contains("'Busy'"), "{message}");
    for (availability, activity) in [
        ("Offline", "OffWork"),
        ("BeRightBack", "BeRightBack"),
        ("Away", "Busy"),
    ] {
        let response = set_presence(&mut world, &token, &agent, availability, activity, None, t0);
        assert_eq!(response.status, 400, "{availability}/{activity}");
    }

    for duration in ["PT4M59S", "PT4H1M", "PT0S", "P1D"] {
        let response = set_presence(
            &mut world,
            &token,
            &agent,
            "Busy",
            "InACall",
            Some(duration),
            t0,
        );
        assert_eq!(
            graph_error(&response),
            (
                400,
                "InvalidArgument".to_owned(),
                "The provided [ExpirationDuration] is out of range".to_owned()
            ),
            "{duration}"
        );
    }
    for duration in ["PT5M", "PT4H", "PT1H30M", "PT300S"] {
        let response = set_presence(
            &mut world,
            &token,
            &agent,
            "Busy",
            "InACall",
            Some(duration),
            t0,
        );
        assert_eq!(response.status, 200, "{duration}");
    }
    let response = set_presence(
        &mut world,
        &token,
        &agent,
        "Busy",
        "InACall",
        Some("one hour"),
        t0,
    );
    assert_eq!(graph_error(&response).1, "InvalidArgument");

    // A UPN is not an object id here.
    let response = set_presence(
        &mut world,
        &token,
        "agent1@contoso.com",
        "Busy",
        "InACall",
        None,
        t0,
    );
    assert_eq!(graph_error(&response).1, "Request_ResourceNotFound");
    assert_eq!(response.status, 404);

    for body in [&b"{not json"[..], b"", b"[]", br#"{"availability": 3}"#] {
        let response = world.handle(
            &HttpRequest::post(&path).with_bearer(&token).with_body(body),
            t0,
        );
        assert_eq!(
            graph_error(&response).1,
            "BadRequest",
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let response = post(
        &mut world,
        &token,
        &path,
        &json!({"sessionId": ID, "activity": "InACall"}),
        t0,
    );
    assert_eq!(graph_error(&response).1, "InvalidArgument");
}

#[test]
fn the_default_expiration_is_five_minutes_and_expiry_makes_the_user_offline() {
    let (mut world, t0) = world(config());
    let token = token(&mut world, t0);
    let agent = user(1);
    set_presence(&mut world, &token, &agent, "Busy", "InACall", None, t0);
    assert_eq!(
        shows(&mut world, &agent, t0 + secs(299)),
        pair(Availability::Busy, "InACall")
    );
    assert_eq!(
        shows(&mut world, &agent, t0 + secs(300)),
        pair(Availability::Offline, "Offline")
    );
    assert!(
        world
            .shows(&agent, t0 + secs(300))
            .unwrap()
            .sessions
            .is_empty()
    );

    // With the Teams client signed in, expiry falls back to it.
    world
        .set_client_presence(&agent, Availability::Available, "Available", t0)
        .unwrap();
    set_presence(
        &mut world,
        &token,
        &agent,
        "Busy",
        "InACall",
        Some("PT10M"),
        t0 + secs(300),
    );
    assert_eq!(
        shows(&mut world, &agent, t0 + secs(400)),
        pair(Availability::Busy, "InACall")
    );
    assert_eq!(
        shows(&mut world, &agent, t0 + secs(900)),
        pair(Availability::Available, "Available")
    );
}

#[test]
fn clear_presence_ends_the_apps_session() {
    let (mut world, t0) = world(config());
    let token = token(&mut world, t0);
    let agent = user(1);
    let path = presence_path(&agent, "clearPresence");
    let response = post(&mut world, &token, &path, &json!({"sessionId": ID}), t0);
    assert_eq!(graph_error(&response).0, 404);
    assert_eq!(graph_error(&response).1, "NotFound");

    set_presence(&mut world, &token, &agent, "Busy", "InACall", None, t0);
    let response = post(
        &mut world,
        &token,
        &path,
        &json!({"sessionId": "someone-else"}),
        t0,
    );
    assert_eq!(response.status, 400);
    let response = post(&mut world, &token, &path, &json!({"sessionId": ID}), t0);
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty());
    assert_eq!(
        shows(&mut world, &agent, t0),
        pair(Availability::Offline, "Offline")
    );
    let response = post(&mut world, &token, &path, &json!({"sessionId": ID}), t0);
    assert_eq!(response.status, 404);

    // An expired session is no session.
    set_presence(&mut world, &token, &agent, "Busy", "InACall", None, t0);
    let response = post(
        &mut world,
        &token,
        &path,
        &json!({"sessionId": ID}),
        t0 + secs(301),
    );
    assert_eq!(response.status, 404);
}

// ---------------------------------------------------------------------- preferred, message

#[test]
fn the_preferred_presence_overrides_sessions() {
    let (mut world, t0) = world(config());
    let token = token(&mut world, t0);
    let agent = user(1);
    let set_path = presence_path(&agent, "setUserPreferredPresence");
    set_presence(
        &mut world,
        &token,
        &agent,
        "Busy",
        "InACall",
        Some("PT4H"),
        t0,
    );
    world
        .set_client_presence(&agent, Availability::DoNotDisturb, "Presenting", t0)
        .unwrap();

    let response = post(
        &mut world,
        &token,
        &set_path,
        &json!({"availability": "Offline", "activity": "OffWork"}),
        t0,
    );
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty());
    assert_eq!(
        shows(&mut world, &agent, t0),
        pair(Availability::Offline, "OffWork")
    );
    let shown = world.shows(&agent, t0).unwrap();
    assert_eq!(
        shown.preferred,
        Some(pair(Availability::Offline, "OffWork"))
    );
    assert_eq!(shown.sessions.len(), 2);
    assert_eq!(shown.sessions[0].source, TEAMS_CLIENT);

    for (availability, activity) in [
        ("Available", "Available"),
        ("Busy", "Busy"),
        ("DoNotDisturb", "DoNotDisturb"),
        ("BeRightBack", "BeRightBack"),
        ("Away", "Away"),
        ("Offline", "OffWork"),
    ] {
        let body = json!({"availability": availability, "activity": activity});
        assert_eq!(
            post(&mut world, &token, &set_path, &body, t0).status,
            200,
            "{availability}"
        );
    }
    for body in [
        json!({"availability": "Busy", "activity": "InACall"}),
        json!({"availability": "Offline", "activity": "Offline"}),
        json!({"availability": "Available"}),
        json!({"availability": "Busy", "activity": "Busy", "expirationDuration": "soon"}),
    ] {
        let response = post(&mut world, &token, &set_path, &body, t0);
        assert_eq!(graph_error(&response).1, "InvalidArgument", "{body}");
    }

    let clear_path = presence_path(&agent, "clearUserPreferredPresence");
    let response = post(&mut world, &token, &clear_path, &json!({}), t0);
    assert_eq!(response.status, 200);
    assert_eq!(
        shows(&mut world, &agent, t0),
        pair(Availability::DoNotDisturb, "Presenting")
    );
    // Clearing twice is fine.
    assert_eq!(
        post(&mut world, &token, &clear_path, &json!({}), t0).status,
        200
    );
}

#[test]
fn preferred_presence_expires_after_one_day_for_busy_and_seven_otherwise() {
    let (mut world, t0) = world(config());
    let token = token(&mut world, t0);
    let agent = user(1);
    let path = presence_path(&agent, "setUserPreferredPresence");
    let day = secs(24 * 3600);
    world
        .set_client_presence(&agent, Availability::Available, "Available", t0)
        .unwrap();

    post(
        &mut world,
        &token,
        &path,
        &json!({"availability": "Busy", "activity": "Busy"}),
        t0,
    );
    assert_eq!(
        shows(&mut world, &agent, t0 + day - secs(1)).0,
        Availability::Busy
    );
    assert_eq!(
        shows(&mut world, &agent, t0 + day).0,
        Availability::Available
    );

    let token = token_for(&mut world, ID, SECRET, t0 + day);
    post(
        &mut world,
        &token,
        &path,
        &json!({"availability": "Away", "activity": "Away"}),
        t0 + day,
    );
    assert_eq!(
        shows(&mut world, &agent, t0 + 7 * day + day - secs(1)).0,
        Availability::Away
    );
    assert_eq!(
        shows(&mut world, &agent, t0 + 8 * day).0,
        Availability::Available
    );

    let token = token_for(&mut world, ID, SECRET, t0 + 8 * day);
    let body = json!({"availability": "DoNotDisturb", "activity": "DoNotDisturb", "expirationDuration": "PT1H"});
    post(&mut world, &token, &path, &body, t0 + 8 * day);
    assert_eq!(
        shows(&mut world, &agent, t0 + 8 * day + secs(3599)).0,
        Availability::DoNotDisturb
    );
    assert_eq!(
        shows(&mut world, &agent, t0 + 8 * day + secs(3600)).0,
        Availability::Available
    );
}

#[test]
fn status_messages_are_set_shown_and_cleared() {
    let (mut world, t0) = world(config());
    let token = token(&mut world, t0);
    let agent = user(1);
    let path = presence_path(&agent, "setStatusMessage");
    let body = json!({"statusMessage": {
        "message": {"content": "On a customer call", "contentType": "text"},
        "expiryDateTime": {"dateTime": "2025-01-02T00:00:00", "timeZone": "UTC"}
    }});
    let response = post(&mut world, &token, &path, &body, t0 + secs(90));
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty());
    assert_eq!(
        world.shows(&agent, t0).unwrap().status_message.as_deref(),
        Some("On a customer call")
    );
    let presence = get(
        &mut world,
        &token,
        &format!("/v1.0/users/{agent}/presence"),
        t0,
    )
    .json();
    assert_eq!(
        presence["statusMessage"],
        json!({
            "message": {"content": "On a customer call", "contentType": "text"},
            "publishedDateTime": "2025-01-01T00:01:30.000Z",
            "expiryDateTime": {"dateTime": "2025-01-02T00:00:00", "timeZone": "UTC"}
        })
    );

    let html =
        json!({"statusMessage": {"message": {"content": "<b>x</b>", "contentType": "html"}}});
    let response = post(&mut world, &token, &path, &html, t0);
    assert_eq!(
        (response.status, graph_error(&response).1.as_str()),
        (400, "InvalidArgument")
    );
    assert_eq!(post(&mut world, &token, &path, &json!({}), t0).status, 400);

    let clear = json!({"statusMessage": {"message": {"content": "", "contentType": "text"}}});
    assert_eq!(post(&mut world, &token, &path, &clear, t0).status, 200);
    assert_eq!(world.shows(&agent, t0).unwrap().status_message, None);
    let presence = get(
        &mut world,
        &token,
        &format!("/v1.0/users/{agent}/presence"),
        t0,
    )
    .json();
    assert_eq!(presence["statusMessage"], Value::Null);
}

// ---------------------------------------------------------------------- reads

#[test]
fn presence_is_read_one_by_one_or_in_batches() {
    let (mut world, t0) = world(config());
    let token = token(&mut world, t0);
    let (a, b) = (user(1), user(2));
    set_presence(&mut world, &token, &a, "Busy", "InACall", None, t0);

    let response = get(&mut world, &token, &format!("/v1.0/users/{a}/presence"), t0);
    assert_eq!(response.status, 200);
    let presence = response.json();
    assert_eq!(presence["id"], a.as_str());
    assert_eq!(presence["availability"], "Busy");
    assert_eq!(presence["activity"], "InACall");
    assert_eq!(presence["statusMessage"], Value::Null);
    assert!(presence["sequenceNumber"].is_string());
    let by_communications = get(
        &mut world,
        &token,
        &format!("/v1.0/communications/presences/{a}"),
        t0,
    );
    assert_eq!(by_communications.json(), presence);
    let by_upn = get(
        &mut world,
        &token,
        "/v1.0/users/agent1@contoso.com/presence",
        t0,
    );
    assert_eq!(by_upn.json(), presence);
    let unknown = get(
        &mut world,
        &token,
        "/v1.0/communications/presences/nobody",
        t0,
    );
    assert_eq!(unknown.status, 404);

    let batch = "/v1.0/communications/getPresencesByUserId";
    let response = post(
        &mut world,
        &token,
        batch,
        &json!({"ids": [b, "not-a-user", a]}),
        t0,
    );
    assert_eq!(response.status, 200);
    let value = response.json()["value"].clone();
    assert_eq!(value.as_array().map(Vec::len), Some(3));
    assert_eq!(value[0]["id"], b.as_str());
    assert_eq!(value[0]["availability"], "Offline");
    assert_eq!(value[0]["activity"], "Offline");
    assert_eq!(value[1]["id"], "not-a-user");
    assert_eq!(value[1]["availability"], "PresenceUnknown");
    assert_eq!(value[1]["activity"], "PresenceUnknown");
    assert_eq!(value[2], presence);

    let ids: Vec<String> = (0..650).map(|i| format!("id-{i}")).collect();
    assert_eq!(
        post(&mut world, &token, batch, &json!({ "ids": ids }), t0).status,
        200
    );
    let ids: Vec<String> = (0..651).map(|i| format!("id-{i}")).collect();
    let response = post(&mut world, &token, batch, &json!({ "ids": ids }), t0);
    assert_eq!(
        (response.status, graph_error(&response).1.as_str()),
        (400, "BadRequest")
    );
    let response = world.handle(
        &HttpRequest::post(batch).with_bearer(&token).with_body("{"),
        t0,
    );
    assert_eq!(graph_error(&response).1, "BadRequest");
    let response = post(&mut world, &token, batch, &json!({"ids": [1, 2]}), t0);
    assert_eq!(response.status, 400);
}

#[test]
fn unknown_routes_and_methods() {
    let (mut world, t0) = world(config());
    let token = token(&mut world, t0);
    let response = get(&mut world, &token, "/v1.0/groups", t0);
    assert_eq!(
        graph_error(&response),
        (
            400,
            "BadRequest".to_owned(),
            "Resource not found for the segment 'groups'.".to_owned()
        )
    );
    let response = get(&mut world, &token, "/v1.0/me/presence", t0);
    assert_eq!(graph_error(&response).0, 400);
    assert!(graph_error(&response).2.contains("delegated"));
    let response = get(
        &mut world,
        &token,
        &presence_path(&user(1), "setPresence"),
        t0,
    );
    assert_eq!(response.status, 405);
    let response = post(
        &mut world,
        &token,
        &presence_path(&user(1), "setMood"),
        &json!({}),
        t0,
    );
    assert_eq!(response.status, 400);
    let response = world.handle(&HttpRequest::get("/"), t0);
    assert_eq!(response.status, 404);
    let response = world.handle(&HttpRequest::get("/beta/users"), t0);
    assert_eq!(response.status, 404);
    // The OData-qualified action name works too.
    let response = post(
        &mut world,
        &token,
        &presence_path(&user(1), "microsoft.graph.setPresence"),
        &json!({"sessionId": ID, "availability": "Away", "activity": "Away"}),
        t0,
    );
    assert_eq!(response.status, 200);
}

// ---------------------------------------------------------------------- aggregation

#[test]
fn aggregation_follows_the_precedence() {
    let (mut world, t0) = world(config().with_app(AppRegistration::new(
        "22222222-2222-4222-8222-222222222222",
        "second",
    )));
    let first = token(&mut world, t0);
    let second = token_for(
        &mut world,
        "22222222-2222-4222-8222-222222222222",
        "second",
        t0,
    );
    let agent = user(1);
    let set_second = |world: &mut GraphWorld, availability: &str, activity: &str| {
        let body = json!({"sessionId": "22222222-2222-4222-8222-222222222222",
            "availability": availability, "activity": activity, "expirationDuration": "PT4H"});
        let response = post(
            world,
            &second,
            &presence_path(&agent, "setPresence"),
            &body,
            t0,
        );
        assert_eq!(response.status, 200);
    };

    world
        .set_client_presence(&agent, Availability::Available, "Available", t0)
        .unwrap();
    assert_eq!(
        shows(&mut world, &agent, t0),
        pair(Availability::Available, "Available")
    );
    set_presence(
        &mut world,
        &first,
        &agent,
        "Busy",
        "InACall",
        Some("PT4H"),
        t0,
    );
    assert_eq!(
        shows(&mut world, &agent, t0),
        pair(Availability::Busy, "InACall")
    );
    set_second(&mut world, "DoNotDisturb", "Presenting");
    assert_eq!(
        shows(&mut world, &agent, t0),
        pair(Availability::DoNotDisturb, "Presenting")
    );
    set_second(&mut world, "Away", "Away");
    assert_eq!(
        shows(&mut world, &agent, t0),
        pair(Availability::Busy, "InACall")
    );
    // Among equals, the latest set wins.
    set_second(&mut world, "Busy", "InAConferenceCall");
    assert_eq!(
        shows(&mut world, &agent, t0),
        pair(Availability::Busy, "InAConferenceCall")
    );
    assert_eq!(world.shows(&agent, t0).unwrap().sessions.len(), 3);

    // The Teams client's own states rank too: BusyIdle below Busy, above Available.
    let (mut world, t0) = self::world(config());
    let token = token(&mut world, t0);
    set_presence(
        &mut world,
        &token,
        &agent,
        "Available",
        "Available",
        Some("PT4H"),
        t0,
    );
    world
        .set_client_presence(&agent, Availability::BusyIdle, "BusyIdle", t0)
        .unwrap();
    assert_eq!(
        shows(&mut world, &agent, t0),
        pair(Availability::BusyIdle, "BusyIdle")
    );
    world
        .set_client_presence(&agent, Availability::AvailableIdle, "Inactive", t0)
        .unwrap();
    assert_eq!(
        shows(&mut world, &agent, t0),
        pair(Availability::Available, "Available")
    );
    set_presence(&mut world, &token, &agent, "Away", "Away", Some("PT4H"), t0);
    world
        .set_client_presence(&agent, Availability::BeRightBack, "BeRightBack", t0)
        .unwrap();
    assert_eq!(
        shows(&mut world, &agent, t0),
        pair(Availability::BeRightBack, "BeRightBack")
    );
    world.clear_client_presence(&agent, t0).unwrap();
    assert_eq!(
        shows(&mut world, &agent, t0),
        pair(Availability::Away, "Away")
    );

    let mut ranked = Availability::ALL;
    ranked.sort_by_key(|a| std::cmp::Reverse(a.precedence()));
    assert_eq!(
        ranked,
        [
            Availability::DoNotDisturb,
            Availability::Busy,
            Availability::BusyIdle,
            Availability::Available,
            Availability::AvailableIdle,
            Availability::BeRightBack,
            Availability::Away,
            Availability::Offline,
            Availability::PresenceUnknown,
        ]
    );
    assert!(
        world
            .set_client_presence(&agent, Availability::Busy, "", t0)
            .is_err()
    );
    assert!(
        world
            .set_client_presence(&agent, Availability::Busy, "In a call", t0)
            .is_err()
    );
    assert!(
        world
            .set_client_presence("ghost", Availability::Busy, "Busy", t0)
            .is_err()
    );
}

#[test]
fn available_decays_to_inactive_then_away() {
    let (mut world, t0) = world(config());
    let token = token(&mut world, t0);
    let agent = user(1);
    set_presence(
        &mut world,
        &token,
        &agent,
        "Available",
        "Available",
        Some("PT1H"),
        t0,
    );
    assert_eq!(
        shows(&mut world, &agent, t0 + secs(299)),
        pair(Availability::Available, "Available")
    );
    assert_eq!(
        shows(&mut world, &agent, t0 + secs(300)),
        pair(Availability::Available, "AvailableInactive")
    );
    assert_eq!(
        shows(&mut world, &agent, t0 + secs(599)).1,
        "AvailableInactive"
    );
    assert_eq!(
        shows(&mut world, &agent, t0 + secs(600)),
        pair(Availability::Away, "Away")
    );
    // Setting it again restarts the timers.
    set_presence(
        &mut world,
        &token,
        &agent,
        "Available",
        "Available",
        Some("PT1H"),
        t0 + secs(700),
    );
    assert_eq!(
        shows(&mut world, &agent, t0 + secs(700)),
        pair(Availability::Available, "Available")
    );
    assert_eq!(
        shows(&mut world, &agent, t0 + secs(1000)).1,
        "AvailableInactive"
    );
    // Other pairs do not decay; the client session neither.
    set_presence(
        &mut world,
        &token,
        &agent,
        "Busy",
        "InACall",
        Some("PT1H"),
        t0,
    );
    assert_eq!(
        shows(&mut world, &agent, t0 + secs(3599)),
        pair(Availability::Busy, "InACall")
    );
    let other = user(2);
    world
        .set_client_presence(&other, Availability::Available, "Available", t0)
        .unwrap();
    assert_eq!(
        shows(&mut world, &other, t0 + secs(86_400)),
        pair(Availability::Available, "Available")
    );

    // The first stage is configurable.
    let (mut world, t0) = self::world(SimConfig {
        available_timeout: secs(60),
        ..config()
    });
    let token = self::token(&mut world, t0);
    set_presence(
        &mut world,
        &token,
        &agent,
        "Available",
        "Available",
        Some("PT1H"),
        t0,
    );
    assert_eq!(
        shows(&mut world, &agent, t0 + secs(60)).1,
        "AvailableInactive"
    );
    assert_eq!(
        shows(&mut world, &agent, t0 + secs(600)).0,
        Availability::Away
    );
}

#[test]
fn the_sequence_number_grows_with_every_visible_change() {
    let (mut world, t0) = world(config());
    let token = token(&mut world, t0);
    let agent = user(1);
    let read = |world: &mut GraphWorld, now: Instant| -> String {
        get(world, &token, &format!("/v1.0/users/{agent}/presence"), now).json()["sequenceNumber"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let s0 = read(&mut world, t0);
    assert_eq!(read(&mut world, t0), s0, "nothing changed");
    set_presence(
        &mut world,
        &token,
        &agent,
        "Available",
        "Available",
        Some("PT1H"),
        t0,
    );
    let s1 = read(&mut world, t0);
    assert!(s1 > s0);
    set_presence(
        &mut world,
        &token,
        &agent,
        "Available",
        "Available",
        Some("PT1H"),
        t0,
    );
    assert_eq!(read(&mut world, t0), s1, "the same state again");
    let s2 = read(&mut world, t0 + secs(300)); // decayed to AvailableInactive
    assert!(s2 > s1);
    let body = json!({"statusMessage": {"message": {"content": "Back soon"}}});
    post(
        &mut world,
        &token,
        &presence_path(&agent, "setStatusMessage"),
        &body,
        t0 + secs(300),
    );
    let s3 = read(&mut world, t0 + secs(300));
    assert!(s3 > s2);
    world
        .set_client_presence(&agent, Availability::Busy, "InACall", t0 + secs(300))
        .unwrap();
    let s4 = world.shows(&agent, t0 + secs(300)).unwrap().sequence_number;
    assert!(s4 > s3);
    let s5 = world
        .shows(&agent, t0 + secs(3500))
        .unwrap()
        .sequence_number; // the app session decayed to Away: still Busy
    assert_eq!(s5, s4);
    // Every value has the same length, so text order is number order.
    assert!(
        [&s0, &s1, &s2, &s3, &s4]
            .iter()
            .all(|s| s.len() == s0.len())
    );
}

// ---------------------------------------------------------------------- throttling

#[test]
fn the_budget_refuses_with_retry_after_and_the_window_slides() {
    let (mut world, t0) = world(SimConfig {
        budget: Budget {
            requests: 3,
            window: secs(30),
        },
        ..config()
    });
    let token = token(&mut world, t0);
    let agent = user(1);
    let presence = format!("/v1.0/users/{agent}/presence");
    assert_eq!(get(&mut world, &token, &presence, t0).status, 200);
    assert_eq!(
        get(&mut world, &token, &presence, t0 + secs(10)).status,
        200
    );
    assert_eq!(
        set_presence(
            &mut world,
            &token,
            &agent,
            "Busy",
            "InACall",
            None,
            t0 + secs(20)
        )
        .status,
        200
    );
    // Full: the oldest leaves at t0 + 30 s.
    let refused = set_presence(
        &mut world,
        &token,
        &agent,
        "Away",
        "Away",
        None,
        t0 + Duration::from_millis(25_500),
    );
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), Some("5"));
    assert_eq!(
        graph_error(&refused),
        (
            429,
            "TooManyRequests".to_owned(),
            "Too many requests".to_owned()
        )
    );
    // Not applied, and not counted.
    assert_eq!(
        shows(&mut world, &agent, t0 + secs(26)),
        pair(Availability::Busy, "InACall")
    );
    // Users calls and token calls do not count and are not refused.
    assert_eq!(
        get(
            &mut world,
            &token,
            &format!("/v1.0/users/{agent}"),
            t0 + secs(26)
        )
        .status,
        200
    );
    token_for(&mut world, ID, SECRET, t0 + secs(26));
    let refused = get(
        &mut world,
        &token,
        &presence,
        t0 + Duration::from_millis(29_999),
    );
    assert_eq!(refused.header("retry-after"), Some("1"));
    // One left the window at t0 + 30 s.
    assert_eq!(
        get(&mut world, &token, &presence, t0 + secs(30)).status,
        200
    );
    let refused = get(&mut world, &token, &presence, t0 + secs(30));
    assert_eq!(refused.header("retry-after"), Some("10"));
    assert_eq!(
        get(&mut world, &token, &presence, t0 + secs(60)).status,
        200
    );
    assert_eq!(world.stats().refused_budget.get(ID), Some(&3));
    assert!(matches!(
        std::iter::from_fn(|| world.poll_event()).find(|e| matches!(e, SimEvent::Throttled { .. })),
        Some(SimEvent::Throttled { retry_after: 5, .. })
    ));
    let statuses: Vec<u16> = world.writes().iter().map(|w| w.status).collect();
    assert_eq!(statuses, [200, 429]);
}

#[test]
fn each_app_has_its_own_budget() {
    let other = "33333333-3333-4333-8333-333333333333";
    let (mut world, t0) = world(SimConfig {
        budget: Budget {
            requests: 1,
            window: secs(30),
        },
        ..config().with_app(AppRegistration::new(other, "other"))
    });
    let first = token(&mut world, t0);
    let second = token_for(&mut world, other, "other", t0);
    let path = format!("/v1.0/users/{}/presence", user(1));
    assert_eq!(get(&mut world, &first, &path, t0).status, 200);
    assert_eq!(get(&mut world, &first, &path, t0).status, 429);
    assert_eq!(get(&mut world, &second, &path, t0).status, 200);
    assert_eq!(get(&mut world, &second, &path, t0).status, 429);
    let stats = world.stats();
    assert_eq!(stats.refused_budget.get(ID), Some(&1));
    assert_eq!(stats.refused_budget.get(other), Some(&1));
}

// ---------------------------------------------------------------------- permissions

#[test]
fn permissions_are_enforced() {
    let reader = "44444444-4444-4444-8444-444444444444";
    let directory = "55555555-5555-4555-8555-555555555555";
    let (mut world, t0) = world(
        config()
            .with_app(
                AppRegistration::new(reader, "r").with_permissions([Permission::PresenceReadAll]),
            )
            .with_app(
                AppRegistration::new(directory, "d").with_permissions([Permission::UserReadAll]),
            ),
    );
    let agent = user(1);
    let reader_token = token_for(&mut world, reader, "r", t0);
    let directory_token = token_for(&mut world, directory, "d", t0);
    let presence = format!("/v1.0/users/{agent}/presence");
    let forbidden = (
        403,
        "Forbidden".to_owned(),
        "Insufficient privileges to complete the operation.".to_owned(),
    );

    assert_eq!(get(&mut world, &reader_token, &presence, t0).status, 200);
    let body = json!({"sessionId": reader, "availability": "Busy", "activity": "InACall"});
    let response = post(
        &mut world,
        &reader_token,
        &presence_path(&agent, "setPresence"),
        &body,
        t0,
    );
    assert_eq!(graph_error(&response), forbidden);
    let response = get(
        &mut world,
        &reader_token,
        &format!("/v1.0/users/{agent}"),
        t0,
    );
    assert_eq!(graph_error(&response), forbidden);

    assert_eq!(
        get(
            &mut world,
            &directory_token,
            &format!("/v1.0/users/{agent}"),
            t0
        )
        .status,
        200
    );
    assert_eq!(
        graph_error(&get(&mut world, &directory_token, &presence, t0)),
        forbidden
    );
    let batch = json!({"ids": [agent]});
    let response = post(
        &mut world,
        &directory_token,
        "/v1.0/communications/getPresencesByUserId",
        &batch,
        t0,
    );
    assert_eq!(response.status, 403);
    assert_eq!(world.stats().refused_permission, 4);

    // Permissions can change at run time.
    world
        .set_permissions(reader, [Permission::PresenceReadWriteAll])
        .unwrap();
    let response = post(
        &mut world,
        &reader_token,
        &presence_path(&agent, "setPresence"),
        &body,
        t0,
    );
    assert_eq!(response.status, 200);
}

// ---------------------------------------------------------------------- faults

#[test]
fn fail_next_answers_graph_calls_only() {
    let (mut world, t0) = world(config());
    let token = token(&mut world, t0);
    let agent = user(1);
    world.fail_next(2, 503, Some(7)).unwrap();
    // Token calls are not affected.
    token_for(&mut world, ID, SECRET, t0);
    let response = set_presence(&mut world, &token, &agent, "Busy", "InACall", None, t0);
    assert_eq!(graph_error(&response).0, 503);
    assert_eq!(graph_error(&response).1, "ServiceUnavailable");
    assert_eq!(response.header("retry-after"), Some("7"));
    assert_eq!(
        shows(&mut world, &agent, t0).0,
        Availability::Offline,
        "not applied"
    );
    // Before authentication, too.
    let response = world.handle(&HttpRequest::get(format!("/v1.0/users/{agent}")), t0);
    assert_eq!(response.status, 503);
    assert_eq!(
        set_presence(&mut world, &token, &agent, "Busy", "InACall", None, t0).status,
        200
    );

    world.fail_next(1, 500, None).unwrap();
    let response = get(
        &mut world,
        &token,
        &format!("/v1.0/users/{agent}/presence"),
        t0,
    );
    assert_eq!(graph_error(&response).1, "InternalServerError");
    assert_eq!(response.header("retry-after"), None);
    assert_eq!(world.stats().faults_applied, 3);
    assert!(world.fail_next(1, 200, None).is_err());
    assert!(world.fail_next(1, 600, None).is_err());
}

#[test]
fn fail_for_and_throttle_for_last_their_time() {
    let (mut world, t0) = world(config());
    let token = token(&mut world, t0);
    let path = format!("/v1.0/users/{}/presence", user(1));
    world.fail_for(secs(10), 502, t0).unwrap();
    assert_eq!(get(&mut world, &token, &path, t0 + secs(9)).status, 502);
    assert_eq!(get(&mut world, &token, &path, t0 + secs(10)).status, 200);

    world.throttle_for(secs(10), 4, t0 + secs(10));
    let response = get(&mut world, &token, &path, t0 + secs(11));
    assert_eq!(graph_error(&response).1, "TooManyRequests");
    assert_eq!(response.header("retry-after"), Some("4"));
    // Every call of every app, users calls too, but only with a valid token.
    assert_eq!(
        get(
            &mut world,
            &token,
            &format!("/v1.0/users/{}", user(1)),
            t0 + secs(11)
        )
        .status,
        429
    );
    assert_eq!(
        world.handle(&HttpRequest::get(&path), t0 + secs(11)).status,
        401
    );
    assert_eq!(get(&mut world, &token, &path, t0 + secs(20)).status, 200);

    world.throttle_for(secs(10), 4, t0 + secs(20));
    world.fail_for(secs(10), 503, t0 + secs(20)).unwrap();
    world.clear_faults();
    assert_eq!(get(&mut world, &token, &path, t0 + secs(21)).status, 200);
    assert!(world.fail_for(secs(1), 302, t0).is_err());
}

// ---------------------------------------------------------------------- records, determinism

#[test]
fn every_write_is_recorded_with_its_outcome() {
    let (mut world, t0) = world(config());
    let token = token(&mut world, t0);
    let agent = user(1);
    set_presence(
        &mut world,
        &token,
        &agent,
        "Busy",
        "InACall",
        None,
        t0 + secs(1),
    );
    set_presence(
        &mut world,
        &token,
        &agent,
        "Busy",
        "Busy",
        None,
        t0 + secs(2),
    );
    world.handle(
        &HttpRequest::post(presence_path(&agent, "clearPresence"))
            .with_json(&json!({"sessionId": ID})),
        t0 + secs(3),
    );
    let body = json!({"statusMessage": {"message": {"content": "Lunch"}}});
    post(
        &mut world,
        &token,
        &presence_path(&agent, "setStatusMessage"),
        &body,
        t0 + secs(4),
    );
    post(
        &mut world,
        &token,
        &presence_path(&agent, "setUserPreferredPresence"),
        &json!({"availability": "Away", "activity": "Away"}),
        t0 + secs(5),
    );
    post(
        &mut world,
        &token,
        &presence_path(&agent, "clearUserPreferredPresence"),
        &json!({}),
        t0 + secs(6),
    );
    get(
        &mut world,
        &token,
        &format!("/v1.0/users/{agent}/presence"),
        t0 + secs(7),
    );

    let writes = world.writes();
    type Summary<'a> = (
        u64,
        Option<&'a str>,
        WriteKind,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        u16,
    );
    let summary: Vec<Summary<'_>> = writes
        .iter()
        .map(|w| {
            (
                w.at.as_secs(),
                w.app.as_deref(),
                w.kind,
                w.availability.as_deref(),
                w.activity.as_deref(),
                w.message.as_deref(),
                w.status,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                1,
                Some(ID),
                WriteKind::SetPresence,
                Some("Busy"),
                Some("InACall"),
                None,
                200
            ),
            (
                2,
                Some(ID),
                WriteKind::SetPresence,
                Some("Busy"),
                Some("Busy"),
                None,
                400
            ),
            (3, None, WriteKind::ClearPresence, None, None, None, 401),
            (
                4,
                Some(ID),
                WriteKind::SetStatusMessage,
                None,
                None,
                Some("Lunch"),
                200
            ),
            (
                5,
                Some(ID),
                WriteKind::SetPreferred,
                Some("Away"),
                Some("Away"),
                None,
                200
            ),
            (
                6,
                Some(ID),
                WriteKind::ClearPreferred,
                None,
                None,
                None,
                200
            ),
        ]
    );
    assert!(writes.iter().all(|w| w.user_id == agent));
    let stats = world.stats();
    assert_eq!(stats.requests.get(&RequestKind::SetPresence), Some(&2));
    assert_eq!(stats.requests.get(&RequestKind::GetPresence), Some(&1));
    assert_eq!(stats.requests.get(&RequestKind::Token), Some(&1));
    assert_eq!(stats.accepted, 5);
    assert_eq!(stats.refused_auth, 1);
    assert_eq!(stats.refused_invalid, 1);
    let accepted = std::iter::from_fn(|| world.poll_event())
        .filter(|e| matches!(e, SimEvent::WriteAccepted { .. }))
        .count();
    assert_eq!(accepted, 4);
}

#[test]
fn the_write_log_and_the_event_queue_are_bounded() {
    let (mut world, t0) = world(SimConfig {
        max_write_records: 2,
        max_events: 3,
        ..config()
    });
    let token = token(&mut world, t0);
    for activity in ["InACall", "InAConferenceCall", "InACall"] {
        set_presence(&mut world, &token, &user(1), "Busy", activity, None, t0);
    }
    let writes = world.writes();
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[0].activity.as_deref(), Some("InAConferenceCall"));
    assert_eq!(std::iter::from_fn(|| world.poll_event()).count(), 3);
}

#[test]
fn a_run_is_a_function_of_its_inputs() {
    let run = || {
        let t0 = Instant::now();
        let mut world = GraphWorld::new(
            SimConfig {
                wall_clock_start: Some(UNIX_EPOCH + secs(1_750_000_000)),
                seed: 42,
                ..config()
            },
            t0,
        )
        .unwrap();
        let mut answers = Vec::new();
        let token = token(&mut world, t0);
        answers.push(token.clone());
        let agent = user(1);
        for (i, (availability, activity)) in
            [("Busy", "InACall"), ("Busy", "Busy"), ("Away", "Away")]
                .into_iter()
                .enumerate()
        {
            let now = t0 + secs(i as u64);
            let response = set_presence(
                &mut world,
                &token,
                &agent,
                availability,
                activity,
                None,
                now,
            );
            answers.push(format!("{response:?}"));
            let response = get(
                &mut world,
                &token,
                &format!("/v1.0/users/{agent}/presence"),
                now,
            );
            answers.push(format!("{response:?}"));
        }
        answers.push(format!(
            "{:?}",
            world.handle(&token_request(&credentials(ID, "x")), t0)
        ));
        answers
    };
    assert_eq!(run(), run());
}

#[test]
fn configurations_are_checked() {
    let now = Instant::now();
    let bad = [
        SimConfig {
            tenant: String::new(),
            ..config()
        },
        SimConfig {
            budget: Budget {
                requests: 0,
                window: secs(1),
            },
            ..config()
        },
        SimConfig {
            budget: Budget {
                requests: 1,
                window: Duration::ZERO,
            },
            ..config()
        },
        SimConfig {
            token_lifetime: Duration::from_millis(10),
            ..config()
        },
        config().with_app(AppRegistration::new(ID.to_uppercase(), "x")),
        config().with_user("AGENT1@contoso.com"),
    ];
    for config in bad {
        assert!(GraphWorld::new(config, now).is_err());
    }
    let world = GraphWorld::new(config(), now).unwrap();
    assert_eq!(world.user_count(), 3);
    assert_eq!(
        world.users().next().map(|(_, upn)| upn),
        Some("agent1@contoso.com")
    );
    assert_eq!(world.client_ids().collect::<Vec<_>>(), [ID]);
    let _ = SystemTime::now; // the core never reads it; the server does
}

// ---------------------------------------------------------------------- never panics

#[test]
fn huge_durations_do_not_overflow() {
    let (mut world, t0) = world(config());
    let token = token(&mut world, t0);
    world.throttle_for(Duration::MAX, 1, t0);
    world.clear_faults();
    world
        .fail_for(Duration::from_secs(u64::MAX / 2), 503, t0)
        .unwrap();
    world.clear_faults();
    let body =
        json!({"availability": "Away", "activity": "Away", "expirationDuration": "P999999999999W"});
    let path = presence_path(&user(1), "setUserPreferredPresence");
    assert_eq!(post(&mut world, &token, &path, &body, t0).status, 200);
    assert_eq!(shows(&mut world, &user(1), t0).0, Availability::Away);
}

fn arbitrary_request() -> impl Strategy<Value = HttpRequest> {
    let method = prop_oneof![
        Just("GET".to_owned()),
        Just("POST".to_owned()),
        Just("PUT".to_owned()),
        "[A-Z]{0,8}",
    ];
    let path = prop_oneof![
        any::<String>(),
        "/v1\\.0/(users|communications|me)(/[a-zA-Z0-9%@.]{0,40}){0,4}(\\?.{0,20})?",
        Just(format!("/v1.0/users/{}/presence/setPresence", user(1))),
        Just(format!("/v1.0/users/{}/presence/setStatusMessage", user(1))),
        Just(format!(
            "/v1.0/users/{}/presence/setUserPreferredPresence",
            user(1)
        )),
        Just("/v1.0/communications/getPresencesByUserId".to_owned()),
        Just(TOKEN_PATH.to_owned()),
        "/[^/]{0,20}/oauth2/v2\\.0/token",
    ];
    let headers = proptest::collection::vec((any::<String>(), any::<String>()), 0..4);
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        any::<String>().prop_map(String::into_bytes),
        "\\{\"(sessionId|availability|activity|expirationDuration|ids|statusMessage)\":.{0,40}\\}"
            .prop_map(String::into_bytes),
        "(grant_type|client_id|client_secret|scope)=[^&]{0,30}(&(grant_type|client_id|client_secret|scope)=[^&]{0,30}){0,4}"
            .prop_map(String::into_bytes),
    ];
    (method, path, headers, body, any::<bool>()).prop_map(
        |(method, path_and_query, headers, body, auth)| {
            let mut request = HttpRequest {
                method,
                path_and_query,
                headers,
                body,
            };
            if auth {
                request
                    .headers
                    .push(("Authorization".to_owned(), "Bearer TOKEN".to_owned()));
            }
            request
        },
    )
}

proptest! {
    #[test]
    fn handle_never_panics(requests in proptest::collection::vec(arbitrary_request(), 1..8), step in 0u64..400) {
        let (mut world, t0) = world(SimConfig {
            budget: Budget { requests: 4, window: secs(30) },
            ..config()
        });
        let token = token(&mut world, t0);
        for (i, mut request) in requests.into_iter().enumerate() {
            for (name, value) in &mut request.headers {
                if name == "Authorization" && value == "Bearer TOKEN" {
                    *value = format!("Bearer {token}");
                }
            }
            let now = t0 + secs(step * i as u64);
            let response = world.handle(&request, now);
            prop_assert!((200..600).contains(&response.status));
            for (name, value) in &response.headers {
                prop_assert!(name.bytes().chain(value.bytes()).all(|b| (0x20..0x7f).contains(&b)));
            }
            let _ = world.shows(&user(1), now);
        }
    }
}

#[test]
fn a_user_can_set_their_own_status_message() {
    let (mut w, t0) = world(config());
    let id = user(1);
    w.set_user_status_message(&id, "Back at 3", t0).unwrap();
    let shown = w.shows(&id, t0).unwrap();
    assert_eq!(shown.status_message.as_deref(), Some("Back at 3"));
    let before = shown.sequence_number;
    w.set_user_status_message(&id, "", t0).unwrap();
    let shown = w.shows(&id, t0).unwrap();
    assert_eq!(shown.status_message, None);
    assert!(
        shown.sequence_number > before,
        "a change grows the sequence number"
    );
    assert!(w.set_user_status_message("nobody@x", "x", t0).is_err());
}
