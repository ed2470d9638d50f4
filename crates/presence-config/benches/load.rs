//! Loading and checking a configuration with 100,000 Extension DNs.
//! `cargo xtask bench load` (target: <= 1 s).

use std::fmt::Write;
use std::path::Path;

use divan::{Bencher, black_box};
use presence_config::{LoadOptions, NoSections, Source, load};

fn main() {
    divan::main();
}

const SEED_MAP: &[u8] = include_bytes!("../../../examples/agent-states.xml");

/// The examples' two profiles and `n` Extension DNs, a quarter of them with a DN-level
/// override.
fn generate(n: usize) -> String {
    let mut text = String::from(
        r#"[options.TServer]
presence-profile = "PullProfile"

[dn.PushProfile]
type = "VoIPService"
[dn.PushProfile.annex.TServer]
service-type = "presence-profile"
map-presence-to-dnd = "false"
agent-presence-map = "agent-states.xml"
aggregated-states = "1=IDLE_OUT, 2=IDLE_READY, 3=IDLE_NOTREADY, 4=IDLE_ACW, 5=IDLE_AWAY, 6=INCALL, 7= INCALL, 8=INCALL, 9=INCALL,10=INCALL,11=OOS, 12=OOS, 13=OOS, 14=OOS, 15=OOS."

[dn.PullProfile]
type = "VoIPService"
annex.TServer = { service-type = "presence-profile", map-presence-to-dnd = "true", presence-availability-range = "3000-5999" }
"#,
    );
    for i in 0..n {
        let dn = 100_000 + i;
        write!(
            text,
            "\n[dn.\"{dn}\"]\ntype = \"Extension\"\nuri = \"sip:user{dn}@contoso.com\"\n"
        )
        .unwrap();
        if i % 4 == 0 {
            text.push_str("annex.TServer = { presence-profile = \"PushProfile\" }\n");
        }
    }
    text
}

#[divan::bench(args = [1_000, 100_000], sample_count = 5, sample_size = 1)]
fn load_and_check(bencher: Bencher<'_, '_>, dns: usize) {
    let text = generate(dns);
    bencher
        .counter(divan::counter::BytesCount::new(text.len()))
        .bench_local(|| {
            let source = Source {
                path: Path::new("bench/bridge.toml"),
                text: black_box(&text),
            };
            let loaded = load::<NoSections>(&source, &LoadOptions::default(), &mut |_| {
                Ok(SEED_MAP.to_vec())
            })
            .expect("the generated configuration is valid");
            assert_eq!(loaded.config.extensions().len(), dns);
            loaded
        });
}
