//! OpenTelemetry export, when `telemetry.otlp_endpoint` is set: herald's spans (accept,
//! store, claim, attempt) go over OTLP/HTTP (protobuf) to `{endpoint}/v1/traces`, in batches
//! from a thread of their own. Unset, none of this is built.

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// The exporter, kept to flush what is left when herald stops.
pub(crate) struct Export {
    provider: SdkTracerProvider,
}

impl Export {
    /// Starts exporting to `endpoint` (`http://host:4318`); the layer that turns herald's
    /// tracing spans into OpenTelemetry spans.
    pub(crate) fn start<S>(
        endpoint: &str,
    ) -> anyhow::Result<(
        Export,
        tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
    )>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        // rustls needs one process-wide crypto provider, for https endpoints.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
            .build()
            .with_context(|| format!("cannot export spans to {endpoint}"))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name("herald").build())
            .build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("herald"));
        herald_delivery::trace::enable();
        Ok((Export { provider }, layer))
    }

    /// Sends what is still buffered.
    pub(crate) fn finish(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("herald: the last spans were not exported: {e}");
        }
    }
}
