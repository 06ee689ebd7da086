import { type Context, context, type TextMapGetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

/** Headers as HTTP, gRPC metadata and messages carry them. */
export type HeaderCarrier = Readonly<Record<string, string | string[] | undefined>>;

/** W3C trace context headers. */
export interface TraceHeaders {
  traceparent?: string;
  tracestate?: string;
}

const propagator = new W3CTraceContextPropagator();

const getter: TextMapGetter<HeaderCarrier> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/** The context that W3C `traceparent`/`tracestate` headers carry, on top of `parent`. */
export function extractTraceContext(headers: HeaderCarrier, parent: Context = context.active()): Context {
  return propagator.extract(parent, headers, getter);
}

/** W3C headers for the active (or given) context; empty when there is no trace. */
export function injectTraceContext(active: Context = context.active()): TraceHeaders {
  const carrier: TraceHeaders = {};
  propagator.inject(active, carrier, {
    set: (c, key, value) => {
      if (key === 'traceparent' || key === 'tracestate') c[key] = value;
    },
  });
  return carrier;
}
