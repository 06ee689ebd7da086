import type { HandlerContext, Message, MessageHandler, SendContext } from '@ferry/core';
import { context, SpanKind } from '@opentelemetry/api';
import { principalFromHeaders, principalHeaders } from '../auth/principal.header.js';
import { currentCorrelationId, currentPrincipal, withRequestScope } from '../context/request-context.js';
import type { Tracing } from './tracing.js';
import { extractTraceContext, injectTraceContext } from './w3c.js';

/**
 * The `SendContext` for messages sent now: the active trace context (so the trace continues
 * through outbox, relay and broker to the consumer), the correlation id and the principal header.
 * @example
 * await messaging.publishEvents(tx, { type: 'Order', id }, events, currentSendContext());
 */
export function currentSendContext(extra: Readonly<Record<string, string>> = {}): SendContext {
  const active = context.active();
  const trace = injectTraceContext(active);
  const principal = principalHeaders(currentPrincipal(active));
  const merged = { ...principal, ...extra };
  return {
    traceparent: trace.traceparent,
    tracestate: trace.tracestate,
    correlationId: currentCorrelationId(active),
    extra: Object.keys(merged).length > 0 ? merged : undefined,
  };
}

/**
 * Runs `work` as the handling of `message`: in a consumer span that continues the message's
 * trace, with the message's principal and correlation id as the current ones.
 */
export function consumeInSpan<T>(
  tracing: Tracing,
  group: string,
  message: Message,
  work: () => Promise<T>,
): Promise<T> {
  const h = message.headers;
  const parent = withRequestScope(
    { principal: principalFromHeaders(h), correlationId: h.correlationId ?? message.id },
    extractTraceContext({ traceparent: h.traceparent, tracestate: h.tracestate }, context.active()),
  );
  return tracing.inSpan(
    `process ${h.destination}`,
    SpanKind.CONSUMER,
    {
      'messaging.operation.type': 'process',
      'messaging.destination.name': h.destination,
      'messaging.consumer.group.name': group,
      'messaging.message.id': message.id,
      'ferry.message.type': h.type,
      'ferry.message.kind': h.kind,
    },
    parent,
    () => work(),
  );
}

/** Wraps a message handler so each call runs in {@link consumeInSpan}. */
export function tracedHandler<Tx, P>(
  tracing: Tracing,
  group: string,
  handler: MessageHandler<Tx, P>,
): MessageHandler<Tx, P> {
  return (ctx: HandlerContext<Tx, P>) => consumeInSpan(tracing, group, ctx.message, () => handler(ctx));
}
