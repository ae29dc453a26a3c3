//! The part of Go's `text/template` that pipelines use with `skopeo inspect --format`.
//!
//! (Longer than most files, on purpose: the lexer, parser and evaluator of this one small
//! language share their node types and are read together; their tests are in `tests.rs`.)
//!
//! skopeo formats through containers/common's `report` package: the format is normalised
//! (`\t` and `\n` written as two characters become a tab and a newline; a newline is added
//! unless the format ends with one), then executed as a Go template. `json`, `{{json .}}` and
//! `{{ json }}` alone mean "print the default indented JSON".
//!
//! Supported: text; `{{.}}`; field chains `{{.Name}}`, `{{.Config.Labels}}` (a map key works as
//! a field); string, raw-string and integer literals; pipelines `{{.RepoTags | json}}`;
//! the functions `json` (compact, HTML not escaped), `index`, `len`, `join`, `lower`, `upper`;
//! `{{range …}}…{{else}}…{{end}}`, `{{if …}}…{{else}}…{{end}}`; comments `{{/* … */}}`; trim
//! markers `{{-` and `-}}`. Anything else (variables, `with`, `define`, parentheses, other
//! functions) is refused with an "unsupported template" error before anything is printed.

use super::govalue::GoValue;

/// Whether `--format` asks for the default JSON output (containers/common's `report.IsJSON`).
pub fn is_json_format(format: &str) -> bool {
    let t = format.trim();
    if t == "json" {
        return true;
    }
    let Some(inner) = t.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) else {
        return false;
    };
    // `{{\s*json *\.?\s*}}`
    let inner = inner.trim_start();
    let Some(rest) = inner.strip_prefix("json") else {
        return false;
    };
    let rest = rest.trim_start_matches(' ');
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    rest.trim().is_empty()
}

/// containers/common's `NormalizeFormat`: `\t`/`\n` escapes, and a final newline.
pub fn normalize_format(format: &str) -> String {
    let mut f = format.replace("\\t", "\t").replace("\\n", "\n");
    if !f.ends_with('\n') {
        f.push('\n');
    }
    f
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    If(Pipeline, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone)]
struct Pipeline(Vec<Command>);

#[derive(Debug, Clone)]
enum Command {
    Operand(Operand),
    Func(Func, Vec<Operand>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Json,
    Index,
    Len,
    Join,
    Lower,
    Upper,
}

#[derive(Debug, Clone)]
enum Operand {
    /// `.` followed by zero or more field names.
    Dot(Vec<String>),
    Str(String),
    Int(i64),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Dot(Vec<String>),
    Ident(String),
    Str(String),
    Int(i64),
    Pipe,
}

/// Why a template cannot be used.
fn unsupported(what: impl std::fmt::Display) -> TemplateError {
    TemplateError::Parse(format!(
        "unsupported template: {what} (ferry supports fields, index, json, len, join, lower, upper, range and if)"
    ))
}

/// A [`TemplateError::Parse`].
fn parse_error(why: impl Into<String>) -> TemplateError {
    TemplateError::Parse(why.into())
}

/// A [`TemplateError::Execute`].
fn exec_error(why: impl Into<String>) -> TemplateError {
    TemplateError::Execute(why.into())
}

/// A `--format` template that cannot be parsed, or fails on the data (Go's `text/template`
/// words where ferry follows them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template's text is not a template ferry can run.
    #[error("{0}")]
    Parse(String),
    /// Running it on the data failed.
    #[error("{0}")]
    Execute(String),
}

impl Template {
    /// Parse a (normalised) template.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let pieces = split(text)?;
        let mut pos = 0;
        let (nodes, end) = parse_list(&pieces, &mut pos)?;
        match end {
            Stop::Eof => Ok(Template { nodes }),
            Stop::End => Err(parse_error("template: unexpected {{end}}")),
            Stop::Else => Err(parse_error("template: unexpected {{else}}")),
        }
    }

    /// Execute against `data`.
    pub fn execute(&self, data: &GoValue) -> Result<String, TemplateError> {
        let mut out = String::new();
        exec_list(&self.nodes, data, &mut out)?;
        Ok(out)
    }
}

/// A piece of the source: text, or the tokens of one action.
#[derive(Debug)]
enum Piece {
    Text(String),
    Action(Vec<Token>),
}

/// Split into text and actions, applying trim markers and dropping comments.
fn split(text: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = text;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut before = &rest[..open];
        if trim_next {
            before = before.trim_start();
        }
        let after_open = &rest[open + 2..];
        let trim_left = after_open.starts_with("- ")
            || after_open.starts_with("-\t")
            || after_open.starts_with("-\n");
        if trim_left {
            before = before.trim_end();
        }
        if !before.is_empty() {
            pieces.push(Piece::Text(before.to_string()));
        }
        let body_start = if trim_left { 2 } else { 0 };
        let body_and_rest = &after_open[body_start..];
        let close = find_close(body_and_rest)
            .ok_or_else(|| parse_error("template: unclosed action (missing }})"))?;
        let mut body = &body_and_rest[..close];
        trim_next = false;
        if body.ends_with(" -") || body.ends_with("\t-") || body.ends_with("\n-") {
            body = &body[..body.len() - 1];
            trim_next = true;
        }
        rest = &body_and_rest[close + 2..];
        let trimmed = body.trim();
        if trimmed.starts_with("/*") {
            if !trimmed.ends_with("*/") {
                return Err(parse_error("template: unclosed comment"));
            }
            continue;
        }
        pieces.push(Piece::Action(lex(trimmed)?));
    }
    let mut last = rest;
    if trim_next {
        last = last.trim_start();
    }
    if !last.is_empty() {
        pieces.push(Piece::Text(last.to_string()));
    }
    Ok(pieces)
}

/// The position of the `}}` closing an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn lex(action: &str) -> Result<Vec<Token>, TemplateError> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = action.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '|' => {
                tokens.push(Token::Pipe);
                i += 1;
            }
            '.' => {
                let mut fields = Vec::new();
                i += 1;
                loop {
                    let start = i;
                    while i < chars.len() && is_ident_char(chars[i]) {
                        i += 1;
                    }
                    if i > start {
                        fields.push(chars[start..i].iter().collect());
                    }
                    if i < chars.len() && chars[i] == '.' && i > start {
                        i += 1;
                        continue;
                    }
                    break;
                }
                if i < chars.len() && !matches!(chars[i], ' ' | '\t' | '\n' | '\r' | '|') {
                    return Err(unsupported(format!("{:?} in {{{{{action}}}}}", chars[i])));
                }
                tokens.push(Token::Dot(fields));
            }
            '"' => {
                let start = i;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(parse_error("template: unterminated quoted string"));
                }
                let lit: String = chars[start..=i].iter().collect();
                let s: String = serde_json::from_str(&lit)
                    .map_err(|_| parse_error(format!("template: bad string literal {lit}")))?;
                tokens.push(Token::Str(s));
                i += 1;
            }
            '`' => {
                let start = i + 1;
                i += 1;
                while i < chars.len() && chars[i] != '`' {
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(parse_error("template: unterminated raw string"));
                }
                tokens.push(Token::Str(chars[start..i].iter().collect()));
                i += 1;
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                let lit: String = chars[start..i].iter().collect();
                let n = lit
                    .parse::<i64>()
                    .map_err(|_| unsupported(format!("number {lit:?}")))?;
                tokens.push(Token::Int(n));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                tokens.push(Token::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(unsupported(format!("{other:?} in {{{{{action}}}}}"))),
        }
    }
    Ok(tokens)
}

enum Stop {
    Eof,
    End,
    Else,
}

fn parse_list(pieces: &[Piece], pos: &mut usize) -> Result<(Vec<Node>, Stop), TemplateError> {
    let mut nodes = Vec::new();
    while *pos < pieces.len() {
        let piece = &pieces[*pos];
        *pos += 1;
        match piece {
            Piece::Text(t) => nodes.push(Node::Text(t.clone())),
            Piece::Action(tokens) => match tokens.first() {
                None => return Err(parse_error("template: empty action {{}}")),
                Some(Token::Ident(k)) if k == "end" && tokens.len() == 1 => {
                    return Ok((nodes, Stop::End));
                }
                Some(Token::Ident(k)) if k == "else" && tokens.len() == 1 => {
                    return Ok((nodes, Stop::Else));
                }
                Some(Token::Ident(k)) if k == "range" || k == "if" => {
                    let pipe = parse_pipeline(&tokens[1..])?;
                    let (body, end) = parse_list(pieces, pos)?;
                    let alt = match end {
                        Stop::End => vec![],
                        Stop::Else => match parse_list(pieces, pos)? {
                            (alt, Stop::End) => alt,
                            _ => {
                                return Err(parse_error(format!(
                                    "template: {{{{{k}}}}} without {{{{end}}}}"
                                )));
                            }
                        },
                        Stop::Eof => {
                            return Err(parse_error(format!(
                                "template: {{{{{k}}}}} without {{{{end}}}}"
                            )));
                        }
                    };
                    nodes.push(if k == "range" {
                        Node::Range(pipe, body, alt)
                    } else {
                        Node::If(pipe, body, alt)
                    });
                }
                _ => nodes.push(Node::Action(parse_pipeline(tokens)?)),
            },
        }
    }
    Ok((nodes, Stop::Eof))
}

fn func_named(name: &str) -> Option<Func> {
    Some(match name {
        "json" => Func::Json,
        "index" => Func::Index,
        "len" => Func::Len,
        "join" => Func::Join,
        "lower" => Func::Lower,
        "upper" => Func::Upper,
        _ => return None,
    })
}

fn parse_pipeline(tokens: &[Token]) -> Result<Pipeline, TemplateError> {
    if tokens.is_empty() {
        return Err(parse_error("template: missing value in action"));
    }
    let mut cmds = Vec::new();
    for part in tokens.split(|t| *t == Token::Pipe) {
        let Some((first, args)) = part.split_first() else {
            return Err(parse_error("template: missing command in pipeline"));
        };
        let operand = |t: &Token| -> Result<Operand, TemplateError> {
            match t {
                Token::Dot(f) => Ok(Operand::Dot(f.clone())),
                Token::Str(s) => Ok(Operand::Str(s.clone())),
                Token::Int(n) => Ok(Operand::Int(*n)),
                Token::Ident(i) => Err(unsupported(format!("{i:?} as an argument"))),
                Token::Pipe => unreachable!("split at pipes"),
            }
        };
        match first {
            Token::Ident(name) => {
                let f = func_named(name)
                    .ok_or_else(|| unsupported(format!("function or keyword {name:?}")))?;
                let args = args.iter().map(operand).collect::<Result<Vec<_>, _>>()?;
                cmds.push(Command::Func(f, args));
            }
            other => {
                if !args.is_empty() {
                    return Err(parse_error(format!(
                        "template: can't give arguments to a non-function {:?}",
                        token_text(other)
                    )));
                }
                cmds.push(Command::Operand(operand(other)?));
            }
        }
    }
    if matches!(cmds.first(), Some(Command::Func(_, a)) if a.is_empty()) && cmds.len() == 1 {
        // e.g. `{{json}}` alone: Go fails at execution ("wrong number of args"); refuse early.
        return Err(parse_error("template: function called without arguments"));
    }
    Ok(Pipeline(cmds))
}

fn token_text(t: &Token) -> String {
    match t {
        Token::Dot(f) => format!(".{}", f.join(".")),
        Token::Ident(i) => i.clone(),
        Token::Str(s) => format!("{s:?}"),
        Token::Int(n) => n.to_string(),
        Token::Pipe => "|".into(),
    }
}

fn exec_list(nodes: &[Node], dot: &GoValue, out: &mut String) -> Result<(), TemplateError> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => out.push_str(&eval_pipeline(p, dot)?.fmt_print()),
            Node::If(p, body, alt) => {
                if eval_pipeline(p, dot)?.truthy() {
                    exec_list(body, dot, out)?;
                } else {
                    exec_list(alt, dot, out)?;
                }
            }
            Node::Range(p, body, alt) => {
                let v = eval_pipeline(p, dot)?;
                let items: Vec<GoValue> = match v {
                    GoValue::List(l) => l.unwrap_or_default(),
                    GoValue::Map(m) => m.unwrap_or_default().into_values().collect(),
                    GoValue::Int(n) if n >= 0 => (0..n).map(GoValue::Int).collect(),
                    other => {
                        return Err(exec_error(format!(
                            "template: range can't iterate over {}",
                            other.type_name()
                        )));
                    }
                };
                if items.is_empty() {
                    exec_list(alt, dot, out)?;
                }
                for item in &items {
                    exec_list(body, item, out)?;
                }
            }
        }
    }
    Ok(())
}

fn eval_operand(o: &Operand, dot: &GoValue) -> Result<GoValue, TemplateError> {
    match o {
        Operand::Str(s) => Ok(GoValue::Str(s.clone())),
        Operand::Int(n) => Ok(GoValue::Int(*n)),
        Operand::Dot(fields) => {
            let mut v = dot.clone();
            for f in fields {
                v = match v.field(f) {
                    Some(x) => x,
                    None if matches!(v, GoValue::Nil) => {
                        return Err(exec_error(format!("template: nil pointer evaluating .{f}")));
                    }
                    None => {
                        return Err(exec_error(format!(
                            "template: can't evaluate field {f} in type {}",
                            v.type_name()
                        )));
                    }
                };
            }
            Ok(v)
        }
    }
}

fn eval_pipeline(p: &Pipeline, dot: &GoValue) -> Result<GoValue, TemplateError> {
    let mut prev: Option<GoValue> = None;
    for cmd in &p.0 {
        let v = match cmd {
            Command::Operand(o) => {
                if prev.is_some() {
                    return Err(exec_error("template: can't give argument to non-function"));
                }
                eval_operand(o, dot)?
            }
            Command::Func(f, args) => {
                let mut vals = args
                    .iter()
                    .map(|a| eval_operand(a, dot))
                    .collect::<Result<Vec<_>, _>>()?;
                if let Some(p) = prev.take() {
                    vals.push(p);
                }
                call(*f, vals)?
            }
        };
        prev = Some(v);
    }
    Ok(prev.expect("a pipeline has at least one command"))
}

fn want_args(name: &str, args: &[GoValue], n: usize) -> Result<(), TemplateError> {
    if args.len() != n {
        return Err(exec_error(format!(
            "template: wrong number of args for {name}: want {n} got {}",
            args.len()
        )));
    }
    Ok(())
}

fn want_str<'a>(name: &str, v: &'a GoValue) -> Result<&'a str, TemplateError> {
    match v {
        GoValue::Str(s) => Ok(s),
        other => Err(exec_error(format!(
            "template: {name}: expected string, got {}",
            other.type_name()
        ))),
    }
}

fn call(f: Func, args: Vec<GoValue>) -> Result<GoValue, TemplateError> {
    match f {
        Func::Json => {
            want_args("json", &args, 1)?;
            Ok(GoValue::Str(args[0].to_json_compact()))
        }
        Func::Lower | Func::Upper => {
            let name = if f == Func::Lower { "lower" } else { "upper" };
            want_args(name, &args, 1)?;
            let s = want_str(name, &args[0])?;
            Ok(GoValue::Str(if f == Func::Lower {
                s.to_lowercase()
            } else {
                s.to_uppercase()
            }))
        }
        Func::Len => {
            want_args("len", &args, 1)?;
            let n = match &args[0] {
                GoValue::Str(s) => s.len(),
                GoValue::List(l) => l.as_ref().map_or(0, Vec::len),
                GoValue::Map(m) => m.as_ref().map_or(0, |m| m.len()),
                other => {
                    return Err(exec_error(format!(
                        "template: len of {}",
                        other.type_name()
                    )));
                }
            };
            Ok(GoValue::Int(n as i64))
        }
        Func::Join => {
            want_args("join", &args, 2)?;
            let items = match &args[0] {
                GoValue::List(l) => l
                    .iter()
                    .flatten()
                    .map(|v| want_str("join", v).map(str::to_string))
                    .collect::<Result<Vec<_>, _>>()?,
                other => {
                    return Err(exec_error(format!(
                        "template: join: expected a list of strings, got {}",
                        other.type_name()
                    )));
                }
            };
            let sep = want_str("join", &args[1])?;
            Ok(GoValue::Str(items.join(sep)))
        }
        Func::Index => {
            let Some((first, keys)) = args.split_first() else {
                return Err(exec_error(
                    "template: wrong number of args for index: want at least 1 got 0",
                ));
            };
            let mut v = first.clone();
            for k in keys {
                v = match (&v, k) {
                    (GoValue::Map(m), GoValue::Str(key)) => m
                        .as_ref()
                        .and_then(|m| m.get(key).cloned())
                        .unwrap_or(GoValue::Str(String::new())),
                    (GoValue::List(l), GoValue::Int(i)) => {
                        let l = l.as_deref().unwrap_or_default();
                        usize::try_from(*i)
                            .ok()
                            .and_then(|i| l.get(i).cloned())
                            .ok_or_else(|| {
                                exec_error(format!("template: index out of range: {i}"))
                            })?
                    }
                    (v, k) => {
                        return Err(exec_error(format!(
                            "template: can't index item of type {} with {}",
                            v.type_name(),
                            k.type_name()
                        )));
                    }
                };
            }
            Ok(v)
        }
    }
}

/// Parse `format` as skopeo would (after normalising) and execute it on `data`.
pub fn render(format: &str, data: &GoValue) -> Result<String, TemplateError> {
    Template::parse(&normalize_format(format))?.execute(data)
}

#[cfg(test)]
mod tests;
