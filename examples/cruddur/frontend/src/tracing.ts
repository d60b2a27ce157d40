// The week-2 HARD challenge: instrument the front end so Honeycomb (here Apiary) shows the
// network latency between the browser and backend-flask, in the same trace as the backend.
import { trace, type Tracer } from '@opentelemetry/api';
import { CompositePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { AWSXRayIdGenerator } from '@opentelemetry/id-generator-aws-xray';
import { AWSXRayPropagator } from '@opentelemetry/propagator-aws-xray';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { FetchInstrumentation } from '@opentelemetry/instrumentation-fetch';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  WebTracerProvider,
  type ReadableSpan,
  type Span,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-web';
import type { Context } from '@opentelemetry/api';
import type { CruddurConfig } from './config';

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A BatchSpanProcessor that flushes shortly after spans end, so spans reach the
 * backend within a fraction of a second (a browser tab may be closed at any time).
 * Exposes the number of exported spans as <body data-otel-exported="N">.
 */
class PromptFlushProcessor implements SpanProcessor {
  private timer: number | undefined;
  private ended = 0;
  constructor(private readonly inner: BatchSpanProcessor, private readonly delayMs = 100) {}
  onStart(span: Span, parentContext: Context): void {
    this.inner.onStart(span, parentContext);
  }
  onEnd(span: ReadableSpan): void {
    this.inner.onEnd(span);
    this.ended += 1;
    if (this.timer === undefined) {
      this.timer = window.setTimeout(() => {
        this.timer = undefined;
        const n = this.ended;
        this.inner.forceFlush().then(() => {
          document.body.dataset.otelExported = String(n);
        }, () => undefined);
      }, this.delayMs);
    }
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

let provider: WebTracerProvider | undefined;

export function setupTracing(cfg: CruddurConfig): Tracer {
  if (!cfg.otlpUrl) {
    return trace.getTracer('cruddur.frontend'); // no-op tracer: tracing off
  }
  const exporter = new OTLPTraceExporter({
    url: cfg.otlpUrl,
    headers: cfg.apiKey ? { 'x-honeycomb-team': cfg.apiKey } : {},
  });
  provider = new WebTracerProvider({
    resource: resourceFromAttributes({ 'service.name': cfg.serviceName }),
    // X-Ray-shaped trace ids (time in the first 32 bits), so the X-Ray SDK in backend-flask can
    // record its segment under the same trace as the OTel spans.
    idGenerator: new AWSXRayIdGenerator(),
    spanProcessors: [
      new PromptFlushProcessor(new BatchSpanProcessor(exporter, { scheduledDelayMillis: 500 })),
    ],
  });
  // Send both `traceparent` (OTel in backend-flask) and `X-Amzn-Trace-Id` (XRayMiddleware):
  // one click, one trace, in both instrumentations.
  provider.register({
    propagator: new CompositePropagator({
      propagators: [new W3CTraceContextPropagator(), new AWSXRayPropagator()],
    }),
  });

  registerInstrumentations({
    instrumentations: [
      new FetchInstrumentation({
        // send `traceparent` to backend-flask (a different origin), so its spans join our trace
        propagateTraceHeaderCorsUrls: [new RegExp('^' + escapeRegExp(cfg.backendUrl))],
        ignoreUrls: [new RegExp('^' + escapeRegExp(cfg.otlpUrl))],
        clearTimingResources: true,
      }),
    ],
  });

  // flush whatever is left when the tab is hidden or closed
  addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') void provider?.forceFlush();
  });
  addEventListener('pagehide', () => void provider?.forceFlush());
  return trace.getTracer('cruddur.frontend');
}

export function flush(): Promise<void> {
  return provider ? provider.forceFlush() : Promise.resolve();
}
