//! Just enough PromQL for the checks: the vector selectors inside an
//! expression, and URL encoding of a query.

/// Aggregations, operators and other words that are never metric names.
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
];

/// Words followed by a parenthesised label list, not an expression.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The vector selectors of `expr` as written (`metric{matchers}` or
/// `metric`), in order of appearance.
pub fn selectors(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '[' {
            i = skip_to(&chars, i, ']');
        } else if c == '{' {
            // A selector without a metric name: {__name__="x"}.
            let end = skip_block(&chars, i);
            out.push(chars[i..end].iter().collect());
            i = end;
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = next_non_space(&chars, i);
            if LABEL_LISTS.contains(&word.as_str()) {
                if next.map(|n| chars[n]) == Some('(') {
                    i = skip_to(&chars, next.unwrap_or(i), ')');
                }
            } else if KEYWORDS.contains(&word.as_str()) || next.map(|n| chars[n]) == Some('(') {
                // An aggregation, operator or function call.
            } else if let Some(n) = next.filter(|&n| chars[n] == '{') {
                let end = skip_block(&chars, n);
                out.push(format!(
                    "{word}{}",
                    chars[n..end].iter().collect::<String>()
                ));
                i = end;
            } else {
                out.push(word);
            }
        } else {
            i += 1;
        }
    }
    out
}

fn next_non_space(chars: &[char], mut i: usize) -> Option<usize> {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    (i < chars.len()).then_some(i)
}

/// The index after the string literal that starts at `i`.
fn skip_string(chars: &[char], i: usize) -> usize {
    let quote = chars[i];
    let mut j = i + 1;
    while j < chars.len() && chars[j] != quote {
        if chars[j] == '\\' && quote != '`' {
            j += 1;
        }
        j += 1;
    }
    (j + 1).min(chars.len())
}

/// The index after the first `close` from `i` on.
fn skip_to(chars: &[char], i: usize, close: char) -> usize {
    let mut j = i;
    while j < chars.len() && chars[j] != close {
        j += 1;
    }
    (j + 1).min(chars.len())
}

/// The index after the `}` that closes the block at `i`, strings skipped.
fn skip_block(chars: &[char], i: usize) -> usize {
    let mut j = i + 1;
    while j < chars.len() && chars[j] != '}' {
        if "\"'`".contains(chars[j]) {
            j = skip_string(chars, j);
        } else {
            j += 1;
        }
    }
    (j + 1).min(chars.len())
}

#[cfg(test)]
mod tests {
    use super::selectors;

    #[test]
    fn finds_selectors_and_skips_label_lists_functions_and_strings() {
        let expr = r#"(container_memory_working_set_bytes / container_memory_limit_bytes > 0.9)
          and (container_memory_limit_bytes{a="}x"} < on(instance, job) group_left()
          max by(instance, job) (container_memory_limit_bytes[5m] offset 1m))
          or vector(0) unless sum without (cpu) (rate(x_total{job=~"a|b"}[1m])) > bool 2e3"#;
        assert_eq!(
            selectors(expr),
            vec![
                "container_memory_working_set_bytes",
                "container_memory_limit_bytes",
                r#"container_memory_limit_bytes{a="}x"}"#,
                "container_memory_limit_bytes",
                r#"x_total{job=~"a|b"}"#,
            ]
        );
        assert_eq!(
            selectors(r#"{__name__="up"} == 0"#),
            vec![r#"{__name__="up"}"#]
        );
        assert_eq!(
            selectors("time() - container_last_seen"),
            vec!["container_last_seen"]
        );
    }
}
