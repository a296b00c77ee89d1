//! Startup lines for `sh -c`. A value spliced into shell text is shell syntax, so values are
//! never spliced: each `{{NAME}}` becomes a reference to the environment variable `NAME`
//! (the node passes every value as one), quoted for where it stands — `"${NAME}"` outside
//! quotes, `${NAME}` inside double quotes, `'"${NAME}"'` inside single quotes. The shell then
//! expands each value to exactly its text: no word splitting, globbing or command
//! substitution.
//!
//! That holds for the shell that runs the line. A placeholder whose text is handed to another
//! parser — a string for `sh -c`/`bash -c`, `eval` or `let`, arithmetic (`$(( ))`, `(( ))`,
//! the numeric tests of `[[ ]]`), a here-document — would be parsed again there, so such
//! placements are refused with a message saying to write `$NAME` in the inner text instead
//! (the variable is in that shell's environment too). Comments are copied untouched.

use super::RenderContext;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Double,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Top,
    /// `$( … )`, with the depth of plain parentheses inside it.
    Subst(u32),
    /// `` ` … ` ``.
    Backtick,
    /// `$(( … ))` or `(( … ))`, with the depth of parentheses inside it.
    Arith(u32),
}

/// One nesting level: its quoting and the words of its current simple command.
#[derive(Debug)]
struct Frame {
    kind: Kind,
    quote: Quote,
    words: Vec<String>,
    word: String,
    /// Inside `[[ … ]]`, and the placeholders seen there (an arithmetic operator may follow).
    test: bool,
    test_names: Vec<String>,
    /// A placeholder found, once its `[[ … ]]` ended, to stand in a numeric test.
    refused: Option<String>,
}

impl Frame {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            quote: Quote::None,
            words: Vec::new(),
            word: String::new(),
            test: false,
            test_names: Vec::new(),
            refused: None,
        }
    }

    fn end_word(&mut self) {
        if !self.word.is_empty() {
            let word = std::mem::take(&mut self.word);
            self.words.push(word);
            match self.words.last().map(String::as_str) {
                Some("[[") => self.test = true,
                Some("]]") => self.end_test(),
                _ => {}
            }
        }
    }

    fn end_command(&mut self) {
        self.end_word();
        self.end_test();
        self.words.clear();
    }

    /// bash evaluates both sides of `-eq`, `-lt`, … as arithmetic, which runs `$(…)` inside
    /// array subscripts: a placeholder in such a test is refused.
    fn end_test(&mut self) {
        const ARITH: &[&str] = &["-eq", "-ne", "-lt", "-le", "-gt", "-ge"];
        if self.test && self.words.iter().any(|w| ARITH.contains(&w.as_str())) && self.refused.is_none() {
            self.refused = self.test_names.first().cloned();
        }
        self.test = false;
        self.test_names.clear();
    }

    /// Why this command would parse a value again, if it would.
    fn reparses(&self) -> Option<&'static str> {
        const SHELLS: &[&str] = &["sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "busybox", "su", "runuser"];
        let base = |w: &str| w.rsplit('/').next().unwrap_or(w).to_string();
        let mut words = self.words.iter().map(|w| base(w));
        let mut shell = false;
        for w in words.by_ref() {
            if w == "eval" || w == "let" {
                return Some("a command that evaluates its arguments as shell text");
            }
            if SHELLS.contains(&w.as_str()) {
                shell = true;
            } else if shell && w.starts_with('-') && !w.starts_with("--") && w.contains('c') {
                return Some("a string a shell runs as commands (-c)");
            }
        }
        None
    }
}

/// Rewrite the shell command line `text`, checking every placeholder's name against `ctx`.
pub fn render_shell(text: &str, ctx: &RenderContext) -> Result<String> {
    let mut out = String::with_capacity(text.len() + 32);
    let mut frames = vec![Frame::new(Kind::Top)];
    let mut heredoc = false;
    let mut chars = text.char_indices().peekable();
    let at = |i: usize, s: &str| text[i..].starts_with(s);
    while let Some((i, c)) = chars.next() {
        if let Some(name) = frames.iter().find_map(|f| f.refused.clone()) {
            return Err(numeric_test(&name));
        }
        let top = frames.len() - 1;
        let quote = frames[top].quote;
        if at(i, "{{") {
            let after = &text[i + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| Error::invalid(format!("unclosed '{{{{' in {:?}", super::truncate(text))))?;
            let name = after[..end].trim();
            if !ctx.values.contains_key(name) {
                return Err(Error::invalid(format!("unknown variable {{{{{name}}}}} in template")));
            }
            let refuse = |why: &str| {
                Err(Error::invalid(format!(
                    "{{{{{name}}}}} stands in {why}: its value would be parsed as shell syntax there; \
                     write \"${name}\" in that text instead (the variable is in its environment)"
                )))
            };
            if heredoc {
                return refuse("a here-document");
            }
            if frames.iter().any(|f| matches!(f.kind, Kind::Arith(_))) {
                return refuse("arithmetic");
            }
            if let Some(why) = frames.iter().find_map(Frame::reparses) {
                return refuse(why);
            }
            out.push_str(&match quote {
                Quote::None => format!("\"${{{name}}}\""),
                Quote::Double => format!("${{{name}}}"),
                Quote::Single => format!("'\"${{{name}}}\"'"),
            });
            frames[top].word.push('x');
            if frames[top].test {
                frames[top].test_names.push(name.to_string());
            }
            let resume = i + 2 + end + 2;
            while chars.peek().is_some_and(|(j, _)| *j < resume) {
                chars.next();
            }
            continue;
        }
        out.push(c);
        let frame = &mut frames[top];
        match (quote, c) {
            (Quote::Single, '\'') => frame.quote = Quote::None,
            (Quote::Single, _) => {}
            (Quote::None | Quote::Double, '\\') => {
                // A backslash escapes the next character, unless that starts a placeholder.
                if let Some(&(j, next)) = chars.peek()
                    && !at(j, "{{")
                {
                    chars.next();
                    out.push(next);
                    frame.word.push(next);
                }
            }
            (Quote::Double, '"') => frame.quote = Quote::None,
            (Quote::None, '\'') => frame.quote = Quote::Single,
            (Quote::None, '"') => frame.quote = Quote::Double,
            (_, '$') if at(i, "$((") => {
                frame.word.push('x');
                push_through(&mut out, &mut chars, 2);
                frames.push(Frame::new(Kind::Arith(0)));
            }
            (_, '$') if at(i, "$(") => {
                frame.word.push('x');
                push_through(&mut out, &mut chars, 1);
                frames.push(Frame::new(Kind::Subst(0)));
            }
            (_, '`') if frame.kind == Kind::Backtick && quote == Quote::None => {
                frame.end_word();
                frames.pop();
            }
            (_, '`') => {
                frame.word.push('x');
                frames.push(Frame::new(Kind::Backtick));
            }
            (Quote::Double, _) => frame.word.push(c),
            (Quote::None, '#') if frame.word.is_empty() => {
                // A comment, to the end of the line: copied as it is.
                while let Some(&(_, next)) = chars.peek() {
                    if next == '\n' {
                        break;
                    }
                    out.push(next);
                    chars.next();
                }
            }
            (Quote::None, '(') if frame.word.is_empty() && at(i, "((") => {
                push_through(&mut out, &mut chars, 1);
                frames.push(Frame::new(Kind::Arith(0)));
            }
            (Quote::None, '(') => match &mut frame.kind {
                Kind::Subst(depth) | Kind::Arith(depth) => *depth += 1,
                _ => frame.end_command(),
            },
            (Quote::None, ')') => match frame.kind {
                Kind::Arith(0) if at(i, "))") => {
                    push_through(&mut out, &mut chars, 1);
                    frames.pop();
                }
                Kind::Subst(0) => {
                    frame.end_word();
                    frames.pop();
                }
                Kind::Subst(ref mut depth) | Kind::Arith(ref mut depth) if *depth > 0 => {
                    *depth -= 1;
                    frame.end_command();
                }
                _ => frame.end_command(),
            },
            (Quote::None, '<') if at(i, "<<") => {
                heredoc = true;
                frame.end_word();
            }
            (Quote::None, ';' | '&' | '|' | '\n') => frame.end_command(),
            (Quote::None, c) if c.is_whitespace() => frame.end_word(),
            (Quote::None, c) => frame.word.push(c),
        }
    }
    for frame in &mut frames {
        frame.end_command();
    }
    match frames.iter().find_map(|f| f.refused.clone()) {
        Some(name) => Err(numeric_test(&name)),
        None => Ok(out),
    }
}

fn numeric_test(name: &str) -> Error {
    Error::invalid(format!(
        "{{{{{name}}}}} stands in a numeric test, which bash evaluates as arithmetic: its value would be parsed \
         as shell syntax there; write \"${name}\" in that text instead (the variable is in its environment)"
    ))
}

/// Copy the next `n` characters as they are (the rest of a `$((`, `$(` or `((`).
fn push_through(out: &mut String, chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>, n: usize) {
    for _ in 0..n {
        if let Some((_, c)) = chars.next() {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RenderContext {
        RenderContext::new().with("JAR", "x; touch /tmp/pwned").with("MEM", "512")
    }

    #[test]
    fn values_are_referenced_and_quoted_for_where_they_stand() {
        let cases = [
            ("java -Xmx{{MEM}}M -jar {{JAR}}", r#"java -Xmx"${MEM}"M -jar "${JAR}""#),
            (r#"echo "name={{ JAR }}""#, r#"echo "name=${JAR}""#),
            ("echo '{{JAR}}'", r#"echo ''"${JAR}"''"#),
            (r#"echo \"{{JAR}} 'it''s'"#, r#"echo \""${JAR}" 'it''s'"#),
            ("echo \"$(basename {{JAR}})\"", r#"echo "$(basename "${JAR}")""#),
            ("echo `basename {{JAR}}`", r#"echo `basename "${JAR}"`"#),
            ("# it's a comment {{NOT_CHECKED}}\necho \"{{MEM}}\"", "# it's a comment {{NOT_CHECKED}}\necho \"${MEM}\""),
            ("echo ${X:-{{MEM}}}", r#"echo ${X:-"${MEM}"}"#),
            ("[[ {{MEM}} == \"1\" ]] && run", r#"[[ "${MEM}" == "1" ]] && run"#),
            ("sh -c 'echo $JAR'; echo {{MEM}}", r#"sh -c 'echo $JAR'; echo "${MEM}""#),
            ("./run -c {{MEM}}", r#"./run -c "${MEM}""#),
            ("no vars", "no vars"),
        ];
        for (text, want) in cases {
            assert_eq!(render_shell(text, &ctx()).ok().as_deref(), Some(want), "{text}");
        }
        assert!(render_shell("{{NOPE}}", &ctx()).is_err());
        assert!(render_shell("{{MEM", &ctx()).is_err());
    }

    #[test]
    fn placements_another_parser_would_read_are_refused() {
        let refused = [
            "sh -c 'echo {{JAR}}'",
            "bash -c \"echo {{JAR}}\"",
            "/bin/bash -lc 'run {{JAR}}'",
            "busybox sh -c \"$(echo {{JAR}})\"",
            "eval {{JAR}}",
            "let x={{MEM}}+1",
            "echo $(( {{MEM}} + 1 ))",
            "(( {{MEM}} > 3 )) && run",
            "[[ {{MEM}} -gt 3 ]] && run",
            "sh <<EOF\necho {{JAR}}\nEOF",
        ];
        for text in refused {
            let e = render_shell(text, &ctx()).expect_err(text);
            assert!(e.message().contains("parsed as shell syntax"), "{text}: {}", e.message());
        }
    }
}
