//! A Grafana dashboard's PromQL as Grafana would send it: every panel
//! target's `expr` (rows and nested panels included), the template
//! variables' `label_values(...)` queries, and variable substitution.

use std::collections::HashMap;

use serde_json::Value;

/// Grafana's global variables, as Grafana would expand them for a short
/// range over a 2 s scrape interval.
const GLOBALS: &[(&str, &str)] = &[
    ("__rate_interval", "10s"),
    ("__interval", "2s"),
    ("__range", "5m"),
    ("__interval_ms", "2000"),
    ("__range_s", "300"),
    ("__range_ms", "300000"),
];

/// One panel target.
#[derive(Debug, Clone)]
pub struct Target {
    /// Panel title and refId, for messages.
    pub place: String,
    /// The expression as written in the dashboard.
    pub expr: String,
}

/// One `query` template variable.
#[derive(Debug, Clone)]
pub struct Variable {
    /// Its name (`$name` in expressions).
    pub name: String,
    /// `label_values(selector, label)`: the selector, if any.
    pub selector: Option<String>,
    /// `label_values(selector, label)`: the label.
    pub label: String,
    /// Whether "All" can be chosen, and the value it stands for.
    pub all_value: Option<String>,
}

/// Every panel target with an expression.
pub fn targets(dashboard: &Value) -> Vec<Target> {
    let mut out = Vec::new();
    collect_targets(&dashboard["panels"], &mut out);
    out
}

fn collect_targets(panels: &Value, out: &mut Vec<Target>) {
    for panel in panels.as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str().filter(|e| !e.trim().is_empty()) {
                out.push(Target {
                    place: format!(
                        "panel {:?} target {}",
                        panel["title"].as_str().unwrap_or(""),
                        target["refId"].as_str().unwrap_or("?")
                    ),
                    expr: expr.to_string(),
                });
            }
        }
        collect_targets(&panel["panels"], out);
    }
}

/// The `query` variables, in order; panics on a query other than
/// `label_values(...)`, which this check does not know how to resolve.
pub fn variables(dashboard: &Value) -> Vec<Variable> {
    let list = dashboard["templating"]["list"].as_array().cloned();
    let mut out = Vec::new();
    for var in list.into_iter().flatten() {
        if var["type"] != "query" {
            continue;
        }
        let name = var["name"].as_str().unwrap_or("").to_string();
        let query = var["query"]["query"]
            .as_str()
            .or(var["query"].as_str())
            .unwrap_or("")
            .trim();
        let args = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {name}: not a label_values() query: {query}"));
        let (selector, label) = match args.rsplit_once(',') {
            Some((sel, label)) => (Some(sel.trim().to_string()), label.trim().to_string()),
            None => (None, args.trim().to_string()),
        };
        let all_value = (var["includeAll"] == true)
            .then(|| var["allValue"].as_str().unwrap_or(".*").to_string());
        out.push(Variable {
            name,
            selector,
            label,
            all_value,
        });
    }
    out
}

/// `expr` with `$var`, `${var}`, `${var:format}` and `[[var]]` replaced by
/// `values` or Grafana's globals; an error names a variable it lacks.
pub fn substitute(expr: &str, values: &HashMap<String, String>) -> Result<String, String> {
    let lookup = |name: &str| -> Result<String, String> {
        values
            .get(name)
            .cloned()
            .or_else(|| {
                GLOBALS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            })
            .ok_or_else(|| format!("undefined variable ${name} in {expr}"))
    };
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut rest = expr;
    while let Some(pos) = rest.find(['$', '[']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(inner) = tail.strip_prefix("${") {
            let end = inner
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {expr}"))?;
            let name = inner[..end].split(':').next().unwrap_or("");
            out.push_str(&lookup(name)?);
            rest = &inner[end + 1..];
        } else if let Some(inner) = tail.strip_prefix("[[") {
            let end = inner
                .find("]]")
                .ok_or_else(|| format!("unclosed [[ in {expr}"))?;
            let name = inner[..end].split(':').next().unwrap_or("");
            out.push_str(&lookup(name)?);
            rest = &inner[end + 2..];
        } else if tail.starts_with('$') && tail[1..].starts_with(is_name) {
            let len = tail[1..]
                .find(|c: char| !is_name(c))
                .unwrap_or(tail.len() - 1);
            out.push_str(&lookup(&tail[1..1 + len])?);
            rest = &tail[1 + len..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A single value as Grafana puts it into a regex matcher: regex
/// metacharacters escaped (with PromQL's string escaping doubled).
pub fn regex_escape(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push_str("\\\\");
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_every_form_and_names_what_is_missing() {
        let values = HashMap::from([("job".to_string(), "a".to_string())]);
        assert_eq!(
            substitute(
                r#"rate(x{job=~"$job",j="${job:regex}",k="[[job]]"}[$__rate_interval])"#,
                &values
            ),
            Ok(r#"rate(x{job=~"a",j="a",k="a"}[10s])"#.to_string())
        );
        assert_eq!(
            substitute("x[1m] + y[$__range]", &values),
            Ok("x[1m] + y[5m]".into())
        );
        assert!(substitute("x{a=\"$nope\"}", &values)
            .unwrap_err()
            .contains("$nope"));
        assert_eq!(regex_escape("127.0.0.1:80"), r"127\\.0\\.0\\.1:80");
    }
}
