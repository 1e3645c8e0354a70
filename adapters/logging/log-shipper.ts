/**
 * Ships log records (the objects logger.ts prints as JSON lines, secrets already redacted) to Elasticsearch
 * with the official client's bulk helper, into the daily index `logs-flashmart-YYYY.MM.DD`.
 *
 * Logging must never wait for Elasticsearch, nor fail because of it: `push` only appends to a buffer in memory.
 * A timer (or a full batch) sends the buffer in batches, one request at a time; a failed request puts its batch back
 * and the next attempt waits longer (exponential backoff with jitter). The buffer is bounded: when it is full the
 * oldest lines go first, and are counted. `close` sends what is left, within a deadline, when the node stops.
 */
import type { Client, ClientOptions } from "@elastic/elasticsearch";

export const LOG_INDEX_PREFIX = "logs-flashmart-";
export const LOG_TEMPLATE_NAME = "logs-flashmart";

/**
 * The index template: our fields mapped, everything else kept in `_source` but not indexed (`dynamic: false`), so
 * a field logged as an object in one line and a string in another can never get a line rejected.
 * Priority above Elasticsearch's built-in `logs` template (100, pattern `logs-*-*`), which would otherwise turn
 * `logs-flashmart-*` into data streams.
 */
export const LOG_INDEX_TEMPLATE = {
	index_patterns: [`${LOG_INDEX_PREFIX}*`],
	priority: 500,
	template: {
		mappings: {
			dynamic: false,
			properties: {
				"@timestamp": { type: "date" },
				level: { type: "keyword" },
				message: { type: "text", fields: { keyword: { type: "keyword", ignore_above: 1024 } } },
				service: { type: "keyword" },
				nodeID: { type: "keyword" },
				requestId: { type: "keyword" },
				userId: { type: "keyword" },
				orderId: { type: "keyword" },
				// W3C ids of the span a line was written in (tracing on): a trace's lines, and a line's trace.
				traceId: { type: "keyword" },
				spanId: { type: "keyword" },
				error: {
					properties: {
						name: { type: "keyword" },
						message: { type: "text" },
						type: { type: "keyword" },
						code: { type: "keyword" },
						stack: { type: "text", index: false }
					}
				}
			}
		}
	},
	_meta: { description: "FlashMart logs (lib/log-shipper.ts)" }
};

export type LogRecord = Record<string, unknown>;

/** Where the shipper reports what it did (the node's `flashmart_logs_*` metrics). */
export interface LogShipperMetrics {
	shipped(n: number): void;
	dropped(n: number): void;
	shipError(): void;
	buffered(n: number): void;
}

export interface LogShipperOptions {
	nodes: string[];
	auth: ClientOptions["auth"] | null;
	batchSize: number;
	flushInterval: number;
	maxBuffer: number;
	requestTimeout: number;
	/** First retry delay in ms (default 500), doubled per failure up to `maxBackoff` (default 30 s). */
	minBackoff?: number;
	maxBackoff?: number;
	/** Where the shipper's own troubles are reported; never the shipped logger (that would feed itself). */
	warn?: (message: string) => void;
}

/** `logs-flashmart-2026.11.23` for a record stamped 2026-11-23T..., in UTC like `@timestamp`. */
export function indexFor(record: LogRecord): string {
	const ts = record["@timestamp"];
	const day = typeof ts === "string" && ts.length >= 10 ? ts : new Date().toISOString();
	return `${LOG_INDEX_PREFIX}${day.slice(0, 4)}.${day.slice(5, 7)}.${day.slice(8, 10)}`;
}

/** An error's message without credentials a URL may carry (`http://user:pass@host`). */
function describeError(err: unknown): string {
	const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
	return text.replace(/(\w+:\/\/)[^/\s@]*@/g, "$1[REDACTED]@");
}

export class LogShipper {
	private readonly client: Client;
	private readonly opts: Required<Omit<LogShipperOptions, "auth">>;
	private buffer: LogRecord[] = [];
	private metrics: LogShipperMetrics | null = null;
	private timer: NodeJS.Timeout | null = null;
	private sending: Promise<void> | null = null;
	private templateInstalled = false;
	private failures = 0;
	/** No attempt before this time (ms since epoch): the backoff after a failure. */
	private retryAt = 0;
	private lastWarning = 0;
	private closed = false;
	/** Totals since start, for tests and the shutdown message. */
	readonly stats = { shipped: 0, dropped: 0, errors: 0, templateRefused: 0 };

	constructor(opts: LogShipperOptions) {
		this.opts = {
			minBackoff: 500,
			maxBackoff: 30_000,
			warn: message => process.stderr.write(`${message}\n`),
			...opts
		};
		// Loaded here, not at the top: a node that ships no logs never loads the client (about 30 MB and 0.4 s).
		// eslint-disable-next-line @typescript-eslint/no-require-imports
		const { Client: EsClient } =
			require("@elastic/elasticsearch") as typeof import("@elastic/elasticsearch");
		this.client = new EsClient({
			nodes: opts.nodes,
			...(opts.auth ? { auth: opts.auth } : {}),
			requestTimeout: opts.requestTimeout,
			// Retries are ours (with backoff, batch kept); the transport's own would retry at once.
			maxRetries: 0,
			compression: false
		});
		this.timer = setInterval(() => this.flushSoon(), opts.flushInterval);
		// A pending flush must not keep a process alive that has nothing else to do.
		this.timer.unref();
	}

	/** Reports counts to `metrics` from now on (the broker's registry exists only after the logger). */
	useMetrics(metrics: LogShipperMetrics): void {
		this.metrics = metrics;
		metrics.buffered(this.buffer.length);
	}

	/** Queues one record. Never throws, never waits; drops the oldest line when the buffer is full. */
	push(record: LogRecord): void {
		if (this.closed) return;
		this.buffer.push(record);
		if (this.buffer.length > this.opts.maxBuffer)
			this.drop(this.buffer.length - this.opts.maxBuffer);
		if (this.buffer.length >= this.opts.batchSize && !this.sending)
			setImmediate(() => this.flushSoon());
	}

	get bufferedCount(): number {
		return this.buffer.length;
	}

	/** Sends what is buffered (all of it), within `timeoutMs`; then stops. Lines logged later are not shipped. */
	async close(timeoutMs = 5000): Promise<void> {
		if (this.timer) clearInterval(this.timer);
		this.timer = null;
		const deadline = Date.now() + timeoutMs;
		// Whatever backoff was pending, the node is going away: one more try each round, until the deadline.
		while (Date.now() < deadline && (this.buffer.length > 0 || this.sending)) {
			if (this.sending) {
				await this.withDeadline(this.sending, deadline);
				continue;
			}
			this.retryAt = 0;
			const before = this.stats.errors;
			await this.withDeadline(this.send(), deadline);
			if (this.stats.errors > before)
				await sleep(Math.min(200, Math.max(0, deadline - Date.now())));
		}
		this.closed = true;
		if (this.buffer.length > 0) {
			this.drop(this.buffer.length);
		}
		// The client's close waits for a request still in flight: not past the deadline.
		const closing = this.client.close().catch(() => undefined);
		if (!this.sending) await closing;
	}

	private async withDeadline(p: Promise<void>, deadline: number): Promise<void> {
		let timer: NodeJS.Timeout | undefined;
		await Promise.race([
			p,
			new Promise<void>(resolve => {
				timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
			})
		]);
		clearTimeout(timer);
	}

	private drop(n: number): void {
		// shift() is O(1) on V8 (left trimming): the common case, one line over the limit per push.
		if (n === 1) this.buffer.shift();
		else this.buffer.splice(0, n);
		this.stats.dropped += n;
		this.metrics?.dropped(n);
	}

	/** Starts a send unless one is running or the backoff says wait. */
	private flushSoon(): void {
		this.metrics?.buffered(this.buffer.length);
		if (this.sending || this.buffer.length === 0 || Date.now() < this.retryAt) return;
		void this.send();
	}

	private send(): Promise<void> {
		const run = this.sendBatch().finally(() => {
			this.sending = null;
			this.metrics?.buffered(this.buffer.length);
			// More than a batch waiting: keep going without waiting for the timer.
			if (this.buffer.length >= this.opts.batchSize && !this.closed && this.timer) {
				setImmediate(() => this.flushSoon());
			}
		});
		this.sending = run;
		return run;
	}

	private async sendBatch(): Promise<void> {
		if (!this.templateInstalled) {
			try {
				await this.client.indices.putIndexTemplate({
					name: LOG_TEMPLATE_NAME,
					...(LOG_INDEX_TEMPLATE as object)
				} as never);
				this.templateInstalled = true;
			} catch (err) {
				if (statusOf(err) !== 403) {
					this.failed("installing the index template failed", err);
					return;
				}
				// The user may ship but not manage templates (docker/elasticsearch/setup.sh installs it as
				// `elastic`): the lines matter more than our copy of the template, so ship on and never ask again.
				this.templateInstalled = true;
				this.templateRefused(err);
			}
		}
		const batch = this.buffer.splice(0, this.opts.batchSize);
		if (batch.length === 0) return;
		let rejected = 0;
		try {
			const result = await this.client.helpers.bulk<LogRecord>({
				datasource: batch,
				onDocument: doc => ({ index: { _index: indexFor(doc) } }),
				// One request for the whole batch, sent at once.
				flushBytes: Number.MAX_SAFE_INTEGER,
				flushInterval: 60_000,
				concurrency: 1,
				// Lines refused with 429 (Elasticsearch busy) are tried again by the helper; others are dropped.
				retries: 2,
				wait: this.opts.minBackoff,
				onDrop: () => {
					rejected++;
				}
			});
			this.stats.shipped += result.successful;
			this.metrics?.shipped(result.successful);
			if (rejected > 0) {
				this.stats.dropped += rejected;
				this.metrics?.dropped(rejected);
				// The request went through: no backoff, but the refusal is worth a warning (a mapping problem).
				this.failed(`${rejected} log lines were refused by Elasticsearch`, null, false);
			}
			this.failures = 0;
			this.retryAt = 0;
		} catch (err) {
			// The request as a whole failed (down, timeout, 5xx): the batch goes back in front, still bounded.
			this.buffer = batch.concat(this.buffer);
			if (this.buffer.length > this.opts.maxBuffer) {
				this.drop(this.buffer.length - this.opts.maxBuffer);
			}
			this.failed("shipping logs to Elasticsearch failed", err);
		}
	}

	/** Counted as a ship error (`flashmart_logs_ship_errors_total`) and in `stats`, and said once. */
	private templateRefused(err: unknown): void {
		this.stats.errors++;
		this.stats.templateRefused++;
		this.metrics?.shipError();
		this.opts.warn(
			JSON.stringify({
				"@timestamp": new Date().toISOString(),
				level: "warn",
				message:
					`log shipping: the index template ${LOG_TEMPLATE_NAME} was refused (${describeError(err)}); ` +
					"shipping without installing it (the Elasticsearch setup job installs it)",
				service: "log-shipper"
			})
		);
	}

	private failed(what: string, err: unknown, backOff = true): void {
		this.stats.errors++;
		this.metrics?.shipError();
		if (backOff) {
			this.failures++;
			const delay = Math.min(this.opts.maxBackoff, this.opts.minBackoff * 2 ** (this.failures - 1));
			this.retryAt = Date.now() + delay / 2 + Math.random() * (delay / 2);
		}
		// At most one warning a minute: a long outage must not flood the console either.
		if (Date.now() - this.lastWarning >= 60_000) {
			this.lastWarning = Date.now();
			this.opts.warn(
				JSON.stringify({
					"@timestamp": new Date().toISOString(),
					level: "warn",
					message: `log shipping: ${what}${err ? ` (${describeError(err)})` : ""}; retrying with backoff`,
					service: "log-shipper",
					buffered: this.buffer.length,
					dropped: this.stats.dropped
				})
			);
		}
	}
}

/** The HTTP status of an Elasticsearch client error (ResponseError), if it has one. */
function statusOf(err: unknown): number | undefined {
	return (err as { meta?: { statusCode?: number } } | null)?.meta?.statusCode;
}

const sleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));
