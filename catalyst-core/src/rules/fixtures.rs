//! The rules of the fixture eggs in /work/shared/eggs, copied as literals.

use super::{Rules, split};

fn parse(s: &str) -> Rules {
    Rules::parse(&split(s)).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Every distinct rule string of the fixture eggs in /work/shared/eggs.
pub(super) const FIXTURE_PTDL: &[&str] = &[
    "boolean",
    "nullable|string",
    "nullable|string|max:128",
    "nullable|string|max:20",
    "nullable|string|max:64",
    "nullable|url",
    "required|alpha_num|between:1,6",
    "required|boolean",
    "required|in:vanilla,oxide,carbon",
    "required|integer",
    "required|integer|between:0,24",
    "required|integer|between:0,30",
    "required|integer|between:1,31",
    "required|integer|between:1024,65536",
    "required|integer|gt:0",
    "required|integer|in:223350,1042420",
    "required|numeric|between:0.1,64",
    "required|numeric|digits_between:1,16",
    "required|numeric|digits_between:1,3",
    "required|numeric|in:298740",
    "required|numeric|max:65535",
    r"required|regex:/^([0-9_\.-]{5,10})$/",
    r"required|regex:/^([\w\d._-]+)(\.jar)$/",
    r"required|regex:/^[\w.-]*$/|max:64",
    "required|string",
    "required|string|in:0,2",
    "required|string|in:1",
    "required|string|in:258550",
    "required|string|in:DayZServer",
    "required|string|in:Survival,Creative",
    "required|string|in:true,false",
    "required|string|max:20",
    "required|string|max:200",
    "required|string|max:60",
    "required|string|max:64",
    "required|string|not_in:anonymous",
];

/// The PLCN (list) rules of the fixture eggs.
pub(super) const FIXTURE_PLCN: &[&[&str]] = &[
    &["boolean"],
    &["max:30"],
    &["nullable", "numeric"],
    &["required", "numeric", "min:0"],
    &["required", "string", "max:20"],
    &["required", "string", "max:60"],
    &["required", "string", "min:5", "max:20"],
    &["required", "string"],
    &["string"],
    &["required", r"regex:/^([\w\d._-]+)(\.jar)$/"],
    &["required", "string", "between:3,15"],
];

/// All fixture rule sets, parsed.
pub(super) fn fixture_rules() -> Vec<Rules> {
    let lists = FIXTURE_PTDL.iter().map(|s| split(s));
    let plcn = FIXTURE_PLCN.iter().map(|l| l.iter().map(|s| s.to_string()).collect());
    lists.chain(plcn).map(|l: Vec<String>| Rules::parse(&l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect()
}

#[test]
fn every_fixture_rule_parses() {
    assert_eq!(fixture_rules().len(), FIXTURE_PTDL.len() + FIXTURE_PLCN.len());
    let jar = parse(r"required|regex:/^([\w\d._-]+)(\.jar)$/");
    assert!(jar.check("server.jar").is_ok());
    assert!(jar.check("server.zip").is_err());
    let version = parse(r"required|regex:/^([0-9_\.-]{5,10})$/");
    assert!(version.check("1.20.4").is_ok());
    assert!(version.check("latest").is_err());
}

/// (rules, default value) pairs of the fixture eggs whose defaults are not empty.
const FIXTURE_DEFAULTS: &[(&str, &str)] = &[
    ("boolean", "0"),
    ("nullable|string", "-dologs -adminlog -netlog -freezecheck"),
    ("nullable|string|max:20", "-all"),
    ("nullable|url", "http://example.com"),
    ("required|alpha_num|between:1,6", "latest"),
    ("required|in:vanilla,oxide,carbon", "vanilla"),
    ("required|integer|between:1024,65536", "27016"),
    ("required|integer|gt:0", "64"),
    ("required|integer|in:223350,1042420", "223350"),
    ("required|numeric|between:0.1,64", "1"),
    ("required|numeric|digits_between:1,16", "4"),
    ("required|numeric|digits_between:1,3", "20"),
    ("required|numeric|max:65535", "8766"),
    (r"required|regex:/^([0-9_\.-]{5,10})$/", "4.3.22"),
    (r"required|regex:/^([\w\d._-]+)(\.jar)$/", "waterfall.jar"),
    ("required|string|in:0,2", "2"),
    ("required|string|in:true,false", "false"),
    ("required|string|max:20", "Procedural Map"),
    ("required|string|max:200", "A Pterodactyl hosted Space Engineer Server"),
    ("required|numeric|min:0", "43200"),
    ("required|string|min:5|max:20", "secret"),
    ("string", r"/^\(Filename:.*Line:[[:space:]]+[[:digit:]]+\)$/d; /^([[:space:]]+)?$/d"),
];

#[test]
fn fixture_defaults_pass() {
    for (rules, value) in FIXTURE_DEFAULTS {
        if let Err(e) = parse(rules).check(value) {
            panic!("{rules} {value:?}: {e}");
        }
    }
}
