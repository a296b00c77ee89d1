//! Golden tests over ten real eggs (`tests/eggs/`, copied unmodified from public repositories).

use super::*;
use crate::id::TemplateId;
use crate::model::{
    ConfigFormat, ConfigValue, DonePattern, NewTemplate, StartupMode, StopAction, Template, TemplateVariable,
};
use crate::render::{BUILTIN_VARIABLES, check_value, validate_template};
use crate::rules::Rules;

macro_rules! egg {
    ($file:literal) => {
        ($file, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/eggs/", $file)).as_slice())
    };
}

pub(super) const EGGS: &[(&str, &[u8])] = &[
    egg!("egg-pterodactyl-day-z.json"),
    egg!("egg-pterodactyl-don-t-starve-together.json"),
    egg!("egg-pterodactyl-rust.json"),
    egg!("egg-pterodactyl-space-engineers.json"),
    egg!("egg-pterodactyl-waterfall.json"),
    egg!("egg-terraria-server--t-shock.json"),
    egg!("egg-valheim.json"),
    egg!("egg-vanilla-minecraft.yaml"),
    egg!("pterodactyl-egg-nodejs-generic.json"),
    egg!("pterodactyl-egg-paper.json"),
];

fn load(file: &str) -> NewTemplate {
    let (_, bytes) = EGGS.iter().find(|(f, _)| *f == file).expect("fixture");
    import(bytes).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn template(t: NewTemplate) -> Template {
    t.into_template(TemplateId::new(), chrono::Utc::now(), 0)
}

fn var<'a>(t: &'a NewTemplate, name: &str) -> &'a TemplateVariable {
    t.variables.iter().find(|v| v.name == name).unwrap_or_else(|| panic!("{}: no variable {name}", t.name))
}

#[test]
fn every_egg_imports_validates_and_its_defaults_pass_their_rules() {
    for (file, bytes) in EGGS {
        let t = import(bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(t.startup_mode, StartupMode::Entrypoint, "{file}");
        validate_template(&template(t.clone()), BUILTIN_VARIABLES).unwrap_or_else(|e| panic!("{file}: {e}"));
        for v in &t.variables {
            let rules = Rules::parse(&v.rules.0).unwrap_or_else(|e| panic!("{file} {}: {e}", v.name));
            let default = v.default.as_deref().unwrap_or_default();
            // A required variable without a default is one a billing module must fill in.
            if !(default.is_empty() && rules.required()) {
                check_value(v, default).unwrap_or_else(|e| panic!("{file} {}: default {default:?}: {e}", v.name));
            }
        }
    }
}

#[test]
fn export_then_import_gives_the_same_template() {
    for (file, bytes) in EGGS {
        let first = import(bytes).expect("import");
        for format in [EggFormat::PtdlV2, EggFormat::PlcnV3] {
            let text = export(&template(first.clone()), format, chrono::Utc::now()).expect("export");
            let mut again = import(text.as_bytes()).unwrap_or_else(|e| panic!("{file} {format:?}: {e}\n{text}"));
            let mut want = first.clone();
            // What a format cannot carry: PTDL has no tags or icon; the version is the new one's.
            let (a, w) = (again.egg.as_mut().expect("origin"), want.egg.as_mut().expect("origin"));
            a.format = w.format.clone();
            if format == EggFormat::PtdlV2 {
                a.tags = w.tags.clone();
                a.icon = w.icon.clone();
            }
            assert_eq!(again, want, "{file} via {format:?}");
        }
    }
}

#[test]
fn paper_is_as_the_file_says() {
    let t = load("pterodactyl-egg-paper.json");
    assert_eq!(t.name, "Paper");
    assert_eq!(t.images.len(), 5);
    assert_eq!((t.images[0].name.as_str(), t.image.as_str()), ("Java 21", "ghcr.io/pelican-eggs/yolks:java_21"));
    assert_eq!(t.images[4].image, "ghcr.io/pelican-eggs/yolks:java_8");
    assert!(t.startup.starts_with("java -Xms128M -XX:MaxRAMPercentage=95.0"), "{}", t.startup);
    assert_eq!(t.stop, StopAction::Command("stop".into()));
    assert_eq!(t.done_patterns, [DonePattern::Substring(")! For help, type ".into())]);
    assert_eq!(t.features, ["eula", "java_version", "pid_limit"]);
    assert!(t.file_denylist.is_empty());
    let install = t.install.as_ref().expect("install");
    assert_eq!(
        (install.image.as_str(), install.entrypoint.as_str()),
        ("ghcr.io/pelican-eggs/installers:alpine", "ash")
    );
    assert!(install.script.starts_with("#!/bin/ash\n# Paper Installation Script"));
    assert_eq!(var(&t, "SERVER_JARFILE").rules.0, ["required", r"regex:/^([\w\d._-]+)(\.jar)$/"]);
    assert_eq!(var(&t, "SERVER_JARFILE").default.as_deref(), Some("server.jar"));
    let edit = &t.config_files[0];
    assert_eq!((edit.path.as_str(), edit.format), ("server.properties", ConfigFormat::Properties));
    assert_eq!(edit.set["server-port"], ConfigValue::Always("{{server.build.default.port}}".into()));
    assert_eq!(edit.set["server-ip"], ConfigValue::Always(String::new()));
}

#[test]
fn vanilla_plcn_v3_yaml_is_as_the_file_says() {
    let t = load("egg-vanilla-minecraft.yaml");
    let origin = t.egg.as_ref().expect("origin");
    assert_eq!(origin.format, "PLCN_v3");
    assert_eq!(origin.uuid, "9ac39f3d-0c34-4d93-8174-c52ab9e6c57b");
    assert!(
        origin.icon.as_deref().is_some_and(|i| i.starts_with("data:image/png;base64,")),
        "the icon is not an image"
    );
    assert!(!t.images.iter().any(|i| i.image.starts_with("data:")));
    assert!(t.startup_commands.is_empty(), "a single Default command is the startup");
    assert!(t.startup.starts_with("java"), "{}", t.startup);
    assert!(t.variables.iter().all(|v| !v.rules.0.is_empty()), "list rules");
    assert_eq!(t.config_files[0].set["server-port"], ConfigValue::Always("{{server.allocations.default.port}}".into()));
    assert!(t.file_denylist.is_empty(), "`{{}}` is an empty list");
}

#[test]
fn waterfall_has_wildcards_if_value_and_the_node_interface() {
    let t = load("egg-pterodactyl-waterfall.json");
    let edit = &t.config_files[0];
    assert_eq!((edit.path.as_str(), edit.format), ("config.yml", ConfigFormat::Yaml));
    assert_eq!(edit.set["listeners[0].host"], ConfigValue::Always("0.0.0.0:{{server.build.default.port}}".into()));
    let ConfigValue::IfValue(map) = &edit.set["servers.*.address"] else { panic!("if_value expected") };
    assert_eq!(map.get("127.0.0.1").map(String::as_str), Some("{{config.docker.interface}}"));
    assert_eq!(map.len(), 2);
    assert_eq!(t.stop, StopAction::Command("end".into()));
    assert_eq!(t.images.len(), 4);
}

#[test]
fn the_ptdl_v1_egg_converts() {
    let t = load("egg-terraria-server--t-shock.json");
    assert_eq!(t.egg.as_ref().map(|o| o.format.as_str()), Some("PTDL_v1"));
    assert_eq!(t.image, "quay.io/pterodactyl/core:mono");
    assert_eq!(t.images.len(), 1);
    assert_eq!(t.startup, "", "PTDL_v1 seeds had a null startup");
    assert_eq!(t.stop, StopAction::Command("exit".into()));
    assert_eq!(t.done_patterns, [DonePattern::Substring("Type 'help' for a list of commands".into())]);
    assert_eq!((t.config_files[0].path.as_str(), t.config_files[0].format), ("tshock/config.json", ConfigFormat::Json));
    assert_eq!(var(&t, "T_VERSION").rules.0, ["required", r"regex:/^([0-9_\.-]{5,10})$/"]);
    assert!(var(&t, "T_VERSION").user_viewable && var(&t, "T_VERSION").user_editable, "0/1 flags");
    let again = load("egg-terraria-server--t-shock.json");
    assert_eq!(t.egg, again.egg, "a PTDL egg's derived uuid is stable, so a re-import updates");
}

#[test]
fn signals_and_stops_map_as_their_authors_mean() {
    assert_eq!(load("egg-valheim.json").stop, StopAction::Signal("SIGINT".into()));
    assert_eq!(load("egg-pterodactyl-space-engineers.json").stop, StopAction::Signal("SIGINT".into()));
    assert_eq!(load("egg-pterodactyl-don-t-starve-together.json").stop, StopAction::Command("c_shutdown()".into()));
    for (egg, want) in [
        ("^C", "SIGINT"),
        ("^^C", "SIGINT"),
        ("^c", "SIGINT"),
        ("^SIGINT", "SIGINT"),
        ("^SIGTERM", "SIGTERM"),
        ("^SIGKILL", "SIGKILL"),
        ("^SIGABRT", "SIGABRT"),
        ("^X", "SIGKILL"),
    ] {
        assert_eq!(stop_from_egg(egg), StopAction::Signal(want.into()), "{egg}");
    }
}

#[test]
fn bash_startups_crlf_scripts_and_lists_survive() {
    let valheim = load("egg-valheim.json");
    assert!(valheim.startup.contains("> >(sed -uE \"{{CONSOLE_FILTER}}\")"));
    assert!(valheim.install.as_ref().is_some_and(|i| i.script.contains("\r\n")), "kept as written; the node converts");
    assert_eq!(var(&valheim, "PUBLIC_SERVER").default.as_deref(), Some("1"));
    let node = load("pterodactyl-egg-nodejs-generic.json");
    assert_eq!(node.done_patterns.len(), 2);
    assert_eq!(node.stop, StopAction::Signal("SIGINT".into()));
    let dayz = load("egg-pterodactyl-day-z.json");
    assert!(dayz.startup.contains("{{CLIENT_MODS}}"), "an undeclared placeholder expands to nothing in the entrypoint");
    assert_eq!(dayz.config_files.len(), 2);
    assert!(dayz.config_files.iter().all(|f| f.format == ConfigFormat::File));
    let se = load("egg-pterodactyl-space-engineers.json");
    assert_eq!(se.config_files.len(), 3);
    assert!(se.config_files.iter().all(|f| f.format == ConfigFormat::Xml));
    let dst = load("egg-pterodactyl-don-t-starve-together.json");
    assert!(dst.config_files.iter().all(|f| f.format == ConfigFormat::Ini));
    assert_eq!(dst.config_files.len(), 3);
    let rust = load("egg-pterodactyl-rust.json");
    assert_eq!(rust.variables.len(), 19);
    assert_eq!(rust.config_files[0].format, ConfigFormat::File);
}

#[test]
fn bad_eggs_are_refused_by_name() {
    let (_, paper) = EGGS.iter().find(|(f, _)| f.contains("paper")).expect("paper");
    let paper = std::str::from_utf8(paper).expect("utf8");
    let cases: Vec<(String, &str)> = vec![
        (paper[..paper.len() / 2].to_string(), "JSON"),
        (paper.replace("PTDL_v2", "PTDL_v9"), "meta.version"),
        ("{\"name\": \"x\"}".into(), "meta.version"),
        (paper.replace("\"parser\\\": \\\"properties", "\"parser\\\": \\\"toml"), "unknown parser"),
        ("a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\nmeta: {version: PLCN_v3}\nname: bomb\ndocker_images: {x: y}\ntags: *i\n".into(), "repetition limit"),
    ];
    for (text, want) in &cases {
        let e = import(text.as_bytes()).expect_err(want);
        assert!(e.message().contains(want), "{want}: {}", e.message());
    }
    let huge =
        format!("{{\"meta\":{{\"version\":\"PTDL_v2\"}},\"name\":\"x\",\"variables\":[{}]}}", "{},".repeat(4 << 20));
    assert_eq!(import(huge.as_bytes()).expect_err("huge").kind(), crate::ErrorKind::QuotaExceeded);
    // Refusals found by validation: a path out of the root, an unknown rule, a reserved name.
    for (from, to, want) in [
        ("\\\"server.properties\\\"", "\\\"../server.properties\\\"", "'..'"),
        ("nullable|string|max:20", "nullable|string|frobnicate", "frobnicate"),
        ("\"env_variable\": \"SERVER_JARFILE\"", "\"env_variable\": \"LD_PRELOAD\"", "reserved"),
        ("\"env_variable\": \"SERVER_JARFILE\"", "\"env_variable\": \"SERVER_PORT\"", "built-in"),
    ] {
        assert!(paper.contains(from), "fixture changed: {from}");
        let t = import(paper.replace(from, to).as_bytes()).expect("parses");
        let e = validate_template(&template(t), BUILTIN_VARIABLES).expect_err(want);
        assert!(e.message().contains(want), "{want}: {}", e.message());
    }
}
