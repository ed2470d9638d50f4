//! Every parser reads a body written with unusual prefixes exactly as the same body with
//! default namespaces: names are matched by namespace URI, never by prefix.

use presence_mspres::{BatchSubscribe, Categories, Fault, Publish, Rlmi, parse_notification};

const RP: &str = "http://schemas.microsoft.com/2006/09/sip/rich-presence";
const ST: &str = "http://schemas.microsoft.com/2006/09/sip/state";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
const BS: &str = "http://schemas.microsoft.com/2006/01/sip/batch-subscribe";
const CL: &str = "http://schemas.microsoft.com/2006/09/sip/categorylist";
const CA: &str = "http://schemas.microsoft.com/2006/09/sip/categories";
const RL: &str = "urn:ietf:params:xml:ns:rlmi";

#[test]
fn publish_prefixes() {
    let plain = format!(
        r#"<publish xmlns="{RP}"><publications uri="sip:a@x"><publication categoryName="state" instance="536870912" container="2" version="1" expireType="static"><state xmlns="{ST}" xmlns:xsi="{XSI}" manual="true" xsi:type="userState"><availability>7001</availability><activity token="t"><custom LCID="1033">busy</custom></activity></state></publication></publications></publish>"#
    );
    let odd = format!(
        r#"<p:publish xmlns:p="{RP}"><p:publications uri="sip:a@x"><p:publication categoryName="state" instance="536870912" container="2" version="1" expireType="static"><st:state xmlns:st="{ST}" xmlns:instance="{XSI}" manual="true" instance:type="st:userState"><st:availability>7001</st:availability><st:activity token="t"><st:custom LCID="1033">busy</st:custom></st:activity></st:state></p:publication></p:publications></p:publish>"#
    );
    // The default namespace changes on the way down; a prefix is rebound to another URI
    // inside; `xsi` is bound to something that is not XML Schema instance.
    let mixed = format!(
        r#"<x:publish xmlns:x="{RP}" xmlns="urn:unrelated" xmlns:xsi="urn:not-xsi"><publications xmlns="{RP}" uri="sip:a@x"><x:publication categoryName="state" instance="536870912" container="2" version="1" expireType="static"><x:state xmlns:x="{ST}" xmlns:i="{XSI}" xsi:type="ignored" i:type="userState" manual="true"><availability xmlns="{ST}">7001</availability><x:activity token="t"><custom xmlns="{ST}" LCID="1033">busy</custom></x:activity></x:state></x:publication></publications></x:publish>"#
    );
    let expected = Publish::parse(plain.as_bytes()).expect("plain");
    assert_eq!(Publish::parse(odd.as_bytes()).expect("odd"), expected);
    assert_eq!(Publish::parse(mixed.as_bytes()).expect("mixed"), expected);
    assert_eq!(
        expected.publications[0]
            .state
            .as_ref()
            .map(|s| s.state_type.as_str()),
        Some("userState")
    );
    // The same local names in another namespace are not the publication.
    let wrong = plain.replace(
        &format!("<state xmlns=\"{ST}\""),
        "<state xmlns=\"urn:other\"",
    );
    assert_eq!(
        Publish::parse(wrong.as_bytes())
            .expect("tolerated")
            .publications[0]
            .state,
        None
    );
}

#[test]
fn fault_prefixes() {
    let plain = r#"<Fault><Faultcode>Client.BadCall.WrongDelta</Faultcode><details><operation index="1" version="0" curVersion="4"/></details></Fault>"#;
    let odd = r#"<ms:Fault xmlns:ms="urn:example:any-fault-namespace"><ms:Faultcode>Client.BadCall.WrongDelta</ms:Faultcode><d:details xmlns:d="urn:d"><operation index="1" version="0" curVersion="4"/></d:details></ms:Fault>"#;
    let default = r#"<Fault xmlns="urn:whatever"><Faultcode>Client.BadCall.WrongDelta</Faultcode><details><operation index="1" version="0" curVersion="4"/></details></Fault>"#;
    let expected = Fault::parse(plain.as_bytes()).expect("plain");
    assert_eq!(Fault::parse(odd.as_bytes()).expect("odd"), expected);
    assert_eq!(Fault::parse(default.as_bytes()).expect("default"), expected);
}

#[test]
fn batch_subscribe_prefixes() {
    let plain = format!(
        r#"<batchSub xmlns="{BS}" uri="sip:b@x" name=""><action name="subscribe" id="1"><adhocList><resource uri="sip:a@x"/></adhocList><categoryList xmlns="{CL}"><category name="state"/></categoryList></action></batchSub>"#
    );
    let odd = format!(
        r#"<b:batchSub xmlns:b="{BS}" xmlns:c="{CL}" uri="sip:b@x" name=""><b:action name="subscribe" id="1"><b:adhocList><b:resource uri="sip:a@x"/></b:adhocList><c:categoryList><c:category name="state"/></c:categoryList></b:action></b:batchSub>"#
    );
    let swapped = format!(
        r#"<c:batchSub xmlns:c="{BS}" xmlns:b="{CL}" uri="sip:b@x"><c:action name="subscribe" id="1"><adhocList xmlns="{BS}"><resource uri="sip:a@x"/></adhocList><b:categoryList><b:category name="state"/></b:categoryList></c:action></c:batchSub>"#
    );
    let expected = BatchSubscribe::parse(plain.as_bytes()).expect("plain");
    assert_eq!(
        BatchSubscribe::parse(odd.as_bytes()).expect("odd"),
        expected
    );
    assert_eq!(
        BatchSubscribe::parse(swapped.as_bytes()).expect("swapped"),
        expected
    );
    assert_eq!(expected.categories, ["state"]);
}

#[test]
fn categories_prefixes() {
    let plain = format!(
        r#"<categories xmlns="{CA}" uri="sip:a@x"><category name="state" instance="0" publishTime="t"><state xmlns="{ST}" xmlns:xsi="{XSI}" xsi:type="aggregateState" lastActive="l"><availability>6500</availability><activity token="on-the-phone"><custom LCID="1033">In a call</custom></activity></state></category></categories>"#
    );
    let odd = format!(
        r#"<cat:categories xmlns:cat="{CA}" uri="sip:a@x"><cat:category name="state" instance="0" publishTime="t"><ns:state xmlns:ns="{ST}" xmlns:q="{XSI}" q:type="ns:aggregateState" lastActive="l"><ns:availability>6500</ns:availability><ns:activity token="on-the-phone"><ns:custom LCID="1033">In a call</ns:custom></ns:activity></ns:state></cat:category></cat:categories>"#
    );
    let expected = Categories::parse(plain.as_bytes()).expect("plain");
    assert_eq!(Categories::parse(odd.as_bytes()).expect("odd"), expected);
    assert_eq!(expected.availability(), Some(6500));
    let notification = parse_notification("application/msrtc-event-categories+xml", odd.as_bytes())
        .expect("as a notification");
    assert_eq!(notification.categories, [expected]);
}

#[test]
fn rlmi_prefixes() {
    let plain = format!(
        r#"<list xmlns="{RL}" uri="sip:b@x" version="2" fullState="true"><resource uri="sip:a@x"><instance id="1" state="terminated" reason="rejected"/></resource></list>"#
    );
    let odd = format!(
        r#"<r:list xmlns:r="{RL}" uri="sip:b@x" version="2" fullState="true"><r:resource uri="sip:a@x"><r:name>A</r:name><r:instance id="1" state="terminated" reason="rejected"/></r:resource></r:list>"#
    );
    let expected = Rlmi::parse(plain.as_bytes()).expect("plain");
    assert_eq!(Rlmi::parse(odd.as_bytes()).expect("odd"), expected);
    assert_eq!(expected.terminated().collect::<Vec<_>>(), ["sip:a@x"]);
}
