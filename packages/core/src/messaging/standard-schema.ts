/**
 * The Standard Schema interface (https://standardschema.dev), copied as types so that core
 * depends on no validation library: zod, valibot, arktype and others all implement it.
 */

/** A schema any Standard Schema library produces. */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': StandardSchemaV1.Props<Input, Output>;
}

export declare namespace StandardSchemaV1 {
  export interface Props<Input = unknown, Output = Input> {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => Result<Output> | Promise<Result<Output>>;
    readonly types?: Types<Input, Output> | undefined;
  }
  export type Result<Output> = SuccessResult<Output> | FailureResult;
  export interface SuccessResult<Output> {
    readonly value: Output;
    readonly issues?: undefined;
  }
  export interface FailureResult {
    readonly issues: ReadonlyArray<Issue>;
  }
  export interface Issue {
    readonly message: string;
    readonly path?: ReadonlyArray<PropertyKey | PathSegment> | undefined;
  }
  export interface PathSegment {
    readonly key: PropertyKey;
  }
  export interface Types<Input = unknown, Output = Input> {
    readonly input: Input;
    readonly output: Output;
  }
  export type InferInput<Schema extends StandardSchemaV1> = NonNullable<
    Schema['~standard']['types']
  >['input'];
  export type InferOutput<Schema extends StandardSchemaV1> = NonNullable<
    Schema['~standard']['types']
  >['output'];
}

/** Thrown when a payload does not match its message's schema. */
export class SchemaValidationError extends Error {
  override readonly name = 'SchemaValidationError';
  constructor(
    readonly messageType: string,
    readonly issues: ReadonlyArray<StandardSchemaV1.Issue>,
  ) {
    super(`${messageType} payload is invalid: ${formatIssues(issues)}`);
  }
}

/** One line naming each issue and where it is, e.g. `lineItems.0.quantity: expected number`. */
export function formatIssues(issues: ReadonlyArray<StandardSchemaV1.Issue>): string {
  return issues
    .map((issue) => {
      const path = (issue.path ?? [])
        .map((segment) => String(typeof segment === 'object' ? segment.key : segment))
        .join('.');
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

/** Validates a value, resolving to the schema's output or throwing {@link SchemaValidationError}. */
export async function validateWith<S extends StandardSchemaV1>(
  schema: S,
  messageType: string,
  value: unknown,
): Promise<StandardSchemaV1.InferOutput<S>> {
  const validated = schema['~standard'].validate(value);
  // Most schemas validate synchronously; await only those that do not.
  const result = validated instanceof Promise ? await validated : validated;
  if (result.issues) throw new SchemaValidationError(messageType, result.issues);
  return result.value as StandardSchemaV1.InferOutput<S>;
}
