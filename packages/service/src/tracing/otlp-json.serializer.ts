import type { Attributes, AttributeValue, HrTime, Link, SpanContext } from '@opentelemetry/api';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';

/** What a collector answers to an OTLP trace export. */
export interface ExportTraceResponse {
  readonly partialSuccess?: { readonly rejectedSpans?: number; readonly errorMessage?: string };
}

/**
 * Spans as an OTLP/HTTP JSON `ExportTraceServiceRequest` (https://opentelemetry.io/docs/specs/otlp/):
 * hex trace and span ids, nanosecond times as decimal strings, attributes as `{key, value}`
 * pairs, spans grouped by resource and instrumentation scope. Fields at their default (empty
 * lists, zero counts, no parent) are left out, as the protobuf JSON mapping allows.
 *
 * Written by hand in place of OpenTelemetry's `JsonTraceSerializer`, which builds an object tree
 * of the whole batch (two BigInts per timestamp), stringifies it into one string of a few hundred
 * kilobytes (a large-object allocation) and encodes that again: each span is written here as one
 * short string, and the strings are copied into one buffer. Decision 0110.
 */
export const otlpJsonTraceSerializer = {
  serializeRequest(spans: readonly ReadableSpan[]): Uint8Array {
    const chunks: string[] = ['{"resourceSpans":['];
    let resourceCount = 0;
    for (const [resource, scopes] of groupByResourceAndScope(spans)) {
      chunks.push(`${resourceCount++ === 0 ? '' : ','}${resourceOpening(resource)}`);
      let scopeCount = 0;
      for (const scoped of scopes.values()) {
        chunks.push(`${scopeCount++ === 0 ? '' : ','}${scopeOpening(scoped[0]!.instrumentationScope)}`);
        for (let i = 0; i < scoped.length; i++)
          chunks.push(i === 0 ? spanJson(scoped[i]!) : `,${spanJson(scoped[i]!)}`);
        chunks.push(']}');
      }
      chunks.push(']}');
    }
    chunks.push(']}');
    return concatenate(chunks);
  },
  deserializeResponse(data: Uint8Array): ExportTraceResponse {
    return data.length === 0 ? {} : (JSON.parse(new TextDecoder().decode(data)) as ExportTraceResponse);
  },
};

type ResourceOf = ReadableSpan['resource'];
type ScopeOf = ReadableSpan['instrumentationScope'];

/** The request's text before the spans of one resource and one scope: `{"resourceSpans":[…"spans":[`. */
export function requestOpening(resource: ResourceOf, scope: ScopeOf): string {
  return `{"resourceSpans":[${resourceOpening(resource)}${scopeOpening(scope)}`;
}

/** Closes what {@link requestOpening} opened. */
export const REQUEST_CLOSING = ']}]}]}';

function resourceOpening(resource: ResourceOf): string {
  return `{"resource":{"attributes":${attributes(resource.attributes)},"droppedAttributesCount":0}${schemaUrl(resource.schemaUrl)},"scopeSpans":[`;
}

function scopeOpening(scope: ScopeOf): string {
  const version = scope.version === undefined ? '' : `,"version":${jsonText(scope.version)}`;
  return `{"scope":{"name":${jsonText(scope.name)}${version}}${schemaUrl(scope.schemaUrl)},"spans":[`;
}

function groupByResourceAndScope(
  spans: readonly ReadableSpan[],
): Map<ResourceOf, Map<string, ReadableSpan[]>> {
  const resources = new Map<ResourceOf, Map<string, ReadableSpan[]>>();
  let lastScope: ReadableSpan['instrumentationScope'] | undefined;
  let lastList: ReadableSpan[] | undefined;
  let lastResource: ResourceOf | undefined;
  for (const s of spans) {
    // Spans of one batch nearly always share resource and scope: skip the key for a repeat.
    if (s.resource === lastResource && s.instrumentationScope === lastScope && lastList) {
      lastList.push(s);
      continue;
    }
    let scopes = resources.get(s.resource);
    if (!scopes) {
      scopes = new Map();
      resources.set(s.resource, scopes);
    }
    const scope = s.instrumentationScope;
    const key = `${scope.name}@${scope.version ?? ''}:${scope.schemaUrl ?? ''}`;
    let list = scopes.get(key);
    if (!list) {
      list = [];
      scopes.set(key, list);
    }
    list.push(s);
    lastResource = s.resource;
    lastScope = scope;
    lastList = list;
  }
  return resources;
}

const SPAN_FLAGS_HAS_IS_REMOTE = 0x100;
const SPAN_FLAGS_IS_REMOTE = 0x200;

/** One span as an OTLP JSON `Span` object, all ASCII. */
export function spanJson(s: ReadableSpan): string {
  const context = s.spanContext();
  const parent = s.parentSpanContext;
  const status = s.status;
  let json = `{"traceId":"${context.traceId}","spanId":"${context.spanId}"`;
  if (parent?.spanId) json += `,"parentSpanId":"${parent.spanId}"`;
  const traceState = context.traceState?.serialize();
  if (traceState) json += `,"traceState":${jsonText(traceState)}`;
  json += `,"name":${jsonText(s.name)},"kind":${s.kind + 1},"startTimeUnixNano":"${nanos(s.startTime)}","endTimeUnixNano":"${nanos(s.endTime)}","attributes":${attributes(s.attributes)}`;
  if (s.droppedAttributesCount > 0) json += `,"droppedAttributesCount":${s.droppedAttributesCount}`;
  if (s.events.length > 0) json += `,"events":[${s.events.map(event).join(',')}]`;
  if (s.droppedEventsCount > 0) json += `,"droppedEventsCount":${s.droppedEventsCount}`;
  json +=
    status.message === undefined || status.message === ''
      ? `,"status":{"code":${status.code}}`
      : `,"status":{"code":${status.code},"message":${jsonText(status.message)}}`;
  if (s.links.length > 0) json += `,"links":[${s.links.map(link).join(',')}]`;
  if (s.droppedLinksCount > 0) json += `,"droppedLinksCount":${s.droppedLinksCount}`;
  return `${json},"flags":${flags(context.traceFlags, parent?.isRemote)}}`;
}

function event(e: TimedEvent): string {
  const dropped = e.droppedAttributesCount ? `,"droppedAttributesCount":${e.droppedAttributesCount}` : '';
  return `{"name":${jsonText(e.name)},"timeUnixNano":"${nanos(e.time)}","attributes":${attributes(e.attributes ?? {})}${dropped}}`;
}

function link(l: Link): string {
  const c: SpanContext = l.context;
  const state = c.traceState?.serialize();
  const dropped = l.droppedAttributesCount ? `,"droppedAttributesCount":${l.droppedAttributesCount}` : '';
  return `{"traceId":"${c.traceId}","spanId":"${c.spanId}"${state ? `,"traceState":${jsonText(state)}` : ''},"attributes":${attributes(l.attributes ?? {})}${dropped},"flags":${flags(c.traceFlags, c.isRemote)}}`;
}

/** The low byte is the W3C trace flags; bit 8 says whether the parent was remote is known, bit 9 that it was. */
function flags(traceFlags: number, isRemote: boolean | undefined): number {
  return (traceFlags & 0xff) | SPAN_FLAGS_HAS_IS_REMOTE | (isRemote ? SPAN_FLAGS_IS_REMOTE : 0);
}

/** `[seconds, nanoseconds]` as decimal nanoseconds since the epoch (beyond 2^53, so a string). */
function nanos(time: HrTime): string {
  const seconds = Math.trunc(time[0]);
  const fraction = Math.trunc(time[1]);
  return seconds === 0 ? String(fraction) : `${seconds}${String(1e9 + fraction).slice(1)}`;
}

function schemaUrl(url: string | undefined): string {
  return url ? `,"schemaUrl":${jsonText(url)}` : '';
}

function attributes(attrs: Attributes): string {
  let json = '[';
  let first = true;
  for (const key in attrs) {
    const value = attrs[key];
    if (value === undefined) continue;
    json += `${first ? '' : ','}{"key":${keyText(key)},"value":${anyValue(value)}}`;
    first = false;
  }
  return `${json}]`;
}

/** An OTLP `AnyValue`: a double that is not finite is spelled as protobuf's JSON mapping spells it. */
function anyValue(value: AttributeValue | unknown): string {
  switch (typeof value) {
    case 'string':
      return `{"stringValue":${jsonText(value)}}`;
    case 'number':
      if (Number.isInteger(value)) return `{"intValue":${value}}`;
      return Number.isFinite(value) ? `{"doubleValue":${value}}` : `{"doubleValue":"${value}"}`;
    case 'boolean':
      return `{"boolValue":${value}}`;
  }
  if (value instanceof Uint8Array) return `{"bytesValue":"${Buffer.from(value).toString('base64')}"}`;
  if (Array.isArray(value)) return `{"arrayValue":{"values":[${value.map(anyValue).join(',')}]}}`;
  if (typeof value === 'object' && value !== null) {
    const pairs = Object.entries(value).map(([k, v]) => `{"key":${jsonText(k)},"value":${anyValue(v)}}`);
    return `{"kvlistValue":{"values":[${pairs.join(',')}]}}`;
  }
  return '{}';
}

const keyTexts = new Map<string, string>();

/** An attribute key as {@link jsonText}: the same few keys recur in every span, so their texts are kept (up to 1,000). */
function keyText(key: string): string {
  let text = keyTexts.get(key);
  if (text === undefined) {
    text = jsonText(key);
    if (keyTexts.size < 1000) keyTexts.set(key, text);
  }
  return text;
}

const HAS_NON_ASCII = /[\u0080-\uffff]/;
const NON_ASCII = /[\u0080-\uffff]/g;

/**
 * A JSON string literal in ASCII only: characters beyond it as `\\uXXXX` escapes (valid JSON, the
 * same text once parsed), so that the whole request is ASCII and is copied into its buffer byte
 * for byte, without measuring or encoding UTF-8.
 */
function jsonText(text: string): string {
  const literal = JSON.stringify(text);
  return HAS_NON_ASCII.test(literal)
    ? literal.replace(NON_ASCII, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    : literal;
}

/** The chunks, all ASCII, in one buffer, without first joining them into one large string. */
function concatenate(chunks: readonly string[]): Uint8Array {
  let total = 0;
  for (const chunk of chunks) total += chunk.length;
  const bytes = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const chunk of chunks) offset += bytes.write(chunk, offset, 'latin1');
  return bytes;
}
