//! W3C trace context through a delivery. An event accepted with a `traceparent` header keeps
//! it; each attempt to deliver it continues that trace and hands its own `traceparent` to the
//! receiver. With spans exported ([`enable`], when `telemetry.otlp_endpoint` is set), the
//! accept and each attempt are spans of the caller's trace; without, the caller's
//! `traceparent` is passed on as it came, and nothing else is done.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header.
pub const TRACEPARENT: &str = "traceparent";

static EXPORTED: AtomicBool = AtomicBool::new(false);

/// Says spans are exported: called once by whoever installs the OpenTelemetry layer.
pub fn enable() {
    EXPORTED.store(true, Ordering::Relaxed);
}

/// Whether spans are exported.
pub fn enabled() -> bool {
    EXPORTED.load(Ordering::Relaxed)
}

/// `traceparent` if it is a W3C one herald can continue: version `00`, ids not all zeros.
pub fn parse(traceparent: &str) -> Option<SpanContext> {
    let mut parts = traceparent.trim().split('-');
    let (Some("00"), Some(trace), Some(span), Some(flags), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let lower_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !(lower_hex(trace, 32) && lower_hex(span, 16) && lower_hex(flags, 2)) {
        return None;
    }
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

/// `context` as a `traceparent` header.
pub fn format(context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    )
}

/// Makes `span` (not yet entered) a child of `traceparent`, if it is valid; returns the
/// `traceparent` to hand on: the span's own while spans are exported, else the one given.
pub fn continue_in(span: &tracing::Span, traceparent: Option<&str>) -> Option<String> {
    let parent = traceparent.and_then(parse);
    if enabled() {
        if let Some(parent) = &parent {
            let _ = span.set_parent(Context::new().with_remote_span_context(parent.clone()));
        }
        let own = span.context().span().span_context().clone();
        if own.is_valid() {
            return Some(format(&own));
        }
    }
    parent.map(|p| format(&p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_as_w3c_writes_them() {
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(parse(valid).map(|c| format(&c)).as_deref(), Some(valid));
        for invalid in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // another version
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // no trace
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // no parent
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  // short
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert!(parse(invalid).is_none(), "{invalid:?}");
        }
    }

    #[test]
    fn without_export_the_callers_traceparent_passes_through() {
        let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let span = tracing::info_span!("attempt");
        assert_eq!(continue_in(&span, Some(given)).as_deref(), Some(given));
        assert_eq!(continue_in(&span, Some("garbage")), None);
        assert_eq!(continue_in(&span, None), None);
    }
}
