/**
 * Log line formatters for Moleculer's Console logger: one JSON object per line in production
 * (`@timestamp`, `level`, `message`, `service`, `nodeID`, `requestId`, `userId`, `orderId`), and a readable
 * line for developers that still names the request. Secrets never reach either.
 */
import { inspect } from "node:util";
import { currentScope } from "./request-context";

export interface LoggerBindings {
	nodeID: string;
	ns: string;
	mod: string;
	svc?: string;
	ver?: string | number;
}

/** Keys whose values are secrets: passwords, tokens, card tokens, authorization headers, cookies. */
const SECRET_KEY =
	/pass(word)?|secret|token|authorization|cookie|api[-_]?key|private[-_]?key|hash/i;
const BEARER = /\b(Bearer\s+)[A-Za-z0-9._~+/=-]+/g;
const JWT_LIKE = /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g;
const REDACTED = "[REDACTED]";

function redactString(s: string): string {
	return s.replace(BEARER, `$1${REDACTED}`).replace(JWT_LIKE, REDACTED);
}

/** A JSON-safe copy of `value` with secrets replaced, bounded in depth. */
export function redact(value: unknown, depth = 0): unknown {
	if (typeof value === "string") return redactString(value);
	if (value === null || typeof value !== "object") return value;
	if (depth > 5) return "[Object]";
	if (value instanceof Error) {
		const e = value as Error & { code?: unknown; type?: unknown; data?: unknown };
		return {
			name: e.name,
			message: redactString(e.message),
			code: e.code,
			type: e.type,
			stack: e.stack ? redactString(e.stack) : undefined
		};
	}
	if (Buffer.isBuffer(value)) return `[Buffer ${value.length} bytes]`;
	if (Array.isArray(value)) return value.slice(0, 50).map(v => redact(v, depth + 1));
	const out: Record<string, unknown> = {};
	for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
		out[k] = SECRET_KEY.test(k) && v != null ? REDACTED : redact(v, depth + 1);
	}
	return out;
}

function messageOf(args: unknown[]): { message: string; fields: Record<string, unknown> } {
	const parts: string[] = [];
	const fields: Record<string, unknown> = {};
	for (const arg of args) {
		if (typeof arg === "string") parts.push(redactString(arg));
		else if (arg instanceof Error) {
			parts.push(`${arg.name}: ${redactString(arg.message)}`);
			fields.error = redact(arg);
		} else if (arg !== null && typeof arg === "object") {
			Object.assign(fields, redact(arg) as Record<string, unknown>);
		} else parts.push(String(arg));
	}
	return { message: parts.join(" "), fields };
}

/** Builds the JSON object for one log line. Exported for the log shipper and tests. */
export function logRecord(
	level: string,
	args: unknown[],
	bindings: LoggerBindings
): Record<string, unknown> {
	const { message, fields } = messageOf(args);
	const scope = currentScope();
	return {
		"@timestamp": new Date().toISOString(),
		level,
		message,
		service: bindings.svc ?? bindings.mod,
		nodeID: bindings.nodeID,
		...fields,
		...(scope?.requestId ? { requestId: scope.requestId } : {}),
		...(scope?.userId ? { userId: scope.userId } : {}),
		...(scope?.orderId ? { orderId: scope.orderId } : {})
	};
}

type Formatter = (type: string, args: unknown[], bindings: LoggerBindings) => string[];

/** One JSON object per line. */
export const jsonFormatter: Formatter = (type, args, bindings) => [
	JSON.stringify(logRecord(type, args, bindings))
];

/** `[time] LEVEL service [requestId]: message {fields}` for people. */
export const prettyFormatter: Formatter = (type, args, bindings) => {
	const { message, fields } = messageOf(args);
	const scope = currentScope();
	const req = scope?.requestId ? ` [${scope.requestId}]` : "";
	const extra =
		Object.keys(fields).length > 0 ? " " + inspect(fields, { depth: 4, breakLength: 160 }) : "";
	const time = new Date().toISOString().substring(11, 23);
	return [
		`[${time}] ${type.toUpperCase().padEnd(5)} ${bindings.svc ?? bindings.mod}${req}: ${message}${extra}`
	];
};
