//! Which containers a scrape exports: exact names and label selectors.

use std::collections::HashMap;
use std::fmt;

/// One label selector: comma-separated `key` or `key=value` terms that must all
/// match, as in Docker's own `label` filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelSelector {
    terms: Vec<(String, Option<String>)>,
}

impl LabelSelector {
    /// Parses `key`, `key=value` or several of them separated by commas.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for term in text.split(',') {
            let term = term.trim();
            if term.is_empty() {
                return Err(format!("empty term in label selector {text:?}"));
            }
            let (key, value) = match term.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim().to_string())),
                None => (term, None),
            };
            if key.is_empty() {
                return Err(format!("empty label key in selector {text:?}"));
            }
            terms.push((key.to_string(), value));
        }
        // The terms are ANDed: their order and repeats mean nothing, so
        // `a,a` and `b,a` select what `a` and `a,b` do.
        terms.sort();
        terms.dedup();
        Ok(Self { terms })
    }

    /// True when every term matches the container's labels.
    pub fn matches(&self, labels: &HashMap<String, String>) -> bool {
        self.terms
            .iter()
            .all(|(key, want)| match (labels.get(key), want) {
                (Some(_), None) => true,
                (Some(have), Some(want)) => have == want,
                (None, _) => false,
            })
    }

    /// The terms in the engine's `label` filter syntax.
    pub fn engine_filters(&self) -> Vec<String> {
        self.terms
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            })
            .collect()
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.engine_filters().join(","))
    }
}

/// The containers to export: those matching any name or any selector, or
/// every running container when both lists are empty. A selection narrowed
/// by an ad-hoc query also has to match the one it narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selection {
    names: Vec<String>,
    selectors: Vec<LabelSelector>,
    within: Option<Box<Selection>>,
    /// Stopped containers too, where nothing else narrows the selection
    /// (`?stopped=true`): the live view's "show stopped" switch.
    stopped: bool,
}

impl Selection {
    /// Builds a selection; names may carry the engine's leading `/`. Order
    /// and repeats are dropped, so equal selections compare equal.
    pub fn new(names: Vec<String>, mut selectors: Vec<LabelSelector>) -> Self {
        let mut names: Vec<String> = names
            .into_iter()
            .map(|n| n.trim_start_matches('/').to_string())
            .collect();
        names.sort();
        names.dedup();
        selectors.sort();
        selectors.dedup();
        Self {
            names,
            selectors,
            within: None,
            stopped: false,
        }
    }

    /// This selection with stopped containers listed too.
    pub fn with_stopped(mut self) -> Self {
        self.stopped = true;
        self
    }

    /// Whether the engine is asked for stopped containers too: an explicit
    /// selection (names or labels) shows the lifecycle of the containers it
    /// names whatever their state; `?stopped=true` asks for every one.
    pub fn lists_stopped(&self) -> bool {
        self.stopped || !self.is_all()
    }

    /// This selection, further narrowed to containers that also match
    /// `adhoc` (a scrape's `?name=` / `?label=` query). It never widens.
    pub fn narrowed_by(&self, adhoc: Selection) -> Selection {
        if adhoc.is_all() {
            let mut same = self.clone();
            same.stopped |= adhoc.stopped;
            return same;
        }
        Selection {
            within: Some(Box::new(self.clone())),
            ..adhoc
        }
    }

    /// True when nothing narrows the selection: every running container.
    pub fn is_all(&self) -> bool {
        self.names.is_empty()
            && self.selectors.is_empty()
            && self.within.as_ref().is_none_or(|w| w.is_all())
    }

    /// Whether a container with these names (as the engine lists them, with a
    /// leading `/`) and labels is selected.
    pub fn matches(&self, names: &[String], labels: &HashMap<String, String>) -> bool {
        let own = (self.names.is_empty() && self.selectors.is_empty())
            || names
                .iter()
                .map(|n| n.trim_start_matches('/'))
                .any(|n| self.names.iter().any(|want| want == n))
            || self.selectors.iter().any(|s| s.matches(labels));
        own && self
            .within
            .as_ref()
            .is_none_or(|w| w.matches(names, labels))
    }

    /// Label filters the engine can apply itself (it ANDs them). Only a lone
    /// selector can be pushed down, as the selection ORs its terms; a narrowed
    /// selection adds the filters of the one it narrows.
    pub fn engine_label_filter(&self) -> Option<Vec<String>> {
        let own = match (self.names.is_empty(), self.selectors.as_slice()) {
            (true, [only]) => Some(only.engine_filters()),
            _ => None,
        };
        let outer = self.within.as_ref().and_then(|w| w.engine_label_filter());
        match (own, outer) {
            (Some(mut a), Some(b)) => {
                a.extend(b);
                Some(a)
            }
            (a, b) => a.or(b),
        }
    }

    /// The exact names asked for.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The label selectors asked for.
    pub fn selectors(&self) -> &[LabelSelector] {
        &self.selectors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selector_terms_must_all_match() {
        let s = LabelSelector::parse("com.docker.compose.project=loadtest, tier").unwrap();
        assert!(s.matches(&labels(&[
            ("com.docker.compose.project", "loadtest"),
            ("tier", "x")
        ])));
        assert!(!s.matches(&labels(&[("com.docker.compose.project", "loadtest")])));
        assert!(!s.matches(&labels(&[
            ("com.docker.compose.project", "other"),
            ("tier", "x")
        ])));
    }

    #[test]
    fn selector_value_may_contain_equals_and_be_empty() {
        let s = LabelSelector::parse("a=b=c").unwrap();
        assert!(s.matches(&labels(&[("a", "b=c")])));
        let empty = LabelSelector::parse("a=").unwrap();
        assert!(empty.matches(&labels(&[("a", "")])));
        assert!(!empty.matches(&labels(&[("a", "x")])));
    }

    #[test]
    fn selector_rejects_empty_key_and_empty_term() {
        assert!(LabelSelector::parse("=web")
            .unwrap_err()
            .contains("empty label key"));
        assert!(LabelSelector::parse("").unwrap_err().contains("empty term"));
        assert!(LabelSelector::parse("a,,b")
            .unwrap_err()
            .contains("empty term"));
    }

    #[test]
    fn equal_selections_compare_equal_whatever_the_order_and_repeats() {
        let a = Selection::new(
            vec!["web".into(), "/db".into(), "web".into()],
            vec![LabelSelector::parse("b,a=1,a=1").unwrap()],
        );
        let b = Selection::new(
            vec!["db".into(), "web".into()],
            vec![
                LabelSelector::parse("a=1,b").unwrap(),
                LabelSelector::parse("b,a=1").unwrap(),
            ],
        );
        assert_eq!(a, b);
        assert_eq!(
            LabelSelector::parse("a,a").unwrap(),
            LabelSelector::parse("a").unwrap()
        );
    }

    #[test]
    fn name_match_is_exact_not_prefix_or_regex() {
        let sel = Selection::new(vec!["/web-1".into()], vec![]);
        let none = HashMap::new();
        assert!(sel.matches(&["/web-1".into()], &none));
        assert!(!sel.matches(&["/web-10".into()], &none));
        assert!(!sel.matches(&["/xweb-1".into()], &none));
    }

    #[test]
    fn name_or_selector_selects() {
        let sel = Selection::new(
            vec!["db".into()],
            vec![LabelSelector::parse("monitor").unwrap()],
        );
        assert!(sel.matches(&["/db".into()], &HashMap::new()));
        assert!(sel.matches(&["/other".into()], &labels(&[("monitor", "")])));
        assert!(!sel.matches(&["/other".into()], &HashMap::new()));
        assert_eq!(sel.engine_label_filter(), None);
    }

    #[test]
    fn only_a_lone_selector_is_pushed_down() {
        let one = Selection::new(vec![], vec![LabelSelector::parse("a=1,b").unwrap()]);
        assert_eq!(
            one.engine_label_filter(),
            Some(vec!["a=1".to_string(), "b".to_string()])
        );
        let two = Selection::new(
            vec![],
            vec![
                LabelSelector::parse("a").unwrap(),
                LabelSelector::parse("b").unwrap(),
            ],
        );
        assert_eq!(two.engine_label_filter(), None);
        assert!(Selection::default().is_all());
        assert!(Selection::default().matches(&[], &HashMap::new()));
    }

    #[test]
    fn adhoc_query_narrows_but_never_widens() {
        let configured = Selection::new(vec![], vec![LabelSelector::parse("team=a").unwrap()]);
        let q = configured.narrowed_by(Selection::new(vec!["web".into()], vec![]));
        assert!(q.matches(&["/web".into()], &labels(&[("team", "a")])));
        assert!(
            !q.matches(&["/web".into()], &labels(&[("team", "b")])),
            "outside config"
        );
        assert!(
            !q.matches(&["/db".into()], &labels(&[("team", "a")])),
            "not asked for"
        );
        assert_eq!(q.engine_label_filter(), Some(vec!["team=a".to_string()]));

        let q = configured.narrowed_by(Selection::new(
            vec![],
            vec![LabelSelector::parse("tier=web").unwrap()],
        ));
        assert_eq!(
            q.engine_label_filter(),
            Some(vec!["tier=web".to_string(), "team=a".to_string()])
        );
        assert_eq!(configured.narrowed_by(Selection::default()), configured);
        let all = Selection::default().narrowed_by(Selection::new(vec!["x".into()], vec![]));
        assert!(!all.is_all());
        assert!(all.matches(&["/x".into()], &HashMap::new()));
        assert!(!all.matches(&["/y".into()], &HashMap::new()));
    }
}
