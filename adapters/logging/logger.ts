/**
 * Log line formatters for Moleculer's Console logger: one JSON object per line in production
 * (`@timestamp`, `level`, `message`, `service`, `nodeID`, `requestId`, `userId`, `orderId`, and `traceId`/`spanId`
 * of the sampled span the line was written in), and a readable
 * line for developers that still names the request. Secrets never reach either.
 */
import { inspect } from "node:util";
import { Loggers } from "moleculer";
import { currentScope, currentTraceIds } from "../../lib/request-context";

export interface LoggerBindings {
	nodeID: string;
	ns: string;
	mod: string;
	svc?: string;
	ver?: string | number;
}

/**
 * Keys whose values are secrets: passwords, tokens (access, refresh, and card tokens such as `paymentToken`),
 * authorization headers, cookies, keys.
 */
const SECRET_KEY =
	/pass(word)?|secret|token|authorization|cookie|api[-_]?key|private[-_]?key|hash/i;
const BEARER = /\b(Bearer\s+)[A-Za-z0-9._~+/=-]+/g;
const JWT_LIKE = /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g;
/** Card tokens of the payment provider (`tok_visa`) found inside a text rather than under a key. */
const CARD_TOKEN = /\btok_[A-Za-z0-9_]+/g;
const REDACTED = "[REDACTED]";

function redactString(s: string): string {
	return s
		.replace(BEARER, `$1${REDACTED}`)
		.replace(JWT_LIKE, REDACTED)
		.replace(CARD_TOKEN, REDACTED);
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
	const record: Record<string, unknown> = {
		"@timestamp": new Date().toISOString(),
		level,
		message,
		service: bindings.svc ?? bindings.mod,
		nodeID: bindings.nodeID
	};
	for (const key in fields) {
		// A logged object never overwrites the line's own fields (Moleculer logs `{ nodeID }` of remote nodes):
		// such values are kept under `args`.
		if (key in record) ((record.args ??= {}) as Record<string, unknown>)[key] = fields[key];
		else record[key] = fields[key];
	}
	if (scope?.requestId) record.requestId = scope.requestId;
	if (scope?.userId) record.userId = scope.userId;
	if (scope?.orderId) record.orderId = scope.orderId;
	const ids = currentTraceIds();
	if (ids) {
		record.traceId = ids.traceId;
		record.spanId = ids.spanId;
	}
	return record;
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

/** Where a logger sends each record besides the console (the Elasticsearch shipper). */
export interface RecordSink {
	push(record: Record<string, unknown>): void;
}

export interface FlashMartLoggerOptions {
	level: Loggers.LogLevels;
	format: "json" | "pretty";
	/** Receives every record printed, already redacted; null: console only. */
	sink?: RecordSink | null;
}

type LogHandler = (type: string, args: unknown[]) => void;

/**
 * FlashMart's Moleculer logger: one record per log call, printed to the console (a JSON line, or a readable line for
 * developers) and handed to the sink when there is one, so the console and Elasticsearch get the same fields.
 */
export class FlashMartLogger extends Loggers.Base<{ level?: Loggers.LogLevels }> {
	private readonly format: "json" | "pretty";
	private readonly sink: RecordSink | null;

	constructor(opts: FlashMartLoggerOptions) {
		super({ level: opts.level });
		this.format = opts.format;
		this.sink = opts.sink ?? null;
	}

	override getLogHandler(bindings: LoggerBindings): LogHandler | null {
		const level = bindings ? this.getLogLevel(bindings.mod) : null;
		if (!level) return null;
		const maxIdx = LEVELS.indexOf(level);
		const { format, sink } = this;
		return (type, args) => {
			if (LEVELS.indexOf(type) > maxIdx) return;
			let line: string;
			if (format === "json") {
				const record = logRecord(type, args, bindings);
				line = JSON.stringify(record);
				sink?.push(record);
			} else {
				line = prettyFormatter(type, args, bindings)[0];
				if (sink) sink.push(logRecord(type, args, bindings));
			}
			if (type === "fatal" || type === "error") console.error(line);
			else if (type === "warn") console.warn(line);
			else console.log(line);
		};
	}
}

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"];
