import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import {
  convertLegacyHttpOptions,
  createOtlpHttpExportDelegate,
} from '@opentelemetry/otlp-exporter-base/node-http';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { otlpJsonTraceSerializer } from './otlp-json.serializer.js';

/**
 * OpenTelemetry's OTLP/HTTP JSON trace exporter (its transport: keep-alive agent, retries with
 * backoff, timeout, bounded concurrency, `OTEL_EXPORTER_OTLP_*` variables) with the hand-written
 * {@link otlpJsonTraceSerializer} in place of its own. The wiring is the one
 * `@opentelemetry/exporter-trace-otlp-http` uses; only the serializer differs.
 */
export class OtlpJsonTraceExporter extends OTLPExporterBase<ReadableSpan[]> implements SpanExporter {
  /** `url` is the full traces endpoint, `<collector>/v1/traces`. */
  constructor(url: string) {
    super(
      createOtlpHttpExportDelegate(
        convertLegacyHttpOptions({ url }, 'TRACES', 'v1/traces', { 'Content-Type': 'application/json' }),
        otlpJsonTraceSerializer,
      ),
    );
  }
}
