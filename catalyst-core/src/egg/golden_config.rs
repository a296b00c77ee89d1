//! Each fixture egg's config edits, rendered for a sample server and applied to a sample of the
//! file it edits: the expected text is written out in full.

use std::collections::BTreeMap;

use super::import;
use super::tests::EGGS;
use crate::config_edit::{apply, plan};
use crate::render::{ConfigFacts, config_context, render_edit, with_node_interface};

/// Apply `file`'s edits from egg `egg` to `sample` (None: the file does not exist yet).
fn edited(egg: &str, file: &str, sample: Option<&str>) -> String {
    let (_, bytes) = EGGS.iter().find(|(f, _)| *f == egg).expect("fixture");
    let t = import(bytes).expect("imports");
    let edit = t.config_files.iter().find(|f| f.path == file).unwrap_or_else(|| panic!("{egg}: no {file}"));
    let mut env: BTreeMap<String, String> =
        t.variables.iter().map(|v| (v.name.clone(), v.default.clone().unwrap_or_default())).collect();
    env.insert("SERVER_MEMORY".into(), "2048".into());
    env.insert("SERVER_PORT".into(), "27015".into());
    let facts =
        ConfigFacts { port: "27015".into(), ip: "10.0.0.5".into(), memory_mb: "2048".into(), ..Default::default() };
    let rendered = render_edit(edit, &config_context(&facts, &env)).expect("renders");
    let on_node = with_node_interface(&rendered, "172.18.0.1");
    apply(edit.format, sample, &plan(&on_node)).expect("applies")
}

#[test]
fn paper_properties() {
    let got = edited(
        "pterodactyl-egg-paper.json",
        "server.properties",
        Some("#Minecraft server properties\nserver-ip=1.2.3.4\nserver-port=25565\nmotd=hi\n"),
    );
    assert_eq!(got, "#Minecraft server properties\nserver-ip=\nserver-port=27015\nmotd=hi\nquery.port=27015\n");
}

#[test]
fn vanilla_properties_created() {
    let got = edited("egg-vanilla-minecraft.yaml", "server.properties", None);
    assert_eq!(got, "query.port=27015\nserver-ip=\nserver-port=27015\n");
}

#[test]
fn waterfall_yaml() {
    // `if_value` compares the whole current value, as Wings does.
    let sample = "listeners:\n- host: 0.0.0.0:25577\n  motd: hi\nservers:\n  lobby:\n    address: localhost\n  other:\n    address: 10.1.1.1:25565\n";
    let got = edited("egg-pterodactyl-waterfall.json", "config.yml", Some(sample));
    assert_eq!(
        got,
        "listeners:\n- host: 0.0.0.0:27015\n  motd: hi\nservers:\n  lobby:\n    address: 172.18.0.1\n  other:\n    address: 10.1.1.1:25565\n"
    );
}

#[test]
fn tshock_json() {
    let got = edited(
        "egg-terraria-server--t-shock.json",
        "tshock/config.json",
        Some("{\n  \"ServerPort\": 7777,\n  \"MaxSlots\": 8,\n  \"Name\": \"x\"\n}\n"),
    );
    assert_eq!(got, "{\n    \"ServerPort\": 27015,\n    \"MaxSlots\": 20,\n    \"Name\": \"x\"\n}\n");
}

#[test]
fn dst_ini() {
    let sample = "[GAMEPLAY]\ngame_mode = survival\nmax_players = 6\n\n[NETWORK]\ncluster_name = old\n";
    let got = edited(
        "egg-pterodactyl-don-t-starve-together.json",
        "DoNotStarveTogether/config/server/cluster.ini",
        Some(sample),
    );
    assert_eq!(
        got,
        "[GAMEPLAY]\ngame_mode = survival\nmax_players = 16\n\n[NETWORK]\ncluster_name = A Panel hosted Server\n\
         cluster_description = A Pterodactyl Hosted Server\n\n[SHARD]\nbind_ip = 127.0.0.1\nmaster_ip = 127.0.0.1\n\
         master_port = 11001\nshard_enabled = true\n"
    );
}

#[test]
fn space_engineers_xml() {
    let sample = "<?xml version=\"1.0\"?>\n<MyConfigDedicated>\n  <SessionSettings>\n    <GameMode>Creative</GameMode>\n  </SessionSettings>\n</MyConfigDedicated>\n";
    let got = edited("egg-pterodactyl-space-engineers.json", "config/SpaceEngineers-Dedicated.cfg", Some(sample));
    assert_eq!(
        got,
        "<?xml version=\"1.0\"?>\n<MyConfigDedicated>\n  <SessionSettings>\n    <GameMode>Survival</GameMode>\n\
         \x20   <AutoSaveInMinutes>5</AutoSaveInMinutes>\n    <EnableIngameScripts>false</EnableIngameScripts>\n\
         \x20   <EnableSaving>true</EnableSaving>\n    <ExperimentalMode>false</ExperimentalMode>\n\
         \x20   <MaxPlayers>4</MaxPlayers>\n  </SessionSettings>\n\
         \x20 <LoadWorld>Z:\\home\\container\\config\\Saves\\World\\Sandbox.sbc</LoadWorld>\n\
         \x20 <RemoteApiEnabled>false</RemoteApiEnabled>\n  <RemoteApiPort>8081</RemoteApiPort>\n\
         \x20 <ServerDescription>A Pterodactyl hosted Space Engineer Server</ServerDescription>\n\
         \x20 <ServerName>A Pterodactyl hosted Space Engineer Server</ServerName>\n  <ServerPort>27015</ServerPort>\n\
         \x20 <SteamPort>8766</SteamPort>\n  <WorldName>World</WorldName>\n</MyConfigDedicated>\n"
    );
}

#[test]
fn rust_file() {
    let got = edited(
        "egg-pterodactyl-rust.json",
        "server/rust/cfg/server.cfg",
        Some("server.hostname \"old\"\nserver.description \"d\"\nother 1\n"),
    );
    assert_eq!(got, "server.hostname \"A Rust Server\"\nserver.description \"Powered by Panel\"\nother 1\n");
}

#[test]
fn dayz_file() {
    let got = edited(
        "egg-pterodactyl-day-z.json",
        "serverDZ.cfg",
        Some("hostname = \"old\";\npassword = \"x\";\nmaxPlayers = 60;\n"),
    );
    assert_eq!(got, "hostname = \"DayZ Server\";\npassword = \"\";\nmaxPlayers = 64;\n");
}
