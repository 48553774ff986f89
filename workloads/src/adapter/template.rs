//! Templates in a database definition: text with `{{ ... }}` tags.
//!
//! - `{{ NAME }}`: a variable: `node`, `address`, `index` (0-based), `id` (1-based),
//!   `nodes` and `addresses` (comma-separated, in the cluster's order), `count`,
//!   `first_node`, `first_address`, `data_dir`, `log_dir`, `name` (the database's), and
//!   `opt.OPTION` for each option the definition declares. Paths that do not depend on the
//!   node (`logs`) may use only `data_dir`, `log_dir`, `name` and `opt.*`.
//! - `{{ for n in nodes }} ... {{ end }}`, optionally `{{ for n in nodes sep "," }}`: the body
//!   once per node, with `n.name`, `n.address`, `n.index`, `n.id`.
//! - `{{ "text" }}`: the text as it is (so `{{ "{{" }}` writes two braces).
//!
//! In commands every value is substituted shell-quoted (`http://{{address}}:2379` becomes
//! `http://'10.0.0.1':2379`, one word to the shell), so values never need quoting and must
//! not be put inside quotes; in files and paths they are substituted as they are. Unknown
//! names and malformed tags are errors at parse time, with the character where they are.

use clusters::quote;
use std::collections::BTreeMap;
use std::fmt;

/// Which variables a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything: commands and files, rendered for one node.
    Node,
    /// Only what is the same on every node (`data_dir`, `log_dir`, `name`, `opt.*`).
    Global,
}

/// The variables every node-scoped template may use.
pub const NODE_VARIABLES: &[&str] = &[
    "node",
    "address",
    "index",
    "id",
    "nodes",
    "addresses",
    "count",
    "first_node",
    "first_address",
    "data_dir",
    "log_dir",
    "name",
];

/// The variables of [`Scope::Global`] templates (and `opt.*`).
pub const GLOBAL_VARIABLES: &[&str] = &["data_dir", "log_dir", "name"];

/// The fields of a loop variable.
const NODE_FIELDS: &[&str] = &["name", "address", "index", "id"];

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Literal(String),
    Var(String),
    Field(String),
    For { sep: String, body: Vec<Part> },
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// A template error: what, and where in the template (a character offset).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template error at character {at}: {what}")]
pub struct TemplateError {
    /// The character offset of the tag, from 1.
    pub at: usize,
    /// The tag as written (`{{ n.port }}`), or the rest of the template for an open tag.
    pub tag: String,
    /// What is wrong.
    pub what: String,
}

/// The values a template is rendered with.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    /// Variables by name (`opt.NAME` included).
    pub values: BTreeMap<String, String>,
    /// Every node's name and address, in the cluster's order (for loops).
    pub nodes: Vec<(String, String)>,
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Template {
    /// Parses `source`, allowing the variables of `scope` and `opt.NAME` for `options`.
    pub fn parse(
        source: &str,
        scope: Scope,
        options: &[String],
    ) -> Result<Template, TemplateError> {
        let mut p = Parser {
            src: source,
            pos: 0,
            scope,
            options,
        };
        let (parts, end) = p.parts(None)?;
        if let Some(at) = end {
            return Err(p.err(at, "{{ end }} without a {{ for }}"));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template is empty (or only whitespace).
    pub fn is_blank(&self) -> bool {
        self.source.trim().is_empty()
    }

    /// Renders for a shell: every value single-quoted.
    pub fn shell(&self, vars: &Vars) -> String {
        render(&self.parts, vars, None, true)
    }

    /// Renders as text: values as they are.
    pub fn text(&self, vars: &Vars) -> String {
        render(&self.parts, vars, None, false)
    }
}

fn render(parts: &[Part], vars: &Vars, node: Option<usize>, shell: bool) -> String {
    let mut out = String::new();
    let put = |out: &mut String, v: &str| {
        if shell {
            out.push_str(&quote(v));
        } else {
            out.push_str(v);
        }
    };
    for part in parts {
        match part {
            Part::Text(t) | Part::Literal(t) => out.push_str(t),
            Part::Var(name) => put(
                &mut out,
                vars.values.get(name).map(String::as_str).unwrap_or(""),
            ),
            Part::Field(field) => {
                let (name, address) = node
                    .and_then(|i| vars.nodes.get(i))
                    .map(|(n, a)| (n.as_str(), a.as_str()))
                    .unwrap_or(("", ""));
                let v = match field.as_str() {
                    "name" => name.to_string(),
                    "address" => address.to_string(),
                    "index" => node.unwrap_or(0).to_string(),
                    _ => (node.unwrap_or(0) + 1).to_string(),
                };
                put(&mut out, &v);
            }
            Part::For { sep, body } => {
                for i in 0..vars.nodes.len() {
                    if i > 0 {
                        out.push_str(sep);
                    }
                    out.push_str(&render(body, vars, Some(i), shell));
                }
            }
        }
    }
    out
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    scope: Scope,
    options: &'a [String],
}

/// A loop in progress: its variable's name.
type Loop<'a> = Option<&'a str>;

impl Parser<'_> {
    fn err(&self, byte: usize, what: impl Into<String>) -> TemplateError {
        let rest = &self.src[byte..];
        let tag = match rest.find("}}") {
            Some(end) => &rest[..end + 2],
            None => rest.lines().next().unwrap_or(rest),
        };
        TemplateError {
            at: self.src[..byte].chars().count() + 1,
            tag: tag.to_string(),
            what: what.into(),
        }
    }

    /// Parts up to the end, or up to `{{ end }}` (whose position is returned).
    fn parts(&mut self, lp: Loop<'_>) -> Result<(Vec<Part>, Option<usize>), TemplateError> {
        let mut parts = Vec::new();
        loop {
            let rest = &self.src[self.pos..];
            let Some(open) = rest.find("{{") else {
                if !rest.is_empty() {
                    parts.push(Part::Text(rest.to_string()));
                }
                self.pos = self.src.len();
                return Ok((parts, None));
            };
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let tag_at = self.pos + open;
            let inner_start = tag_at + 2;
            let Some(close) = self.src[inner_start..].find("}}") else {
                return Err(self.err(tag_at, "\"{{\" without a closing \"}}\""));
            };
            let inner = self.src[inner_start..inner_start + close].trim();
            self.pos = inner_start + close + 2;
            if let Some(lit) = inner.strip_prefix('"') {
                let Some(lit) = lit.strip_suffix('"') else {
                    return Err(
                        self.err(tag_at, format!("unterminated string in {{{{ {inner} }}}}"))
                    );
                };
                parts.push(Part::Literal(lit.to_string()));
            } else if inner == "end" {
                if lp.is_none() {
                    return Err(self.err(tag_at, "{{ end }} without a {{ for }}"));
                }
                return Ok((parts, Some(tag_at)));
            } else if inner == "for" || inner.starts_with("for ") {
                parts.push(self.for_loop(tag_at, inner, lp)?);
            } else {
                parts.push(self.name(tag_at, inner, lp)?);
            }
        }
    }

    fn for_loop(&mut self, at: usize, inner: &str, lp: Loop<'_>) -> Result<Part, TemplateError> {
        if self.scope == Scope::Global {
            return Err(self.err(
                at,
                "loops over nodes are not allowed here (this path is the same on every node)",
            ));
        }
        if lp.is_some() {
            return Err(self.err(at, "loops cannot be nested"));
        }
        let words: Vec<&str> = inner.split_whitespace().collect();
        let usage = "expected {{ for VAR in nodes }} or {{ for VAR in nodes sep \"TEXT\" }}";
        let (var, sep) = match words.as_slice() {
            ["for", var, "in", "nodes"] => (*var, String::new()),
            ["for", var, "in", "nodes", "sep", ..] => {
                let after = inner
                    .split_once(" sep ")
                    .map(|(_, s)| s.trim())
                    .unwrap_or("");
                match after.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    Some(s) if after.len() >= 2 => (*var, s.to_string()),
                    _ => return Err(self.err(at, usage)),
                }
            }
            _ => return Err(self.err(at, usage)),
        };
        if !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || NODE_VARIABLES.contains(&var)
        {
            return Err(self.err(
                at,
                format!("loop variable {var:?}: expected a plain name that is not a variable"),
            ));
        }
        let (body, end) = self.parts(Some(var))?;
        if end.is_none() {
            return Err(self.err(at, "{{ for }} without an {{ end }}"));
        }
        Ok(Part::For { sep, body })
    }

    fn name(&self, at: usize, name: &str, lp: Loop<'_>) -> Result<Part, TemplateError> {
        if let Some(var) = lp {
            if let Some(field) = name.strip_prefix(var).and_then(|f| f.strip_prefix('.')) {
                if NODE_FIELDS.contains(&field) {
                    return Ok(Part::Field(field.to_string()));
                }
                return Err(self.err(
                    at,
                    format!(
                        "{var} has no field {field:?} (its fields: {})",
                        NODE_FIELDS.join(", ")
                    ),
                ));
            }
        }
        if let Some(opt) = name.strip_prefix("opt.") {
            if self.options.iter().any(|o| o == opt) {
                return Ok(Part::Var(name.to_string()));
            }
            return Err(self.err(
                at,
                format!(
                    "unknown option {opt:?} (the definition's options: {})",
                    if self.options.is_empty() {
                        "none".to_string()
                    } else {
                        self.options.join(", ")
                    }
                ),
            ));
        }
        let known = match self.scope {
            Scope::Node => NODE_VARIABLES,
            Scope::Global => GLOBAL_VARIABLES,
        };
        if known.contains(&name) {
            return Ok(Part::Var(name.to_string()));
        }
        let where_ = match self.scope {
            Scope::Node => "",
            Scope::Global => " here (this path is the same on every node)",
        };
        Err(self.err(
            at,
            format!(
                "unknown variable {name:?}{where_}: expected one of {}, opt.OPTION",
                known.join(", ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut values = BTreeMap::new();
        for (k, v) in [
            ("node", "n2"),
            ("address", "10.0.0.2"),
            ("index", "1"),
            ("id", "2"),
            ("data_dir", "/var/lib/x y"),
            ("opt.mode", "fast"),
        ] {
            values.insert(k.to_string(), v.to_string());
        }
        Vars {
            values,
            nodes: vec![
                ("n1".into(), "10.0.0.1".into()),
                ("n2".into(), "10.0.0.2".into()),
            ],
        }
    }

    #[test]
    fn renders_variables_loops_and_literals() {
        let opts = vec!["mode".to_string()];
        let t = Template::parse(
            "--name {{node}} --cluster {{ for n in nodes sep \",\" }}{{n.name}}=http://{{n.address}}:2380{{ end }} {{\"{{\"}} {{opt.mode}} {{id}}",
            Scope::Node,
            &opts,
        )
        .unwrap();
        assert_eq!(
            t.text(&vars()),
            "--name n2 --cluster n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380 {{ fast 2"
        );
        // In a shell every value is one quoted word, whatever it holds.
        let t = Template::parse("rm -rf {{data_dir}}/data", Scope::Node, &opts).unwrap();
        assert_eq!(t.shell(&vars()), "rm -rf '/var/lib/x y'/data");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(
                Template::parse("printf %s {{data_dir}}/d", Scope::Node, &[])
                    .unwrap()
                    .shell(&vars()),
            )
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "/var/lib/x y/d");
    }

    #[test]
    fn bad_templates_are_refused_where_they_are_wrong() {
        for (src, at, want) in [
            ("a {{nod}}", 3, "unknown variable \"nod\""),
            ("ab {{node", 4, "without a closing"),
            ("{{ for n in nodes }}{{n.name}}", 1, "without an {{ end }}"),
            ("x{{ end }}", 2, "without a {{ for }}"),
            (
                "{{ for n in nodes }}{{n.port}}{{ end }}",
                21,
                "no field \"port\"",
            ),
            (
                "{{ for n in nodes }}{{ for m in nodes }}{{ end }}{{ end }}",
                21,
                "nested",
            ),
            (
                "{{ for n in hosts }}{{ end }}",
                1,
                "expected {{ for VAR in nodes }}",
            ),
            ("{{opt.speed}}", 1, "unknown option \"speed\""),
            ("é{{x}}", 2, "unknown variable"),
        ] {
            let e = Template::parse(src, Scope::Node, &["mode".into()]).unwrap_err();
            assert_eq!(e.at, at, "{src}: {e}");
            assert!(e.to_string().contains(want), "{src}: {e}");
        }
        let e = Template::parse("{{data_dir}}/{{node}}.log", Scope::Global, &[]).unwrap_err();
        assert!(e.to_string().contains("same on every node"), "{e}");
        assert!(Template::parse("{{log_dir}}/x.log", Scope::Global, &[]).is_ok());
    }
}
