//! Logs (tracing) and Prometheus metrics.
use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web, Error,
};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub fn init_tracing() {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_env("LOUPE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let _ = fmt().with_env_filter(filter).with_target(false).try_init();
}

/// The counters and histograms loupe exports at `/metrics`.
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_latency: HistogramVec,
    pub labels: IntCounter,
    pub trainings: IntCounterVec,
    pub training_seconds: HistogramVec,
    pub predictions: IntCounterVec,
    pub queue_size: IntGaugeVec,
    pub schedule_ticks: IntCounterVec,
    /// When `queue_size` was last counted.
    items_counted_at: Mutex<Option<Instant>>,
    /// Requests answered lately, for [`Metrics::serving`], in whole
    /// seconds since `started`.
    traffic: Mutex<Traffic>,
    started: Instant,
}

/// Requests counted per whole second since start: this second's and the
/// one before.
#[derive(Default)]
struct Traffic {
    second: u64,
    this: u32,
    before: u32,
}

/// Requests in the current and the previous second from which the server
/// counts as serving people or services ([`Metrics::serving`]): annotators
/// at work send hundreds; an admin's clicks or a script's imports, a few.
const SERVING_REQUESTS: u32 = 20;

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new("loupe_http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_latency = HistogramVec::new(
            HistogramOpts::new("loupe_http_request_duration_seconds", "HTTP latency").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
                ],
            ),
            &["method", "route"],
        )
        .expect("valid metric");
        let labels = IntCounter::new("loupe_labels_total", "labels recorded").expect("valid");
        let trainings = IntCounterVec::new(
            Opts::new("loupe_trainings_total", "trainings finished, by outcome"),
            &["outcome", "trigger"],
        )
        .expect("valid metric");
        let training_seconds = HistogramVec::new(
            HistogramOpts::new("loupe_training_duration_seconds", "fit + rescore time").buckets(
                vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0],
            ),
            &["phase"],
        )
        .expect("valid metric");
        let predictions = IntCounterVec::new(
            Opts::new("loupe_predictions_total", "predictions served, by route"),
            &["route"],
        )
        .expect("valid metric");
        let queue_size = IntGaugeVec::new(
            Opts::new("loupe_items", "items per project and status"),
            &["project", "status"],
        )
        .expect("valid metric");
        let schedule_ticks = IntCounterVec::new(
            Opts::new(
                "loupe_schedule_ticks_total",
                "cron ticks fired here: claimed by this replica or by another one",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        for c in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_latency.clone()),
            Box::new(labels.clone()),
            Box::new(trainings.clone()),
            Box::new(training_seconds.clone()),
            Box::new(predictions.clone()),
            Box::new(queue_size.clone()),
            Box::new(schedule_ticks.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Metrics {
            registry,
            http_requests,
            http_latency,
            labels,
            trainings,
            training_seconds,
            predictions,
            queue_size,
            schedule_ticks,
            items_counted_at: Mutex::new(None),
            traffic: Mutex::default(),
            started: Instant::now(),
        }
    }

    /// Counts a request toward [`Metrics::serving`].
    fn count_request(&self, now: Instant) {
        let second = now.duration_since(self.started).as_secs();
        let mut t = self.traffic.lock().expect("traffic lock");
        // A request that began before the newest one counted goes into the
        // current second.
        if second > t.second {
            t.before = if second == t.second + 1 { t.this } else { 0 };
            t.this = 0;
            t.second = second;
        }
        t.this += 1;
    }

    /// Whether requests keep coming: at least [`SERVING_REQUESTS`] in this
    /// second and the one before. Background fits then leave a core to
    /// them ([`crate::training`]).
    pub fn serving(&self) -> bool {
        let second = Instant::now().duration_since(self.started).as_secs();
        let t = self.traffic.lock().expect("traffic lock");
        let recent = match second.saturating_sub(t.second) {
            0 => t.this + t.before,
            1 => t.this,
            _ => 0,
        };
        recent >= SERVING_REQUESTS
    }

    /// Whether `queue_size` is due to be counted again (at most once per
    /// `every`); a `true` answer claims the count, so concurrent scrapes
    /// share one.
    pub fn item_counts_due(&self, every: Duration) -> bool {
        let mut at = self.items_counted_at.lock().expect("metrics lock");
        let now = Instant::now();
        if at.is_some_and(|t| now.duration_since(t) < every) {
            return false;
        }
        *at = Some(now);
        true
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding never fails");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Requests slower than this are logged (at debug level).
const SLOW_REQUEST: Duration = Duration::from_millis(50);

/// Middleware: counts requests and their latency by route pattern (not by
/// raw path, so ids do not explode the label space).
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let metrics = req.app_data::<web::Data<crate::state::AppState>>().cloned();
    let res = next.call(req).await;
    if let Some(state) = metrics {
        // Scrapes and health checks are not people or services at work.
        if !matches!(route.as_str(), "/metrics" | "/healthz") {
            state.metrics.count_request(start);
        }
        let status = match &res {
            Ok(r) => r.status().as_u16(),
            Err(e) => e.as_response_error().status_code().as_u16(),
        };
        let m = &state.metrics;
        m.http_requests
            .with_label_values(&[method.as_str(), route.as_str(), &status.to_string()])
            .inc();
        let took = start.elapsed();
        m.http_latency
            .with_label_values(&[method.as_str(), route.as_str()])
            .observe(took.as_secs_f64());
        if took > SLOW_REQUEST {
            tracing::debug!(
                method,
                route,
                status,
                ms = took.as_secs_f64() * 1e3,
                "slow request"
            );
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_means_a_steady_stream_of_requests() {
        let m = Metrics::new();
        assert!(!m.serving());
        for _ in 0..SERVING_REQUESTS - 1 {
            m.count_request(Instant::now());
        }
        assert!(!m.serving(), "a few requests are not traffic");
        m.count_request(Instant::now());
        assert!(m.serving());
        // A slow request that began a second earlier does not reset them.
        let busy = Metrics::new();
        for _ in 0..SERVING_REQUESTS {
            busy.count_request(busy.started + Duration::from_secs(3));
        }
        busy.count_request(busy.started + Duration::from_secs(2));
        assert_eq!(busy.traffic.lock().unwrap().this, SERVING_REQUESTS + 1);
        // Counted five seconds into a server's life, read three later.
        let old = Metrics {
            started: Instant::now() - Duration::from_secs(8),
            ..Metrics::new()
        };
        for _ in 0..100 {
            old.count_request(old.started + Duration::from_secs(5));
        }
        assert!(!old.serving(), "old requests still count");
    }
}
