use super::{RuleError, Rules, split};

fn parse(s: &str) -> Rules {
    Rules::parse(&split(s)).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn parse_err(s: &str) -> RuleError {
    match Rules::parse(&split(s)) {
        Ok(r) => panic!("{s} parsed: {r:?}"),
        Err(e) => e,
    }
}

/// (rules, values that pass, values that fail)
const TABLE: &[(&str, &[&str], &[&str])] = &[
    ("required", &["x", "0"], &["", "  ", "\t\n"]),
    ("nullable|integer", &["", "5"], &["x"]),
    ("sometimes|present|bail|string", &["", "anything", "é"], &[]),
    ("filled", &["a"], &["", " "]),
    (
        "integer",
        &["0", "-0", "+5", "42", "-9223372036854775808", "9223372036854775807"],
        &["abc", "007", "1.0", " 1", "1 ", "9223372036854775808", "+", "-", "1e3", "0x1A"],
    ),
    ("int", &["12"], &["1.5"]),
    (
        "numeric",
        &["1", "-1.5", ".5", "1.", "1e3", "1E-3", "+2", " 5", "5 ", "007"],
        &["abc", ".", "1e", "e3", "0x1A", "1.2.3", "inf", "NaN", "--1", "1_000"],
    ),
    ("boolean", &["0", "1", "true", "false"], &["yes", "on", "True", "2", "no"]),
    ("bool", &["1"], &["x"]),
    ("string|min:3", &["abc", "abcd", "ééé"], &["ab", "éé"]),
    ("string|max:3", &["abc", "a", "ééé"], &["abcd", "éééé"]),
    ("string|between:2,3", &["ab", "abc"], &["a", "abcd"]),
    ("string|size:3", &["abc", "123"], &["ab", "abcd"]),
    ("integer|min:10", &["10", "11"], &["9", "-10"]),
    ("integer|max:65535", &["65535", "-1"], &["65536", "100000"]),
    ("numeric|between:0.1,64", &["0.1", "64", "1.5", "1e1"], &["0.09", "64.01", "0"]),
    ("integer|between:1024,65536", &["1024", "25565", "65536"], &["1023", "65537"]),
    ("numeric|size:3", &["3", "3.0", "3e0"], &["4", "abc"]),
    ("digits:3", &["123", "007"], &["12", "1234", "12a", "-12", "1.2"]),
    ("numeric|digits_between:1,3", &["1", "123"], &["1234", "1.5", "-1"]),
    ("in:true,false", &["true", "false"], &["True", "1", "x", "true "]),
    (r#"in:"a,b",c"#, &["a,b", "c"], &["a", "b", "\"a"]),
    ("in:1", &["1"], &["01", "1.0"]),
    ("not_in:anonymous", &["bob"], &["anonymous"]),
    ("integer|gt:0", &["1", "65535"], &["0", "-1"]),
    ("gte:5", &["5", "6", "abcde"], &["4", "abcd"]),
    ("lt:5", &["4", "abcd"], &["5", "abcde"]),
    ("lte:5", &["5", "-3"], &["6"]),
    ("gt:2", &["3", "abc"], &["2", "ab"]),
    ("alpha", &["abc", "Ünïcode", "日本"], &["abc1", "a-b", "a b"]),
    ("alpha_num", &["abc123", "ab٣"], &["abc-1", "a_b", "a b"]),
    ("alpha_dash", &["a-b_c1"], &["a.b", "a b", "a/b"]),
    (
        "url",
        &[
            "http://example.com",
            "https://a.b.c/path?q=1#frag",
            "ftp://user:pw@host:21/file",
            "http://[::1]:8080/",
            "https://localhost",
        ],
        &["example.com", "http://", "http://exa mple.com", "http://:80", "://x", "1http://x"],
    ),
    ("regex:/^[a-z]+$/", &["abc"], &["abc1", "ABC"]),
    ("regex:/^[a-z]+$/i", &["ABC"], &["1"]),
    ("regex:/b/", &["abc"], &["xyz"]),
    ("regex:/^(?:true)?(?:false)?\\b/", &["true", "falsey", "x"], &[]),
    ("regex:/^a|b$/", &["ax", "xb"], &["xa"]),
    ("regex:([a-z-0-9]+$)", &["abc-1", "ABC-1"], &["ABC"]),
    ("regex:/^a\\/b$/", &["a/b"], &["ab"]),
    ("regex:#^\\#\\d$#", &["#1"], &["1"]),
    ("regex:{^x{2}$}", &["xx"], &["x"]),
    ("regex:/^\\w+$/", &["a_1"], &["é"]),
    ("regex:/^\\w+$/u", &["é"], &["-"]),
    ("regex:/^abc$/", &["abc\n"], &["abc\n\n"]),
    ("regex:/^[\\w.-]*$/|max:64", &["a.b-c"], &["a b"]),
    ("regex:/^[a[b]+$/", &["a[b", "ba"], &["c"]),
    ("regex:/^[]a]+$/", &["]a"], &["b"]),
    ("regex:/^[$]$/", &["$"], &["a"]),
    ("regex:/^[[:alpha:]\\d]+$/", &["ab1"], &["a-"]),
    ("regex:<^\\<a\\>$>", &["<a>"], &["a"]),
    ("regex:/^\\s\\S$/", &[" x"], &["xx"]),
    ("regex:~^a.c$~s", &["a\nc"], &["ac"]),
    ("regex:/^b$/m", &["a\nb\nc"], &["a\nbc"]),
    ("regex:/^ a b $/x", &["ab"], &["a b"]),
    ("not_regex:/^\\d+$/", &["abc"], &["123"]),
    ("starts_with:foo,bar", &["foobar", "barx"], &["xfoo"]),
    ("ends_with:.jar,.zip", &["a.jar", "b.zip"], &["a.tar"]),
    ("lowercase", &["abc", "a1"], &["aBc"]),
    ("uppercase", &["ABC", "A1"], &["AbC"]),
    ("ip", &["1.2.3.4", "::1"], &["1.2.3", "x"]),
    ("ipv4", &["127.0.0.1"], &["::1", "256.0.0.1"]),
    ("ipv6", &["::1", "fe80::1"], &["1.2.3.4"]),
    (
        "json",
        &["{}", "[1,2]", "{\"a\": [true, null, -1.5e3]}", "\"s\"", "1", " [ ] "],
        &["{", "[1,]", "{a:1}", "01", "'x'", "[1] x", "\"\\x\""],
    ),
    ("uuid", &["123e4567-e89b-12d3-a456-426614174000"], &["123e4567e89b12d3a456426614174000", "x"]),
    ("accepted", &["yes", "on", "1", "true"], &["", "no", "0"]),
    ("declined", &["no", "off", "0", "false"], &["", "yes"]),
    ("Required|STRING|Max:3|Digits_Between:1,3", &["12"], &["1234", ""]),
];

#[test]
fn table_of_every_keyword() {
    for (rules, good, bad) in TABLE {
        let r = parse(rules);
        for v in *good {
            if let Err(e) = r.check(v) {
                panic!("{rules} should accept {v:?}: {e}");
            }
        }
        for v in *bad {
            assert!(r.check(v).is_err(), "{rules} should reject {v:?}");
        }
    }
}

#[test]
fn empty_values_skip_non_implicit_rules() {
    let r = parse("integer|min:5|regex:/^x$/");
    assert_eq!(r.check(""), Ok(()));
    assert_eq!(r.check("  "), Ok(()));
    let e = parse("required|integer").check("").unwrap_err();
    assert_eq!(e.to_string(), "rule required: a value is required");
}

#[test]
fn required_and_nullable_flags() {
    let r = parse("required|string");
    assert!(r.required() && !r.nullable());
    let r = parse("nullable|string");
    assert!(!r.required() && r.nullable());
}

#[test]
fn messages_name_the_problem() {
    let msg = |rules: &str, v: &str| parse(rules).check(v).unwrap_err().to_string();
    let long = "a".repeat(25);
    assert_eq!(msg("string|max:20", &long), "rule max: 25 characters is more than 20");
    assert_eq!(msg("integer", "abc"), r#"rule integer: "abc" is not an integer"#);
    assert_eq!(msg("in:true,false", "x"), r#"rule in: "x" is not one of true, false"#);
    assert_eq!(msg("integer|max:10", "11"), "rule max: 11 is more than 10");
    assert_eq!(msg("int", "x"), r#"rule int: "x" is not an integer"#);
    assert!(msg("integer|between:1,5", "9").contains("9 is not between 1 and 5"));
}

#[test]
fn sizes_compare_numbers_only_with_a_numeric_rule() {
    // The game-eggs#129 pitfall: `max:8` on a port without `integer` is a length.
    assert!(parse("string|max:8").check("25565").is_ok());
    assert!(parse("integer|max:8").check("25565").is_err());
    // A numeric rule with a non-numeric value falls back to length.
    assert!(parse("string|gt:2").check("abc").is_ok());
}

#[test]
fn unknown_keyword_is_named() {
    let e = parse_err("required|foo_bar");
    assert_eq!(e.rule, "foo_bar");
    assert!(e.to_string().starts_with("rule foo_bar:"));
    assert_eq!(parse_err("foo_bar:1,2").rule, "foo_bar");
}

#[test]
fn bad_parameters_are_errors() {
    for (rules, rule) in [
        ("max:abc", "max"),
        ("max", "max"),
        ("max:1,2", "max"),
        ("between:1", "between"),
        ("between:5,1", "between"),
        ("digits:x", "digits"),
        ("digits_between:3,1", "digits_between"),
        ("in:", "in"),
        ("string:5", "string"),
        ("regex:", "regex"),
        ("regex:abc", "regex"),
        ("regex:/abc", "regex"),
        ("regex:/[a-/", "regex"),
        ("regex:/a/g", "regex"),
        ("regex:/a/e", "regex"),
        ("regex:(abc", "regex"),
        ("regex:\\abc\\", "regex"),
        ("not_regex:/(a/", "not_regex"),
    ] {
        assert_eq!(parse_err(rules).rule, rule, "{rules}");
    }
    let flags = parse_err("regex:/a/gX").message;
    assert!(flags.contains("gX"), "{flags}");
}

#[test]
fn unsupported_pcre_is_explained() {
    for (p, word) in [
        ("regex:/a(?=b)/", "look-around"),
        ("regex:/(?<!a)b/", "look-around"),
        ("regex:/(a)\\1/", "back-references"),
        ("regex:/(?>a)/", "not supported"),
    ] {
        let e = parse_err(p);
        assert!(e.message.contains(word), "{p}: {e}");
    }
}

#[test]
fn split_keeps_regex_pipes() {
    assert_eq!(split("a|b:1,2|regex:/x|y/"), ["a", "b:1,2", "regex:/x|y/"]);
    assert_eq!(split(" required || string |"), ["required", "string"]);
    assert_eq!(split("required|regex:/^(a|b)$/i|max:64"), ["required", "regex:/^(a|b)$/i", "max:64"]);
    assert_eq!(split("not_regex:(a|(b|c))|x"), ["not_regex:(a|(b|c))", "x"]);
    assert_eq!(split(r"regex:/a\/|b/|x"), [r"regex:/a\/|b/", "x"]);
    // A pipe before the colon ends an ordinary rule.
    assert_eq!(split("in:a|regex:/b/"), ["in:a", "regex:/b/"]);
    // Unterminated pattern: plain split, and parsing reports it.
    assert_eq!(split("regex:/a|b"), ["regex:/a", "b"]);
    assert_eq!(split(""), Vec::<String>::new());
}
