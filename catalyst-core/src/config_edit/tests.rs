//! Whole-module tests: for each parser, fixtures modelled on the real eggs' files.

use super::{EditError, MAX_INPUT_BYTES, Parser, Replacement, Value, apply};

fn set(path: &str, v: &str) -> Replacement {
    Replacement { path: path.into(), value: Value::Always(v.into()) }
}

fn if_value(path: &str, pairs: &[(&str, &str)]) -> Replacement {
    Replacement {
        path: path.into(),
        value: Value::IfValue(pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()),
    }
}

fn ok(parser: Parser, current: Option<&str>, edits: &[Replacement]) -> String {
    match apply(parser, current, edits) {
        Ok(s) => s,
        Err(e) => panic!("{parser:?} failed: {e}"),
    }
}

fn fails(parser: Parser, current: Option<&str>, edits: &[Replacement]) -> EditError {
    match apply(parser, current, edits) {
        Ok(s) => panic!("{parser:?} should fail, got {s:?}"),
        Err(e) => {
            assert!(e.message.starts_with(&format!("{}: ", parser.name())), "{e}");
            e
        }
    }
}

// ---------------------------------------------------------------- file

const RUST_CFG: &str = "server.hostname \"My Server\"\nserver.description \"old\"\r\nserver.worldsize 3000\nserver.seed 1\n# server.seed is random\n";

#[test]
fn file_replaces_prefixed_lines_rust_server_cfg() {
    let edits = [
        set("server.hostname ", "server.hostname \"Catalyst\""),
        set("server.description ", "server.description \"A \\\"quoted\\\" one\""),
        set("server.worldsize ", "server.worldsize 4500"),
        set("server.levelurl ", "server.levelurl \"x\""),
    ];
    assert_eq!(
        ok(Parser::File, Some(RUST_CFG), &edits),
        "server.hostname \"Catalyst\"\nserver.description \"A \\\"quoted\\\" one\"\r\nserver.worldsize 4500\nserver.seed 1\n# server.seed is random\n"
    );
}

#[test]
fn file_dayz_prefix_without_space_and_missing_file() {
    let cfg = "hostname = \"old\";\nmaxPlayers = 60;\nsteamQueryPort = 2305;";
    let edits = [set("hostname =", "hostname = \"New\";"), set("maxPlayers", "maxPlayers = 10;")];
    assert_eq!(ok(Parser::File, Some(cfg), &edits), "hostname = \"New\";\nmaxPlayers = 10;\nsteamQueryPort = 2305;");
    assert_eq!(ok(Parser::File, None, &edits), "");
}

#[test]
fn file_if_value_plain_and_regex() {
    let cfg = "RConPort 2306\nRConPassword changeme\n";
    let edits = [
        if_value("RConPassword", &[("RConPassword secret", "no"), ("RConPassword changeme", "RConPassword s3cret")]),
        if_value("RConPort", &[("regex:\\d+$", "2310")]),
    ];
    assert_eq!(ok(Parser::File, Some(cfg), &edits), "RConPort 2310\nRConPassword s3cret\n");
    fails(Parser::File, Some(cfg), &[if_value("RConPort", &[("regex:(", "x")])]);
}

// ---------------------------------------------------------------- properties

const SERVER_PROPERTIES: &str = "#Minecraft server properties\n#Fri Jan 01 00:00:00 UTC 2026\nenable-query=false\nmotd=A Minecraft Server\nquery.port=25565\n# the address\nserver-ip=10.0.0.5\nserver-port=25565\n";

#[test]
fn properties_paper_egg_edits_in_place() {
    let edits = [set("server-ip", ""), set("server-port", "25570"), set("query.port", "25570")];
    assert_eq!(
        ok(Parser::Properties, Some(SERVER_PROPERTIES), &edits),
        "#Minecraft server properties\n#Fri Jan 01 00:00:00 UTC 2026\nenable-query=false\nmotd=A Minecraft Server\nquery.port=25570\n# the address\nserver-ip=\nserver-port=25570\n"
    );
}

#[test]
fn properties_missing_keys_escaping_and_separators() {
    let text = "a : 1\nb 2\nmotd=\\u00A7aHi \\\n    there\nlast=x";
    let edits = [
        set("a", "9"),
        set("b", "C:\\dir"),
        set("motd", "§bWelcome ☃"),
        set("new key", " lead"),
        set("level-name", "world"),
    ];
    assert_eq!(
        ok(Parser::Properties, Some(text), &edits),
        "a : 9\nb C:\\\\dir\nmotd=\\u00A7bWelcome \\u2603\nlast=x\nnew\\ key=\\ lead\nlevel-name=world\n"
    );
}

#[test]
fn properties_create_missing_file_and_if_value() {
    assert_eq!(
        ok(Parser::Properties, None, &[set("server-port", "25565"), if_value("motd", &[("x", "y")])]),
        "server-port=25565\n"
    );
    let text = "motd=\\u00A7aHello\ndifficulty=easy\n";
    let edits = [
        if_value("motd", &[("§aHello", "Hi ✓")]),
        if_value("difficulty", &[("regex:^(e|n)", "hard"), ("easy", "peaceful")]),
    ];
    assert_eq!(ok(Parser::Properties, Some(text), &edits), "motd=Hi \\u2713\ndifficulty=hardasy\n");
}

// ---------------------------------------------------------------- yaml

const WATERFALL: &str = "\
player_limit: -1
servers:
  lobby:
    motd: '&1Just another Waterfall - Forced Host'
    address: localhost:25565
    restricted: false
  game:
    address: 127.0.0.1
    restricted: false
  remote:
    address: 10.1.2.3:25565
listeners:
- query_port: 25577
  host: 0.0.0.0:25577
  max_players: 1
online_mode: true
";

#[test]
fn yaml_waterfall_egg() {
    let edits = [
        set("listeners[0].host", "0.0.0.0:25600"),
        if_value("servers.*.address", &[("127.0.0.1", "172.18.0.1"), ("localhost", "172.18.0.1")]),
        if_value("servers.*.address", &[("regex:^localhost(:\\d+)$", "172.18.0.1$1")]),
        set("listeners[0].query_port", "25600"),
        set("player_limit", "100"),
    ];
    assert_eq!(
        ok(Parser::Yaml, Some(WATERFALL), &edits),
        "\
player_limit: 100
servers:
  lobby:
    motd: '&1Just another Waterfall - Forced Host'
    address: 172.18.0.1:25565
    restricted: false
  game:
    address: 172.18.0.1
    restricted: false
  remote:
    address: 10.1.2.3:25565
listeners:
- query_port: 25600
  host: 0.0.0.0:25600
  max_players: 1
online_mode: true
"
    );
}

#[test]
fn yaml_creates_missing_paths_and_files() {
    let edits = [set("a.b.c", "x"), set("list[0].name", "one"), set("list[1]", "true"), set("flag", "false")];
    let expected = "a:\n  b:\n    c: x\nlist:\n- name: one\n- 'true'\nflag: 'false'\n";
    assert_eq!(ok(Parser::Yaml, None, &edits), expected);
    assert_eq!(ok(Parser::Yaml, Some("\n"), &edits), expected);
    assert_eq!(ok(Parser::Yaml, Some("flag: true\n"), &[set("flag", "false")]), "flag: false\n");
    // A wildcard under a missing parent creates nothing.
    assert_eq!(ok(Parser::Yaml, Some("x: 1\n"), &[set("servers.*.address", "a")]), "x: 1\n");
}

#[test]
fn yaml_errors() {
    let e = fails(Parser::Yaml, Some("a: [1, 2\n"), &[]);
    assert!(e.message.contains("malformed YAML"), "{e}");
    fails(Parser::Yaml, Some("a: 1\n---\nb: 2\n"), &[]);
    fails(Parser::Yaml, Some("a: 1\n"), &[set("a.b", "x")]);
    fails(Parser::Yaml, Some("l: [1]\n"), &[set("l[3]", "x")]);
}

#[test]
fn yaml_alias_bomb_is_refused_quickly() {
    let mut bomb = String::from("a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!("a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"));
    }
    let started = std::time::Instant::now();
    let e = fails(Parser::Yaml, Some(&bomb), &[set("x", "1")]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(e.message.contains("limit"), "{e}");
    // Few aliases but a huge scalar: under serde_norway's own repetition limit, caught by the budget.
    let mut wide = format!("big: &big \"{}\"\ncopies:\n", "x".repeat(100_000));
    for _ in 0..1000 {
        wide.push_str("- *big\n");
    }
    let e = fails(Parser::Yaml, Some(&wide), &[]);
    assert!(e.message.contains("size limit"), "{e}");
    // A few honest aliases are fine.
    let out = ok(Parser::Yaml, Some("base: &b {port: 1}\nother: *b\n"), &[set("other.port", "2")]);
    assert_eq!(out, "base:\n  port: 1\nother:\n  port: 2\n");
}

// ---------------------------------------------------------------- json

const TSHOCK: &str = r#"{
  "ServerPort": 7777,
  "MaxSlots": 8,
  "ServerName": "",
  "Nested": {"Ratio": 0.5, "Enabled": false},
  "Admins": [{"name": "a"}, {"name": "b"}]
}"#;

#[test]
fn json_tshock_egg_with_nested_and_index() {
    let edits = [
        set("ServerPort", "7780"),
        set("MaxSlots", "16"),
        set("ServerName", "007"),
        set("Nested.Ratio", "0.75"),
        set("Nested.Enabled", "true"),
        set("Admins[1].name", "root"),
        set("Admins.*.active", "true"),
        set("Extra.Deep.Key", "-5"),
    ];
    assert_eq!(
        ok(Parser::Json, Some(TSHOCK), &edits),
        r#"{
    "ServerPort": 7780,
    "MaxSlots": 16,
    "ServerName": "007",
    "Nested": {
        "Ratio": 0.75,
        "Enabled": true
    },
    "Admins": [
        {
            "name": "a",
            "active": "true"
        },
        {
            "name": "root",
            "active": "true"
        }
    ],
    "Extra": {
        "Deep": {
            "Key": -5
        }
    }
}
"#
    );
}

#[test]
fn json_missing_file_array_append_and_if_value() {
    assert_eq!(
        ok(Parser::Json, None, &[set("ServerPort", "7777"), set("Paths[0]", "a"), set("Paths[1]", "b")]),
        "{\n    \"ServerPort\": 7777,\n    \"Paths\": [\n        \"a\",\n        \"b\"\n    ]\n}\n"
    );
    let text = r#"{"hosts": ["127.0.0.1:25565", "localhost", "1.2.3.4"], "port": 1}"#;
    let edits = [
        if_value("hosts.*", &[("localhost", "10.0.0.1"), ("regex:^127\\.0\\.0\\.1", "10.0.0.1")]),
        if_value("port", &[("1", "2")]),
        if_value("missing", &[("", "x")]),
    ];
    assert_eq!(
        ok(Parser::Json, Some(text), &edits),
        "{\n    \"hosts\": [\n        \"10.0.0.1:25565\",\n        \"10.0.0.1\",\n        \"1.2.3.4\"\n    ],\n    \"port\": 2\n}\n"
    );
}

#[test]
fn json_errors() {
    let e = fails(Parser::Json, Some("{\"a\": }"), &[]);
    assert!(e.message.contains("malformed JSON"), "{e}");
    fails(Parser::Json, Some("{\"a\": [1]}"), &[set("a[2]", "x")]);
    fails(Parser::Json, Some("{\"a\": \"s\"}"), &[set("a.b", "x")]);
    fails(Parser::Json, Some("{}"), &[set("a..b", "x")]);
    let deep = "[".repeat(100_000);
    fails(Parser::Json, Some(&deep), &[]);
}

// ---------------------------------------------------------------- ini

const CLUSTER_INI: &str = "[GAMEPLAY]\ngame_mode = survival\nmax_players = 6\n\n[NETWORK]\n; the name\ncluster_name = old\n\n[MISC]\nconsole_enabled = true\n";

#[test]
fn ini_dont_starve_cluster() {
    let edits = [
        set("GAMEPLAY.max_players", "10"),
        set("NETWORK.cluster_name", "Catalyst DST"),
        set("NETWORK.cluster_description", "hi"),
        set("SHARD.shard_enabled", "true"),
        set("SHARD.master_port", "11001"),
    ];
    assert_eq!(
        ok(Parser::Ini, Some(CLUSTER_INI), &edits),
        "[GAMEPLAY]\ngame_mode = survival\nmax_players = 10\n\n[NETWORK]\n; the name\ncluster_name = Catalyst DST\ncluster_description = hi\n\n[MISC]\nconsole_enabled = true\n\n[SHARD]\nshard_enabled = true\nmaster_port = 11001\n"
    );
}

#[test]
fn ini_unreal_bracketed_sections_crlf() {
    let text = "[/Script/Dominion.DedicatedServerSettings]\r\nOwnerId=old\r\nServerName=x\r\n\r\n[Other]\r\nA=1\r\n";
    let edits = [
        set("[/Script/Dominion.DedicatedServerSettings].OwnerId", "12345"),
        set("[/Script/Dominion.DedicatedServerSettings].Password", "pw"),
        set("[/Script/Engine.GameSession].MaxPlayers", "8"),
        set("global", "1"),
    ];
    assert_eq!(
        ok(Parser::Ini, Some(text), &edits),
        "global=1\r\n[/Script/Dominion.DedicatedServerSettings]\r\nOwnerId=12345\r\nServerName=x\r\nPassword=pw\r\n\r\n[Other]\r\nA=1\r\n\r\n[/Script/Engine.GameSession]\r\nMaxPlayers=8\r\n"
    );
}

#[test]
fn ini_missing_file_if_value_and_errors() {
    assert_eq!(
        ok(Parser::Ini, None, &[set("port", "1"), set("NETWORK.server_port", "10999"), set("SHARD.is_master", "true")]),
        "port = 1\n\n[NETWORK]\nserver_port = 10999\n\n[SHARD]\nis_master = true\n"
    );
    let text = "[SHARD]\nbind_ip = 0.0.0.0\nname = Caves";
    let edits = [
        if_value("SHARD.bind_ip", &[("0.0.0.0", "127.0.0.1")]),
        if_value("SHARD.name", &[("regex:^C", "c")]),
        if_value("SHARD.missing", &[("", "x")]),
        set("SHARD.is_master", "false"),
    ];
    assert_eq!(ok(Parser::Ini, Some(text), &edits), "[SHARD]\nbind_ip = 127.0.0.1\nname = caves\nis_master = false");
    fails(Parser::Ini, Some(text), &[set("[SHARD.x", "1")]);
    fails(Parser::Ini, Some(text), &[set("SHARD.", "1")]);
}

// ---------------------------------------------------------------- xml

const SE_CFG: &str = "<?xml version=\"1.0\"?>\r\n<MyConfigDedicated xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\r\n  <!-- keep me -->\r\n  <SessionSettings>\r\n    <GameMode>Survival</GameMode>\r\n    <MaxPlayers>4</MaxPlayers>\r\n  </SessionSettings>\r\n  <LoadWorld />\r\n  <ServerPort>27016</ServerPort>\r\n  <ServerName>A &amp; B</ServerName>\r\n</MyConfigDedicated>\r\n";

#[test]
fn xml_space_engineers_config() {
    let edits = [
        set("MyConfigDedicated.SessionSettings.GameMode", "Creative"),
        set("MyConfigDedicated.SessionSettings.MaxPlayers", "16"),
        set("MyConfigDedicated.LoadWorld", "Z:\\home\\container\\config\\Saves\\W & <X>\\Sandbox.sbc"),
        set("MyConfigDedicated.ServerPort", "[value='27020']"),
        set("MyConfigDedicated.SessionSettings.EnableSaving", "true"),
        set("MyConfigDedicated.RemoteApi.Port", "8080"),
    ];
    assert_eq!(
        ok(Parser::Xml, Some(SE_CFG), &edits),
        "<?xml version=\"1.0\"?>\r\n<MyConfigDedicated xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\r\n  <!-- keep me -->\r\n  <SessionSettings>\r\n    <GameMode>Creative</GameMode>\r\n    <MaxPlayers>16</MaxPlayers>\r\n    <EnableSaving>true</EnableSaving>\r\n  </SessionSettings>\r\n  <LoadWorld>Z:\\home\\container\\config\\Saves\\W &amp; &lt;X&gt;\\Sandbox.sbc</LoadWorld>\r\n  <ServerPort value=\"27020\">27016</ServerPort>\r\n  <ServerName>A &amp; B</ServerName>\r\n  <RemoteApi>\r\n    <Port>8080</Port>\r\n  </RemoteApi>\r\n</MyConfigDedicated>\r\n"
    );
}

#[test]
fn xml_attributes_wildcards_and_if_value() {
    let text =
        "<Root>\n  <Mod id=\"1\" enabled='no'/>\n  <Mod id=\"2\" enabled=\"no\"></Mod>\n  <Name>old</Name>\n</Root>\n";
    let edits = [
        set("Root.*", "[enabled='yes']"),
        if_value("Root.Name", &[("new", "x"), ("old", "fresh")]),
        if_value("Root.Mod", &[("", "[checked='1']")]),
        if_value("Root.Name", &[("regex:^fr", "F")]),
    ];
    assert_eq!(
        ok(Parser::Xml, Some(text), &edits),
        "<Root>\n  <Mod id=\"1\" enabled='yes' checked=\"1\"/>\n  <Mod id=\"2\" enabled=\"yes\" checked=\"1\"></Mod>\n  <Name enabled=\"yes\">Fesh</Name>\n</Root>\n"
    );
}

#[test]
fn xml_missing_file_and_errors() {
    assert_eq!(
        ok(Parser::Xml, None, &[set("Config.Server.Port", "1"), set("Config.Name", "[v='a']")]),
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Config>\n  <Server>\n    <Port>1</Port>\n  </Server>\n  <Name v=\"a\"></Name>\n</Config>\n"
    );
    let e = fails(Parser::Xml, Some("<a><b></a>"), &[]);
    assert!(e.message.contains("malformed XML"), "{e}");
    fails(Parser::Xml, Some("<a><b>1</b></a>"), &[set("x.b", "2")]);
    fails(Parser::Xml, Some("<a><b>1</b></a>"), &[set("a", "text over children")]);
    fails(Parser::Xml, Some("<a></a>"), &[set("a..b", "1")]);
}

// ---------------------------------------------------------------- limits and names

#[test]
fn oversized_input_is_refused_by_every_parser() {
    let big = "a".repeat(MAX_INPUT_BYTES + 1);
    for parser in [Parser::File, Parser::Properties, Parser::Yaml, Parser::Json, Parser::Ini, Parser::Xml] {
        let e = fails(parser, Some(&big), &[]);
        assert!(e.message.contains("limit"), "{e}");
    }
}

#[test]
fn egg_parser_names() {
    assert_eq!(Parser::from_egg_name("yml"), Some(Parser::Yaml));
    assert_eq!(Parser::from_egg_name("YAML"), Some(Parser::Yaml));
    assert_eq!(Parser::from_egg_name("properties"), Some(Parser::Properties));
    assert_eq!(Parser::from_egg_name("toml"), None);
    assert_eq!(EditError { message: "x".into() }.to_string(), "x");
}
