//! Startup lines for `sh -c`. A value spliced into shell text is shell syntax, so values are
//! never spliced: each `{{NAME}}` becomes a reference to the environment variable `NAME`
//! (the node passes every value as one), quoted for where it stands — `"${NAME}"` outside
//! quotes, `${NAME}` inside double quotes, `'"${NAME}"'` inside single quotes. The shell then
//! expands each value to exactly its text: no word splitting, globbing or command
//! substitution.
//!
//! That holds for the shell that runs the line. A placeholder whose text another parser reads
//! again would be code there, so these placements are refused, with a message saying to write
//! `$NAME` in the inner text instead (the variable is in that program's environment too):
//! single quotes (their text is always meant for someone else: `trap`, `awk`, `sh -c`, …), a
//! string for a shell's `-c`, `eval`, `let`, `alias`, `trap`, `.`/`source`, `declare`, `sed` and
//! `awk` programs, `-c`/`-e` code of interpreters, a pipe into a shell or `xargs`, a file
//! written from a placeholder and then run, arithmetic, bash's numeric `[[ ]]` tests,
//! here-documents, a command whose name is computed at run time, and text after ANSI-C quotes
//! or a backslash right before a placeholder (where this scanner and the shell could disagree
//! on quoting). Unbalanced quotes are refused too. What no scanner can see — a program of the
//! operator's that interprets its arguments — runs as the server's own uid at worst, which is
//! what confinement bounds. Comments are copied untouched.

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

/// Shells: their `-c` string is code, and so is what is piped into them.
const SHELLS: &[&str] =
    &["sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "rbash", "busybox", "su", "runuser", "script"];
/// Commands whose arguments are code, or become code later.
const EVALUATORS: &[&str] = &["eval", "let", "alias", "trap", ".", "source", "declare", "typeset", "local", "readonly"];
/// Commands whose first operand is a program of their own language.
const PROGRAMS: &[&str] = &["sed", "awk", "gawk", "mawk", "nawk"];
/// Interpreters: code after `-c`, `-e`, `-r` and the like.
const INTERPRETERS: &[&str] =
    &["perl", "python", "python2", "python3", "ruby", "php", "node", "nodejs", "lua", "tclsh", "expect"];

fn base(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// Is `word` the flag that makes the program before it run code from its arguments? For a shell
/// that is a short flag with `c` (`-c`, `-lc`); for an interpreter also `e`, `r` or `E`.
fn is_code_flag(word: &str, shell: bool) -> bool {
    let short = word.starts_with('-') && !word.starts_with("--");
    let letters: &[char] = if shell { &['c'] } else { &['c', 'e', 'r', 'E'] };
    (short && word[1..].contains(letters)) || matches!(word, "--eval" | "--exec" | "--command" | "--print")
}

/// One nesting level: its quoting and what it knows of its current command and pipeline.
#[derive(Debug)]
struct Frame {
    kind: Kind,
    quote: Quote,
    /// The current command's words so far (placeholders and expansions as `x`).
    words: Vec<String>,
    word: String,
    /// The current word holds an expansion the template wrote (`$…`, a substitution), or a
    /// placeholder.
    word_expands: bool,
    word_placeholder: bool,
    /// The current command's name is computed at run time.
    computed: bool,
    /// Placeholders in the current command, and in the earlier commands of its pipeline.
    names: Vec<String>,
    piped: Vec<String>,
    /// The current command writes to a file (`>`).
    redirects: bool,
    /// Inside `[[ … ]]`.
    test: bool,
    /// A refusal found only once a command or test ended: the placeholder and why.
    refused: Option<(String, &'static str)>,
}

impl Frame {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            quote: Quote::None,
            words: Vec::new(),
            word: String::new(),
            word_expands: false,
            word_placeholder: false,
            computed: false,
            names: Vec::new(),
            piped: Vec::new(),
            redirects: false,
            test: false,
            refused: None,
        }
    }

    fn refuse_later(&mut self, name: Option<&String>, why: &'static str) {
        if self.refused.is_none()
            && let Some(name) = name
        {
            self.refused = Some((name.clone(), why));
        }
    }

    /// End the current word; `written` is a placeholder written to a file earlier.
    fn end_word(&mut self, written: &Option<String>) {
        if self.word.is_empty() {
            return;
        }
        let word = std::mem::take(&mut self.word);
        let first = self.words.is_empty();
        // `$0 -c …`, `${E:-eval} …`, or a bare `{{BIN}}` whose value could be `eval`; a path
        // (`./{{BIN}}`) can only name a file.
        if first && (self.word_expands || (self.word_placeholder && !word.contains('/'))) {
            self.computed = true;
        }
        self.word_expands = false;
        self.word_placeholder = false;
        if first {
            let name = base(&word);
            if SHELLS.contains(&name) || name == "xargs" {
                let piped = self.piped.first().cloned();
                self.refuse_later(piped.as_ref(), "what a pipe feeds a shell or xargs");
            }
            if SHELLS.contains(&name) || name == "." || name == "source" {
                self.refuse_later(written.as_ref(), "a file that is written from it and then run");
            }
        }
        match word.as_str() {
            "[[" => self.test = true,
            "]]" => self.end_test(),
            _ => {}
        }
        self.words.push(word);
    }

    /// End the current command; returns a placeholder it wrote to a file.
    fn end_command(&mut self, written: &Option<String>, pipe: bool) -> Option<String> {
        self.end_word(written);
        self.end_test();
        let wrote = if self.redirects { self.names.first().cloned() } else { None };
        if pipe {
            self.piped.append(&mut self.names);
        } else {
            self.piped.clear();
        }
        self.names.clear();
        self.words.clear();
        self.redirects = false;
        self.computed = false;
        wrote
    }

    /// bash evaluates both sides of `-eq`, `-lt`, … as arithmetic, which runs `$(…)` inside
    /// array subscripts.
    fn end_test(&mut self) {
        const ARITH: &[&str] = &["-eq", "-ne", "-lt", "-le", "-gt", "-ge"];
        if self.test && self.words.iter().any(|w| ARITH.contains(&w.as_str())) {
            let first = self.names.first().cloned();
            self.refuse_later(first.as_ref(), "a numeric test, which bash evaluates as arithmetic");
        }
        self.test = false;
    }

    /// Why a placeholder in this command would be parsed again, if it would.
    fn reparses(&self) -> Option<&'static str> {
        if self.computed {
            return Some("a command whose name is computed at run time (it could be a shell)");
        }
        // The last program named so far: a shell (`true`) or another interpreter.
        let mut program = None;
        for word in &self.words {
            let name = base(word);
            if EVALUATORS.contains(&name) {
                return Some("a command that evaluates its arguments as shell text");
            }
            if PROGRAMS.contains(&name) {
                return Some("a sed or awk program");
            }
            if SHELLS.contains(&name) {
                program = Some(true);
            } else if INTERPRETERS.contains(&name) {
                program = Some(false);
            } else if let Some(shell) = program
                && is_code_flag(word, shell)
            {
                return Some("code a shell or an interpreter runs (-c, -e)");
            }
        }
        None
    }
}

/// Rewrite the shell command line `text`, checking every placeholder's name against `ctx`.
pub fn render_shell(text: &str, ctx: &RenderContext) -> Result<String> {
    let mut out = String::with_capacity(text.len() + 32);
    let mut frames = vec![Frame::new(Kind::Top)];
    // Once seen, the rest of the line is refused placeholders (see the module's comment).
    let (mut heredoc, mut ansi_c) = (false, false);
    let mut written: Option<String> = None;
    let mut chars = text.char_indices().peekable();
    let at = |i: usize, s: &str| text[i..].starts_with(s);
    while let Some((i, c)) = chars.next() {
        if let Some((name, why)) = frames.iter().find_map(|f| f.refused.clone()) {
            return Err(refusal(&name, why));
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
            let why = if quote == Quote::Single {
                Some("single quotes, whose text is meant for another program (trap, awk, sh -c, …)")
            } else if heredoc {
                Some("a here-document")
            } else if ansi_c {
                Some("text after ANSI-C quoting ($'…'), which this check does not follow")
            } else if frames.iter().any(|f| matches!(f.kind, Kind::Arith(_))) {
                Some("arithmetic")
            } else {
                frames.iter().find_map(Frame::reparses)
            };
            if let Some(why) = why {
                return Err(refusal(name, why));
            }
            out.push_str(&match quote {
                Quote::Double => format!("${{{name}}}"),
                _ => format!("\"${{{name}}}\""),
            });
            let frame = &mut frames[top];
            frame.word.push('x');
            frame.word_placeholder = true;
            frame.names.push(name.to_string());
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
                if let Some(&(j, next)) = chars.peek() {
                    if at(j, "{{") {
                        return Err(Error::invalid(
                            "a backslash right before a placeholder: the shell would escape the quote Catalyst \
                             puts there; remove it",
                        ));
                    }
                    chars.next();
                    out.push(next);
                    frame.word.push(next);
                }
            }
            (Quote::Double, '"') => frame.quote = Quote::None,
            (Quote::None, '\'') => {
                if at(i.saturating_sub(1), "$'") && i > 0 {
                    ansi_c = true;
                }
                frame.quote = Quote::Single;
                frame.word.push('q');
            }
            (Quote::None, '"') => {
                frame.quote = Quote::Double;
                frame.word.push('q');
            }
            (_, '$') if at(i, "$((") => {
                frame.word.push('x');
                frame.word_expands = true;
                push_through(&mut out, &mut chars, 2);
                frames.push(Frame::new(Kind::Arith(0)));
            }
            (_, '$') if at(i, "$(") => {
                frame.word.push('x');
                frame.word_expands = true;
                push_through(&mut out, &mut chars, 1);
                frames.push(Frame::new(Kind::Subst(0)));
            }
            (_, '$') => {
                frame.word.push('$');
                frame.word_expands = true;
            }
            (_, '`') if frame.kind == Kind::Backtick && quote == Quote::None => {
                if let Some(name) = frame.end_command(&written, false) {
                    written = Some(name);
                }
                frames.pop();
            }
            (_, '`') => {
                frame.word.push('x');
                frame.word_expands = true;
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
                _ => {
                    if let Some(name) = frame.end_command(&written, false) {
                        written = Some(name);
                    }
                }
            },
            (Quote::None, ')') => {
                let close = match &mut frame.kind {
                    Kind::Arith(0) => at(i, "))"),
                    Kind::Subst(0) => true,
                    Kind::Subst(depth) | Kind::Arith(depth) => {
                        *depth -= 1;
                        false
                    }
                    _ => false,
                };
                if let Some(name) = frame.end_command(&written, false) {
                    written = Some(name);
                }
                if close {
                    if frame.kind != Kind::Subst(0) {
                        push_through(&mut out, &mut chars, 1);
                    }
                    frames.pop();
                }
            }
            (Quote::None, '<') if at(i, "<<") => {
                heredoc = true;
                frame.end_word(&written);
            }
            (Quote::None, '>') => {
                frame.redirects = true;
                frame.end_word(&written);
            }
            (Quote::None, ';' | '&' | '|' | '\n') => {
                let pipe = c == '|' && !at(i, "||") && !text[..i].ends_with('|');
                if let Some(name) = frame.end_command(&written, pipe) {
                    written = Some(name);
                }
            }
            (Quote::None, c) if c.is_whitespace() => frame.end_word(&written),
            (Quote::None, c) => frame.word.push(c),
        }
    }
    let quoted = frames.iter().any(|f| f.quote != Quote::None);
    for frame in &mut frames {
        frame.end_command(&written, false);
    }
    if let Some((name, why)) = frames.iter().find_map(|f| f.refused.clone()) {
        return Err(refusal(&name, why));
    }
    if quoted || frames.len() > 1 {
        return Err(Error::invalid("the startup line has an unclosed quote, `$(` or backtick"));
    }
    Ok(out)
}

fn refusal(name: &str, why: &str) -> Error {
    Error::invalid(format!(
        "{{{{{name}}}}} stands in {why}: its value would be parsed as code there; write \"${name}\" in that \
         text instead (the variable is in its environment)"
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
            // From an attack on the first version of this check.
            "printf 'motd=a\\n' > p.txt; sed -i \"s/^motd=.*/motd={{JAR}}/\" p.txt",
            "trap 'echo bye {{JAR}}' EXIT; echo running",
            "echo \"echo {{JAR}}\" | sh",
            "echo {{JAR}} | sh -s",
            "echo {{JAR}} | xargs -I@ sh -c 'echo @'",
            "echo \"MOTD={{JAR}}\" > env.sh; . ./env.sh",
            "alias run=\"echo {{JAR}}\"",
            "awk 'BEGIN{print \"{{JAR}}\"}'",
            "perl -le \"print {{JAR}}\"",
            "/usr/bin/python3 -c \"print({{JAR}})\"",
            "script -qec \"echo {{JAR}}\" /dev/null",
            "rbash -c \"echo {{JAR}}\"",
            "\"$0\" -c \"echo {{JAR}}\"",
            "${E:-eval} {{JAR}}",
            "$(echo eval) {{JAR}}",
            "{{MEM}} {{JAR}}",
            "echo \"\"#'\n'; sh -c \"echo {{JAR}}\"",
            "echo $'\\'' {{JAR}}'",
        ];
        for text in refused {
            let e = render_shell(text, &ctx()).expect_err(text);
            assert!(e.message().contains("parsed as code"), "{text}: {}", e.message());
        }
        for text in ["echo \\{{JAR}}", "echo \"{{JAR}}", "echo $(echo {{JAR}}"] {
            assert!(render_shell(text, &ctx()).is_err(), "{text}");
        }
    }

    /// The startup lines of the egg fixtures (`shared/eggs`) stay accepted.
    #[test]
    fn real_egg_startups_render() {
        let ctx = ["SERVER_BINARY", "SERVER_PORT", "CLIENT_MODS", "SERVERMODS", "STARTUP_PARAMS", "MAX_PLAYERS"]
            .iter()
            .chain(&["QUERY_PORT", "RCON_PORT", "RCON_PASS", "SAVEINTERVAL", "APP_PORT", "ADDITIONAL_ARGS"])
            .chain(&["SERVER_MEMORY", "SERVER_JARFILE", "AUTO_UPDATE"])
            .fold(RenderContext::new(), |c, n| c.with(*n, "v"));
        let startups = [
            "./{{SERVER_BINARY}} -port={{SERVER_PORT}} -profiles=profiles -bepath=./ -config=serverDZ.cfg -mod={{CLIENT_MODS}} -serverMod={{SERVERMODS}} {{STARTUP_PARAMS}}",
            "cd bin64 && coproc caves ( ./dst -players {{MAX_PLAYERS}} -shard Caves ); ./dst -port {{SERVER_PORT}} -players {{MAX_PLAYERS}} -shard Master && echo 'c_shutdown()' >&\"${caves[1]}\"",
            "./RustDedicated -batchmode +server.port {{SERVER_PORT}} +server.queryport {{QUERY_PORT}} +server.identity \"rust\" +rcon.port {{RCON_PORT}} +rcon.web true +server.maxplayers {{MAX_PLAYERS}} +rcon.password \"{{RCON_PASS}}\" +server.saveinterval {{SAVEINTERVAL}} +app.port {{APP_PORT}} {{ADDITIONAL_ARGS}}",
            "java -Xms128M -Xmx{{SERVER_MEMORY}}M -Dterminal.jline=false -Dterminal.ansi=true -jar {{SERVER_JARFILE}}",
            "if [[ -d .git ]] && [[ {{AUTO_UPDATE}} == \"1\" ]]; then git pull; fi; if [[ ! -z ${NODE_PACKAGES} ]]; then /usr/local/bin/npm install ${NODE_PACKAGES}; fi",
            "export WINEDLLOVERRIDES=\"mscoree=n,b;mshtml=n,b\"; wine /home/container/x.exe -path Z:\\home\\container\\config -console",
        ];
        for text in startups {
            if let Err(e) = render_shell(text, &ctx) {
                panic!("{text}: {}", e.message());
            }
        }
    }
}
