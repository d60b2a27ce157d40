// Sends one trace of two spans with the OpenTelemetry JS SDK's OTLP/gRPC exporter, configured only by
// OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_HEADERS as a Node service would be; prints the trace id.
const { NodeTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-node');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
const { resourceFromAttributes } = require('@opentelemetry/resources');

async function main() {
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': process.env.OTEL_SERVICE_NAME || 'frontend-node' }),
    spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register(); // the context manager that makes startActiveSpan's span the child's parent
  const tracer = provider.getTracer('node-export');
  let traceId;
  tracer.startActiveSpan('GET /api/activities/home', (root) => {
    traceId = root.spanContext().traceId;
    root.setAttribute('http.status_code', 200);
    tracer.startActiveSpan('render', (child) => {
      child.setAttribute('app.items', 3);
      child.end();
    });
    root.end();
  });
  await provider.forceFlush();
  await provider.shutdown();
  console.log(traceId);
}

main().catch((err) => { console.error(err); process.exit(1); });
