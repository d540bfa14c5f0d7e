//! Which exposition format a scraper gets, from its `Accept` header.

/// The text formats `/metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` header rates it above zero and at least
    /// as high as the classic text format (Prometheus asks
    /// `application/openmetrics-text;version=1.0.0,...,text/plain;version=0.0.4;q=0.5,*/*;q=0.1`);
    /// the classic text format otherwise, and without a header.
    pub fn from_accept(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return Format::Prometheus;
        };
        let (mut openmetrics, mut text) = (0.0_f32, 0.0_f32);
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(0.0));
            let q = if q.is_finite() {
                q.clamp(0.0, 1.0)
            } else {
                0.0
            };
            match media.as_str() {
                "application/openmetrics-text" => openmetrics = openmetrics.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_own_accept_header_gets_openmetrics() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::from_accept(Some(prom)), Format::OpenMetrics);
    }

    #[test]
    fn openmetrics_refused_with_q_zero_gets_the_text_format() {
        let refused = "application/openmetrics-text;q=0,text/plain;version=0.0.4";
        assert_eq!(Format::from_accept(Some(refused)), Format::Prometheus);
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text; q=0.0")),
            Format::Prometheus
        );
    }

    #[test]
    fn preference_follows_q_values() {
        let text_first = "text/plain;q=0.9,application/openmetrics-text;q=0.5";
        assert_eq!(Format::from_accept(Some(text_first)), Format::Prometheus);
        let om_first = "text/plain;q=0.5,Application/OpenMetrics-Text;q=0.9";
        assert_eq!(Format::from_accept(Some(om_first)), Format::OpenMetrics);
        assert_eq!(Format::from_accept(None), Format::Prometheus);
        assert_eq!(Format::from_accept(Some("*/*")), Format::Prometheus);
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;q=nonsense")),
            Format::Prometheus
        );
    }
}
