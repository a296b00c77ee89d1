use proptest::prelude::*;

use super::fixtures::fixture_rules;
use super::{Rules, split};

fn parse(s: &str) -> Rules {
    Rules::parse(&split(s)).unwrap()
}

/// Single rules, some of them regexes with `|` inside, for split/join.
fn one_rule() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("required".to_string()),
        Just("nullable".to_string()),
        (0u32..1000).prop_map(|n| format!("max:{n}")),
        (0u32..100, 0u32..100).prop_map(|(a, b)| format!("between:{a},{b}")),
        "[a-z]{1,5}(,[a-z]{1,5}){0,3}".prop_map(|l| format!("in:{l}")),
        "[a-z|]{0,8}".prop_map(|b| format!("regex:/^({b})$/")),
        "[a-z|]{0,8}".prop_map(|b| format!("not_regex:/{b}/i")),
        ("[a-z|]{0,4}", "[a-z|]{0,4}").prop_map(|(a, b)| format!("regex:(({a})|{b})")),
    ]
}

proptest! {
    #[test]
    fn integer_accepts_every_i64(n in any::<i64>()) {
        prop_assert!(parse("integer").check(&n.to_string()).is_ok());
    }

    #[test]
    fn numeric_accepts_every_finite_f64(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
        let r = parse("numeric");
        prop_assert!(r.check(&f.to_string()).is_ok());
        let sci = format!("{f:e}");
        prop_assert!(r.check(&sci).is_ok(), "{}", sci);
    }

    #[test]
    fn integer_rejects_leading_zeros(n in 0u64..u64::MAX / 10) {
        let zeroed = format!("0{n}");
        prop_assert!(parse("integer").check(&zeroed).is_err(), "{}", zeroed);
    }

    #[test]
    fn between_accepts_exactly_the_range(a in any::<i64>(), b in any::<i64>(), n in any::<i64>()) {
        let (a, b) = (a.min(b), a.max(b));
        let r = parse(&format!("integer|between:{a},{b}"));
        prop_assert_eq!(r.check(&n.to_string()).is_ok(), a <= n && n <= b);
        // Near the edges too, where random values rarely land.
        for m in [a.saturating_sub(1), a, b, b.saturating_add(1)] {
            prop_assert_eq!(r.check(&m.to_string()).is_ok(), a <= m && m <= b);
        }
    }

    #[test]
    fn max_accepts_exactly_short_strings(n in 0usize..40, rest in "\\PC{0,60}") {
        // A leading letter keeps the value non-empty (empty values skip `max`).
        let s = format!("x{rest}");
        let r = parse(&format!("string|max:{n}"));
        prop_assert_eq!(r.check(&s).is_ok(), s.chars().count() <= n);
    }

    #[test]
    fn split_then_join_keeps_regex_pipes(rules in prop::collection::vec(one_rule(), 1..6)) {
        let joined = rules.join("|");
        prop_assert_eq!(split(&joined), rules.clone());
        for r in rules.iter().filter(|r| r.contains("regex")) {
            prop_assert!(Rules::parse(std::slice::from_ref(r)).is_ok(), "{}", r);
        }
    }

    #[test]
    fn check_never_panics(s in any::<String>()) {
        for r in fixture_rules() {
            let _ = r.check(&s);
        }
    }

    #[test]
    fn parse_and_split_never_panic(s in any::<String>()) {
        let _ = Rules::parse(&split(&s));
        let _ = Rules::parse(std::slice::from_ref(&s));
    }
}
