/**
 * FlashMart's errors and the one function that turns any error into the contract's shape.
 * Callers branch on `err.type`, never on `instanceof`: classes do not survive the transporter,
 * `code`, `type` and `data` do.
 */
import { Errors } from "moleculer";

const { MoleculerClientError, MoleculerRetryableError, MoleculerError } = Errors;

export { MoleculerClientError, MoleculerRetryableError, MoleculerError };

export class NotFoundError extends MoleculerClientError {
	constructor(what = "Resource", data?: unknown) {
		super(`${what} not found`, 404, "NOT_FOUND", data);
		this.name = "NotFoundError";
	}
}

export class ForbiddenError extends MoleculerClientError {
	constructor(message = "You are not allowed to do this", data?: unknown) {
		super(message, 403, "FORBIDDEN", data);
		this.name = "ForbiddenError";
	}
}

export class UnauthorizedError extends MoleculerClientError {
	constructor(type: "NO_TOKEN" | "INVALID_TOKEN" | "INVALID_CREDENTIALS", message: string) {
		super(message, 401, type);
		this.name = "UnauthorizedError";
	}
}

export class ConflictError extends MoleculerClientError {
	constructor(type: string, message: string, data?: unknown) {
		super(message, 409, type, data);
		this.name = "ConflictError";
	}
}

/** A product with options was named without one of its variants (cart line, inventory, sale item). */
export function variantRequired(productId: string, variantIds: string[]): ConflictError {
	return new ConflictError("VARIANT_REQUIRED", "This product has variants: name one by variantId", {
		productId,
		variantIds
	});
}

export class BadRequestError extends MoleculerClientError {
	constructor(type: string, message: string, data?: unknown) {
		super(message, 400, type, data);
		this.name = "BadRequestError";
	}
}

export class UnprocessableError extends MoleculerClientError {
	constructor(type: string, message: string, data?: unknown) {
		super(message, 422, type, data);
		this.name = "UnprocessableEntityError";
	}
}

/** Too many requests (API.md: 429 RATE_LIMIT_EXCEEDED); `data.retryAfter` (seconds) becomes the Retry-After header. */
export class TooManyRequestsError extends MoleculerClientError {
	constructor(message: string, retryAfterSeconds: number) {
		super(message, 429, "RATE_LIMIT_EXCEEDED", { retryAfter: retryAfterSeconds });
		this.name = "TooManyRequestsError";
	}
}

/** A body in a content type the operation does not take (JSON operations take `application/json` only). */
export class UnsupportedMediaTypeError extends MoleculerClientError {
	constructor(message: string, data?: unknown) {
		super(message, 415, "UNSUPPORTED_MEDIA_TYPE", data);
		this.name = "UnsupportedMediaTypeError";
	}
}

/** A backend dependency (a store, another service) is unavailable: safe to retry later. */
export class ServiceUnavailableError extends MoleculerRetryableError {
	constructor(message = "Service temporarily unavailable", data?: unknown) {
		super(message, 503, "SERVICE_UNAVAILABLE", data);
		this.name = "ServiceUnavailableError";
	}
}

/** The payment provider declined the charge (API.md: 402 PAYMENT_DECLINED); `data.declineCode` says why. */
export class PaymentDeclinedError extends MoleculerClientError {
	constructor(declineCode: string) {
		super("The payment was declined", 402, "PAYMENT_DECLINED", { declineCode });
		this.name = "PaymentDeclinedError";
	}
}

/** A dependency took too long and the outcome is unknown; a retry (same Idempotency-Key) finds out. */
export class GatewayTimeoutError extends MoleculerRetryableError {
	constructor(message = "The request timed out, please retry", data?: unknown) {
		super(message, 504, "REQUEST_TIMEOUT", data);
		// Not "RequestTimeoutError": the transporter rebuilds errors by name, and Moleculer's class of that name
		// cannot be rebuilt from this error's fields (the answer would be lost). Clients see the contract's name.
		this.name = "GatewayTimeoutError";
	}
}

/** What a client sees. */
export interface HttpError {
	name: string;
	message: string;
	code: number;
	type: string;
	data?: unknown;
}

interface ErrorLike {
	name?: string;
	message?: string;
	code?: unknown;
	type?: unknown;
	data?: unknown;
	status?: unknown;
	retryable?: boolean;
}

const UNAVAILABLE: HttpError = {
	name: "ServiceUnavailableError",
	message: "Service temporarily unavailable, please retry",
	code: 503,
	type: "SERVICE_UNAVAILABLE"
};
const TIMEOUT: HttpError = {
	name: "RequestTimeoutError",
	message: "The request timed out, please retry",
	code: 504,
	type: "REQUEST_TIMEOUT"
};
const INTERNAL: HttpError = {
	name: "InternalServerError",
	message: "Internal server error",
	code: 500,
	type: "INTERNAL_ERROR"
};

/** Moleculer and transport errors that mean "a backend is down or overloaded", whatever their own code says. */
const UNAVAILABLE_TYPES = new Set([
	"SERVICE_NOT_FOUND",
	"SERVICE_NOT_AVAILABLE",
	"REQUEST_REJECTED",
	"QUEUE_FULL",
	"BAD_GATEWAY",
	"SERVICE_UNAVAILABLE",
	"REQUEST_SKIPPED"
]);

/** body-parser's error types (`entity.too.large`, ...) mapped to the contract. */
const BODY_PARSER: Record<string, HttpError> = {
	"entity.too.large": {
		name: "PayloadTooLargeError",
		message: "Request body is too large",
		code: 413,
		type: "PAYLOAD_TOO_LARGE"
	},
	"entity.parse.failed": {
		name: "BadRequestError",
		message: "Malformed JSON in request body",
		code: 400,
		type: "INVALID_REQUEST_BODY"
	},
	"entity.utf8.invalid": {
		name: "BadRequestError",
		message: "The request body is not valid UTF-8",
		code: 400,
		type: "INVALID_REQUEST_BODY"
	},
	"encoding.unsupported": {
		name: "UnsupportedMediaTypeError",
		message: "Unsupported content encoding",
		code: 415,
		type: "UNSUPPORTED_MEDIA_TYPE"
	},
	"charset.unsupported": {
		name: "UnsupportedMediaTypeError",
		message: "Unsupported charset",
		code: 415,
		type: "UNSUPPORTED_MEDIA_TYPE"
	}
};

/** Keeps the validator's field list but never echoes the submitted value back. */
function validationData(data: unknown): unknown {
	if (!Array.isArray(data)) return data;
	return data.map((d: { field?: string; type?: string; message?: string }) => ({
		field: d.field,
		type: d.type,
		message: d.message
	}));
}

/**
 * Turns any error into the contract's shape. 4xx errors keep their details; 5xx errors lose every detail
 * (no stack, driver message or node name ever reaches a client), and "backend down or too slow" always
 * becomes 503 or 504, never 404 or 500.
 */
export function toHttpError(input: unknown): HttpError {
	const err = (input ?? {}) as ErrorLike;
	const type = typeof err.type === "string" ? err.type : "";

	if (type in BODY_PARSER) return { ...BODY_PARSER[type] };
	if (type.startsWith("entity.") || type.startsWith("request.")) {
		return { ...BODY_PARSER["entity.parse.failed"], message: "Invalid request body" };
	}
	if (type === "REQUEST_TIMEOUT") return { ...TIMEOUT };
	if (UNAVAILABLE_TYPES.has(type)) return { ...UNAVAILABLE };

	const code = typeof err.code === "number" ? err.code : 500;
	if (code === 504) return { ...TIMEOUT };
	if (code === 503 || code === 502) return { ...UNAVAILABLE };
	if (code >= 400 && code < 500 && err instanceof Error && type) {
		const out: HttpError = {
			name: err.name || "ClientError",
			message: err.message,
			code,
			type
		};
		const data = (err as ErrorLike).data;
		if (data !== undefined) {
			out.data = type === "VALIDATION_ERROR" ? validationData(data) : data;
		}
		return out;
	}
	return { ...INTERNAL };
}
