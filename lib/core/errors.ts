// The one error type that crosses layers. Adapters wrap vendor errors in it, services
// throw it for domain rules, and the HTTP layer turns it into `{ error: { code, message } }`
// with the status its category implies.

export type ErrorCategory =
  | "validation"
  | "unauthorized"
  | "not_found"
  | "conflict"
  | "too_large"
  | "upstream"
  | "config"
  | "internal";

const STATUS: Record<ErrorCategory, number> = {
  validation: 400,
  unauthorized: 401,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  upstream: 503,
  config: 500,
  internal: 500,
};

export class StrataError extends Error {
  readonly code: string;
  readonly category: ErrorCategory;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    category: ErrorCategory,
    code: string,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "StrataError";
    this.category = category;
    this.code = code;
    this.details = options.details;
  }

  get status(): number {
    return STATUS[this.category];
  }
}

export function isStrataError(e: unknown): e is StrataError {
  return e instanceof StrataError;
}

/** Wraps anything thrown by a backing service so no vendor error type leaves an adapter. */
export function upstream(adapter: string, e: unknown): StrataError {
  if (e instanceof StrataError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new StrataError("upstream", "UPSTREAM_ERROR", `${adapter}: ${message}`, { cause: e });
}
