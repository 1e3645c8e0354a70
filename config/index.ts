/**
 * The typed environment. Every variable FlashMart reads is read here, once, defaulted and validated;
 * `.env.example` documents each of them. A wrong value stops start-up with a message naming the variable.
 */
import os from "node:os";
import path from "node:path";
import Validator from "fastest-validator";
import proxyaddr from "proxy-addr";
import { isCountry, isCurrency, normalizeEmail } from "../lib/validation";

/**
 * Every service FlashMart ships (a file `services/<name>.service.ts` each), in start order.
 * `SERVICES` and `REQUIRED_SERVICES` pick from these and default to all of them.
 */
export const ALL_SERVICES = [
	"api",
	"users",
	"products",
	"media",
	"inventory",
	"carts",
	"orders",
	"payments",
	"notifications",
	"pricing"
] as const;

export type Mode = "embedded" | "cluster";
export type LogFormat = "json" | "pretty";
export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace";

export interface LogShippingConfig {
	/** Elasticsearch node URL(s), comma-separated in ELASTICSEARCH_URL. */
	nodes: string[];
	auth: { apiKey: string } | { username: string; password: string } | null;
	/** Lines per `_bulk` request. */
	batchSize: number;
	/** ms between flushes of a partial batch. */
	flushInterval: number;
	/** Lines held in memory at most; past it the oldest are dropped (and counted). */
	maxBuffer: number;
	/** ms before a request to Elasticsearch counts as failed. */
	requestTimeout: number;
}

export class ConfigError extends Error {
	constructor(
		public readonly variable: string,
		detail: string
	) {
		super(`Invalid environment variable ${variable}: ${detail}`);
		this.name = "ConfigError";
	}
}

const list = (value: string | undefined): string[] =>
	(value ?? "")
		.split(",")
		.map(s => s.trim())
		.filter(Boolean);

/** OTEL_EXPORTER_OTLP_HEADERS: `key=value` pairs, comma-separated, values URL-encoded (the OTLP exporter spec). */
const OTLP_HEADERS = /^\s*[^=,\s]+\s*=[^,]*(,\s*[^=,\s]+\s*=[^,]*)*$/;

/** `a=1,b=x%20y` → { a: "1", b: "x y" }; a broken %-escape stops the start, naming `variable`. */
function otlpHeaders(variable: string, value: string | undefined): Record<string, string> {
	return Object.fromEntries(
		list(value).map(pair => {
			const at = pair.indexOf("=");
			try {
				return [pair.slice(0, at).trim(), decodeURIComponent(pair.slice(at + 1).trim())];
			} catch {
				throw new ConfigError(
					variable,
					`the value of ${pair.slice(0, at).trim()} is not URL-encoded`
				);
			}
		})
	);
}

const SCHEMA = {
	$$strict: false,
	NODE_ENV: { type: "enum", values: ["development", "production", "test"], default: "development" },
	NAMESPACE: { type: "string", pattern: /^[A-Za-z0-9_-]{0,64}$/, default: "flashmart" },
	NODE_ID: { type: "string", pattern: /^[A-Za-z0-9_.-]{1,128}$/, optional: true },
	TRANSPORTER: { type: "string", pattern: /^nats:\/\/\S+$/, optional: true },
	GATEWAY_HOST: { type: "string", min: 1, default: "0.0.0.0" },
	GATEWAY_PORT: { type: "number", convert: true, integer: true, min: 0, max: 65535, default: 5921 },
	/** The gateway's address as clients reach it (scheme, host, port, optional path): absolute links such as image URLs. */
	PUBLIC_URL: { type: "string", pattern: /^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/, optional: true },
	/**
	 * How long a stopping gateway keeps its port open, failing /ready and answering 503, before it closes it: time for
	 * a load balancer's probe to take it out, so no connection is refused mid-handshake. Within SHUTDOWN_TIMEOUT.
	 */
	GATEWAY_DRAIN_DELAY: {
		type: "number",
		convert: true,
		integer: true,
		min: 0,
		max: 600000,
		default: 1000
	},
	GATEWAY_READ_CACHE_TTL: {
		type: "number",
		convert: true,
		integer: true,
		min: 0,
		max: 3600,
		default: 10
	},
	REQUEST_TIMEOUT: {
		type: "number",
		convert: true,
		integer: true,
		min: 100,
		max: 600000,
		default: 10000
	},
	SHUTDOWN_TIMEOUT: {
		type: "number",
		convert: true,
		integer: true,
		min: 0,
		max: 600000,
		default: 10000
	},
	HEARTBEAT_INTERVAL: { type: "number", convert: true, integer: true, min: 1, max: 60, default: 5 },
	HEARTBEAT_TIMEOUT: {
		type: "number",
		convert: true,
		integer: true,
		min: 2,
		max: 300,
		default: 15
	},
	BULKHEAD_CONCURRENCY: {
		type: "number",
		convert: true,
		integer: true,
		min: 1,
		max: 10000,
		default: 100
	},
	BULKHEAD_MAX_QUEUE: {
		type: "number",
		convert: true,
		integer: true,
		min: 0,
		max: 100000,
		default: 1000
	},
	BREAKER_THRESHOLD: { type: "number", convert: true, min: 0.01, max: 1, default: 0.5 },
	BREAKER_MIN_REQUESTS: {
		type: "number",
		convert: true,
		integer: true,
		min: 1,
		max: 100000,
		default: 20
	},
	BREAKER_WINDOW: { type: "number", convert: true, integer: true, min: 1, max: 3600, default: 60 },
	BREAKER_HALF_OPEN_TIME: {
		type: "number",
		convert: true,
		integer: true,
		min: 100,
		max: 600000,
		default: 10000
	},
	LOG_LEVEL: {
		type: "enum",
		values: ["fatal", "error", "warn", "info", "debug", "trace"],
		default: "info"
	},
	LOG_FORMAT: { type: "enum", values: ["json", "pretty"], optional: true },
	METRICS_ENABLED: { type: "boolean", convert: true, default: true },
	METRICS_PORT: { type: "number", convert: true, integer: true, min: 0, max: 65535, default: 3030 },
	ELASTICSEARCH_URL: {
		type: "string",
		pattern: /^https?:\/\/[^\s,]+(,https?:\/\/[^\s,]+)*$/,
		optional: true
	},
	ELASTICSEARCH_USERNAME: { type: "string", min: 1, max: 256, optional: true },
	ELASTICSEARCH_PASSWORD: { type: "string", min: 1, max: 1024, optional: true },
	ELASTICSEARCH_API_KEY: { type: "string", min: 1, max: 1024, optional: true },
	ELASTICSEARCH_TIMEOUT: {
		type: "number",
		convert: true,
		integer: true,
		min: 100,
		max: 300000,
		default: 10000
	},
	LOG_SHIP_BATCH_SIZE: {
		type: "number",
		convert: true,
		integer: true,
		min: 1,
		max: 10000,
		default: 500
	},
	LOG_SHIP_FLUSH_INTERVAL: {
		type: "number",
		convert: true,
		integer: true,
		min: 10,
		max: 600000,
		default: 1000
	},
	LOG_SHIP_MAX_BUFFER: {
		type: "number",
		convert: true,
		integer: true,
		min: 1,
		max: 1000000,
		default: 10000
	},
	DATA_DIR: { type: "string", min: 1, default: "./data" },
	MONGO_URI: { type: "string", pattern: /^mongodb(\+srv)?:\/\/\S+$/, optional: true },
	JWT_PRIVATE_KEY: {
		type: "string",
		pattern: /-----BEGIN (RSA )?PRIVATE KEY-----/,
		optional: true
	},
	JWT_PUBLIC_KEY: { type: "string", pattern: /-----BEGIN (RSA )?PUBLIC KEY-----/, optional: true },
	JWT_ISSUER: { type: "string", min: 1, max: 200, default: "flashmart" },
	JWT_AUDIENCE: { type: "string", min: 1, max: 200, default: "flashmart-api" },
	ACCESS_TOKEN_TTL: {
		type: "number",
		convert: true,
		integer: true,
		min: 10,
		max: 900,
		default: 900
	},
	REFRESH_TOKEN_TTL: {
		type: "number",
		convert: true,
		integer: true,
		min: 60,
		max: 7776000,
		default: 2592000
	},
	LOGIN_MAX_FAILURES: {
		type: "number",
		convert: true,
		integer: true,
		min: 1,
		max: 1000,
		default: 5
	},
	LOGIN_FAILURE_WINDOW: {
		type: "number",
		convert: true,
		integer: true,
		min: 1,
		max: 86400,
		default: 900
	},
	LOGIN_ADDRESS_MAX_ACCOUNTS: {
		type: "number",
		convert: true,
		integer: true,
		min: 1,
		max: 100000,
		default: 20
	},
	LOGIN_ADDRESS_WINDOW: {
		type: "number",
		convert: true,
		integer: true,
		min: 1,
		max: 86400,
		default: 3600
	},
	LOGIN_DEVICE_TOKEN_TTL: {
		type: "number",
		convert: true,
		integer: true,
		min: 60,
		max: 31536000,
		default: 2592000
	},
	REGISTER_MAX_PER_WINDOW: {
		type: "number",
		convert: true,
		integer: true,
		min: 1,
		max: 100000,
		default: 100
	},
	REGISTER_WINDOW: {
		type: "number",
		convert: true,
		integer: true,
		min: 1,
		max: 86400,
		default: 60
	},
	ADMIN_EMAIL: { type: "email", optional: true },
	CACHER: { type: "string", pattern: /^(memory|rediss?:\/\/\S+)$/, default: "memory" },
	MINIO_ENDPOINT: { type: "string", pattern: /^[A-Za-z0-9.-]+$/, optional: true },
	MINIO_PORT: { type: "number", convert: true, integer: true, min: 1, max: 65535, default: 9000 },
	MINIO_USE_SSL: { type: "boolean", convert: true, default: false },
	MINIO_ACCESS_KEY: { type: "string", min: 3, max: 128, optional: true },
	MINIO_SECRET_KEY: { type: "string", min: 8, max: 128, optional: true },
	MINIO_BUCKET: { type: "string", pattern: /^[a-z0-9][a-z0-9.-]{2,62}$/, default: "ecommerce" },
	MINIO_REGION: { type: "string", min: 1, max: 64, default: "us-east-1" },
	SEED_DEMO: { type: "boolean", convert: true, optional: true },
	CATALOG_CACHE_TTL: {
		type: "number",
		convert: true,
		integer: true,
		min: 1,
		max: 86400,
		default: 300
	},
	LOW_STOCK_THRESHOLD: {
		type: "number",
		convert: true,
		integer: true,
		min: 0,
		max: 1000000,
		default: 5
	},
	INVENTORY_SWEEP_INTERVAL: {
		type: "number",
		convert: true,
		integer: true,
		min: 100,
		max: 3600000,
		default: 5000
	},
	HOLD_GRACE: {
		type: "number",
		convert: true,
		integer: true,
		min: 1000,
		max: 86400000,
		default: 120000
	},
	SALE_HOLD_SECONDS: {
		type: "number",
		convert: true,
		integer: true,
		min: 10,
		max: 86400,
		default: 120
	},
	CHECKOUT_CONCURRENCY: {
		type: "number",
		convert: true,
		integer: true,
		min: 1,
		max: 10000,
		default: 32
	},
	CHECKOUT_QUEUE: {
		type: "number",
		convert: true,
		integer: true,
		min: 0,
		max: 100000,
		default: 64
	},
	SOLD_OUT_TTL: {
		type: "number",
		convert: true,
		integer: true,
		min: 0,
		max: 60000,
		default: 2000
	},
	ORDER_TTL: { type: "number", convert: true, integer: true, min: 1, max: 604800, default: 900 },
	ORDER_SWEEP_INTERVAL: {
		type: "number",
		convert: true,
		integer: true,
		min: 100,
		max: 3600000,
		default: 5000
	},
	ADMIN_PASSWORD: { type: "string", min: 8, max: 128, optional: true },
	PAYMENT_PROVIDER_TIMEOUT: {
		type: "number",
		convert: true,
		integer: true,
		min: 100,
		max: 600000,
		default: 5000
	},
	PAYMENT_RECONCILE_INTERVAL: {
		type: "number",
		convert: true,
		integer: true,
		min: 100,
		max: 3600000,
		default: 5000
	},
	OUTBOX_RELAY_INTERVAL: {
		type: "number",
		convert: true,
		integer: true,
		min: 50,
		max: 3600000,
		default: 1000
	},
	EVENT_MAX_RETRIES: {
		type: "number",
		convert: true,
		integer: true,
		min: 0,
		max: 1000,
		default: 5
	},
	EVENT_ACK_WAIT: {
		type: "number",
		convert: true,
		integer: true,
		min: 1000,
		max: 3600000,
		default: 10000
	},
	EVENT_RETENTION: {
		type: "number",
		convert: true,
		integer: true,
		min: 60,
		max: 31536000,
		default: 604800
	},
	/**
	 * Copies of each durable-event stream in a NATS cluster (JetStream replicas): 1 on one server; 3 on a
	 * three-server cluster (deploy/kubernetes), so a stream survives one server down. At most the cluster's size.
	 */
	EVENT_STREAM_REPLICAS: {
		type: "number",
		convert: true,
		integer: true,
		min: 1,
		max: 5,
		default: 1
	},
	NOTIFICATION_SENDER: { type: "enum", values: ["log"], default: "log" },
	/** Currencies whose catalog prices include tax (comma-separated ISO-4217); in all others tax is added on top. */
	TAX_INCLUSIVE_CURRENCIES: {
		type: "string",
		pattern: /^([A-Z]{3}(,[A-Z]{3})*)?$/,
		default: "EUR,GBP"
	},
	/** The country a cart's tax is estimated for until checkout names the shipping address (ISO 3166-1 alpha-2). */
	TAX_DEFAULT_COUNTRY: { type: "string", pattern: /^[A-Z]{2}$/, default: "US" },
	TRACING_ENABLED: { type: "boolean", convert: true, default: false },
	/** Share of new traces recorded; a trace continued from a trusted client follows its sampled flag. */
	TRACING_SAMPLE_RATIO: { type: "number", convert: true, min: 0, max: 1, default: 1 },
	// The OpenTelemetry SDK's own variables, as its specification defines them (read here like every other one).
	OTEL_SERVICE_NAME: { type: "string", min: 1, max: 128, optional: true },
	OTEL_EXPORTER_OTLP_ENDPOINT: { type: "string", pattern: /^https?:\/\/\S+$/, optional: true },
	OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: {
		type: "string",
		pattern: /^https?:\/\/\S+$/,
		optional: true
	},
	OTEL_EXPORTER_OTLP_HEADERS: { type: "string", pattern: OTLP_HEADERS, optional: true },
	OTEL_EXPORTER_OTLP_TRACES_HEADERS: { type: "string", pattern: OTLP_HEADERS, optional: true },
	OTEL_EXPORTER_OTLP_TIMEOUT: {
		type: "number",
		convert: true,
		integer: true,
		min: 1,
		max: 600000,
		default: 10000
	},
	OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: {
		type: "number",
		convert: true,
		integer: true,
		min: 1,
		max: 600000,
		optional: true
	},
	OTEL_EXPORTER_OTLP_COMPRESSION: { type: "enum", values: ["gzip", "none"], optional: true },
	OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: { type: "enum", values: ["gzip", "none"], optional: true },
	OTEL_BSP_SCHEDULE_DELAY: {
		type: "number",
		convert: true,
		integer: true,
		min: 1,
		max: 600000,
		default: 5000
	},
	OTEL_BSP_EXPORT_TIMEOUT: {
		type: "number",
		convert: true,
		integer: true,
		min: 1,
		max: 600000,
		default: 30000
	},
	OTEL_BSP_MAX_QUEUE_SIZE: {
		type: "number",
		convert: true,
		integer: true,
		min: 1,
		max: 1000000,
		default: 2048
	},
	OTEL_BSP_MAX_EXPORT_BATCH_SIZE: {
		type: "number",
		convert: true,
		integer: true,
		min: 1,
		max: 100000,
		default: 512
	},
	TEST_CRASH_BEFORE_PUBLISH: { type: "string", pattern: /^[a-z]+\.[a-z]+$/, optional: true }
} as const;

/** Every environment variable FlashMart reads (each is documented in .env.example). */
export const ENV_VARIABLES: readonly string[] = [
	...Object.keys(SCHEMA).filter(k => !k.startsWith("$$")),
	"SERVICES",
	"REQUIRED_SERVICES",
	"CORS_ORIGINS",
	"TRUSTED_PROXIES",
	"TRACING_TRUSTED_CLIENTS"
];

/** The TypeScript type of one validated variable, read off its rule in SCHEMA. */
type ValueOf<R> = R extends { type: "number" }
	? number
	: R extends { type: "boolean" }
		? boolean
		: R extends { type: "enum"; values: readonly (infer V)[] }
			? V
			: string;
/** Validated variables: a rule with a default always has a value; an optional one may be absent. */
type Raw = {
	[K in Exclude<keyof typeof SCHEMA, `$$${string}`>]: (typeof SCHEMA)[K] extends {
		default: unknown;
	}
		? ValueOf<(typeof SCHEMA)[K]>
		: ValueOf<(typeof SCHEMA)[K]> | undefined;
};

const check = new Validator({ useNewCustomCheckerFunction: true }).compile(SCHEMA as never);

/** Without PUBLIC_URL: the gateway's own address, a wildcard listening address read as this machine (localhost). */
function defaultPublicUrl(host: string, port: number): string {
	const name = ["0.0.0.0", "::", "[::]"].includes(host) ? "localhost" : host;
	return `http://${name.includes(":") && !name.startsWith("[") ? `[${name}]` : name}:${port}`;
}

/** Reads and validates `env` (default `process.env`). Throws ConfigError naming the first bad variable. */
export function loadConfig(
	env: NodeJS.ProcessEnv = process.env,
	opts: { withoutServices?: boolean } = {}
) {
	// Empty strings count as unset, as they do in a compose file's `VAR=`.
	const raw: Record<string, unknown> = {};
	for (const key of Object.keys(SCHEMA)) {
		if (key.startsWith("$$")) continue;
		const value = env[key];
		if (value !== undefined && value.trim() !== "") raw[key] = value.trim();
	}
	// PEM keys may arrive on one line (a .env file) with literal "\n" between lines.
	for (const key of ["JWT_PRIVATE_KEY", "JWT_PUBLIC_KEY"]) {
		if (typeof raw[key] === "string") raw[key] = (raw[key] as string).replace(/\\n/g, "\n");
	}
	const result = check(raw);
	if (result !== true) {
		const first = (result as Array<{ field: string; message: string }>)[0];
		throw new ConfigError(first.field, first.message.replace(/^The '[^']+' field/, "value"));
	}
	const r = raw as unknown as Raw;

	const services = list(env.SERVICES);
	for (const s of services) {
		if (!path.isAbsolute(s) && !(ALL_SERVICES as readonly string[]).includes(s)) {
			throw new ConfigError(
				"SERVICES",
				`unknown service '${s}' (known: ${ALL_SERVICES.join(", ")})`
			);
		}
	}
	for (const variable of ["TRUSTED_PROXIES", "TRACING_TRUSTED_CLIENTS"]) {
		try {
			proxyaddr.compile(list(env[variable]));
		} catch (err) {
			throw new ConfigError(variable, (err as Error).message);
		}
	}
	const required =
		env.REQUIRED_SERVICES === undefined ? [...ALL_SERVICES] : list(env.REQUIRED_SERVICES);
	if (r.HEARTBEAT_TIMEOUT <= r.HEARTBEAT_INTERVAL) {
		throw new ConfigError("HEARTBEAT_TIMEOUT", "must be greater than HEARTBEAT_INTERVAL");
	}
	if (!isCountry(r.TAX_DEFAULT_COUNTRY)) {
		throw new ConfigError("TAX_DEFAULT_COUNTRY", "not an ISO 3166-1 alpha-2 country code");
	}
	const notCurrencies = list(r.TAX_INCLUSIVE_CURRENCIES).filter(c => !isCurrency(c));
	if (notCurrencies.length > 0) {
		throw new ConfigError(
			"TAX_INCLUSIVE_CURRENCIES",
			`${notCurrencies.join(", ")}: not an ISO-4217 currency in use`
		);
	}

	const transporter = r.TRANSPORTER ?? null;
	// A REPL or seed node joins a cluster without running services (and so needs none of their secrets).
	const nodeServices = opts.withoutServices
		? []
		: services.length > 0
			? services
			: [...ALL_SERVICES];
	if (transporter) {
		// The cluster mode never defaults secrets.
		if (nodeServices.includes("users") && !r.JWT_PRIVATE_KEY) {
			throw new ConfigError(
				"JWT_PRIVATE_KEY",
				"required in cluster mode on a node running the users service"
			);
		}
		if (nodeServices.includes("api") && !r.JWT_PUBLIC_KEY && !r.JWT_PRIVATE_KEY) {
			throw new ConfigError("JWT_PUBLIC_KEY", "required in cluster mode on a gateway node");
		}
	}
	if (r.MINIO_ENDPOINT && (!r.MINIO_ACCESS_KEY || !r.MINIO_SECRET_KEY)) {
		throw new ConfigError(
			r.MINIO_ACCESS_KEY ? "MINIO_SECRET_KEY" : "MINIO_ACCESS_KEY",
			"required with MINIO_ENDPOINT"
		);
	}
	if (transporter && nodeServices.includes("media") && !r.MINIO_ENDPOINT) {
		throw new ConfigError(
			"MINIO_ENDPOINT",
			"required in cluster mode on a node running the media service"
		);
	}
	if (!!r.ELASTICSEARCH_USERNAME !== !!r.ELASTICSEARCH_PASSWORD) {
		throw new ConfigError(
			r.ELASTICSEARCH_USERNAME ? "ELASTICSEARCH_PASSWORD" : "ELASTICSEARCH_USERNAME",
			"ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD go together"
		);
	}
	if (r.ELASTICSEARCH_API_KEY && r.ELASTICSEARCH_USERNAME) {
		throw new ConfigError(
			"ELASTICSEARCH_API_KEY",
			"give either an API key or a username and password, not both"
		);
	}
	const adminEmail = r.ADMIN_EMAIL ? normalizeEmail(r.ADMIN_EMAIL) : null;
	if (adminEmail && !adminEmail.ok) {
		throw new ConfigError("ADMIN_EMAIL", "not an email address clients could sign in with");
	}
	if (
		transporter &&
		r.MONGO_URI &&
		nodeServices.includes("users") &&
		!r.CACHER.startsWith("redis")
	) {
		// Several users nodes may share MongoDB; login and registration counters must be shared as well.
		throw new ConfigError(
			"CACHER",
			"a redis:// URL is required in cluster mode with MONGO_URI on a node running the users service (shared login throttling counters)"
		);
	}
	if (!!r.ADMIN_EMAIL !== !!r.ADMIN_PASSWORD) {
		throw new ConfigError(
			r.ADMIN_EMAIL ? "ADMIN_PASSWORD" : "ADMIN_EMAIL",
			"ADMIN_EMAIL and ADMIN_PASSWORD go together"
		);
	}
	return {
		env: r.NODE_ENV,
		mode: (transporter ? "cluster" : "embedded") as Mode,
		namespace: r.NAMESPACE,
		nodeID: r.NODE_ID ?? `${os.hostname().toLowerCase()}-${process.pid}`,
		/** NATS URL, or null for the embedded mode (no transporter). */
		transporter,
		/** Service names (from ALL_SERVICES) or paths to extra service files this node runs. */
		services: nodeServices,
		/** Services the cluster needs before `/ready` answers 200. */
		requiredServices: required,
		gateway: {
			host: r.GATEWAY_HOST,
			port: r.GATEWAY_PORT,
			corsOrigins: list(env.CORS_ORIGINS),
			trustedProxies: list(env.TRUSTED_PROXIES),
			readCacheTtl: r.GATEWAY_READ_CACHE_TTL,
			drainDelay: r.GATEWAY_DRAIN_DELAY,
			/** Base of the absolute URLs answers carry, without a trailing slash. */
			publicUrl: (r.PUBLIC_URL ?? defaultPublicUrl(r.GATEWAY_HOST, r.GATEWAY_PORT)).replace(
				/\/+$/,
				""
			)
		},
		requestTimeout: r.REQUEST_TIMEOUT,
		shutdownTimeout: r.SHUTDOWN_TIMEOUT,
		heartbeatInterval: r.HEARTBEAT_INTERVAL,
		heartbeatTimeout: r.HEARTBEAT_TIMEOUT,
		bulkhead: { concurrency: r.BULKHEAD_CONCURRENCY, maxQueueSize: r.BULKHEAD_MAX_QUEUE },
		breaker: {
			threshold: r.BREAKER_THRESHOLD,
			minRequestCount: r.BREAKER_MIN_REQUESTS,
			windowTime: r.BREAKER_WINDOW,
			halfOpenTime: r.BREAKER_HALF_OPEN_TIME
		},
		log: {
			level: r.LOG_LEVEL,
			format: r.LOG_FORMAT ?? ((r.NODE_ENV === "production" ? "json" : "pretty") as LogFormat)
		},
		metrics: { enabled: r.METRICS_ENABLED, port: r.METRICS_PORT },
		/** Log shipping to Elasticsearch; null when ELASTICSEARCH_URL is unset (console only). */
		logShipping: (r.ELASTICSEARCH_URL
			? {
					nodes: list(r.ELASTICSEARCH_URL),
					auth: r.ELASTICSEARCH_API_KEY
						? { apiKey: r.ELASTICSEARCH_API_KEY }
						: r.ELASTICSEARCH_USERNAME && r.ELASTICSEARCH_PASSWORD
							? { username: r.ELASTICSEARCH_USERNAME, password: r.ELASTICSEARCH_PASSWORD }
							: null,
					batchSize: r.LOG_SHIP_BATCH_SIZE,
					flushInterval: r.LOG_SHIP_FLUSH_INTERVAL,
					maxBuffer: r.LOG_SHIP_MAX_BUFFER,
					requestTimeout: r.ELASTICSEARCH_TIMEOUT
				}
			: null) as LogShippingConfig | null,
		dataDir: path.resolve(r.DATA_DIR),
		mongoUri: r.MONGO_URI ?? null,
		/** Moleculer cacher: in-process memory, or Redis shared by every node (`redis://...`). */
		cacher: (r.CACHER === "memory" ? { type: "memory" } : { type: "redis", url: r.CACHER }) as
			{ type: "memory" } | { type: "redis"; url: string },
		objectStore: {
			/** null: the embedded mode starts its own S3 server on loopback, files under DATA_DIR/s3. */
			endpoint: r.MINIO_ENDPOINT ?? null,
			port: r.MINIO_PORT,
			useSSL: r.MINIO_USE_SSL,
			accessKey: r.MINIO_ACCESS_KEY ?? "",
			secretKey: r.MINIO_SECRET_KEY ?? "",
			bucket: r.MINIO_BUCKET,
			region: r.MINIO_REGION
		},
		catalog: {
			seedDemo: r.SEED_DEMO ?? !transporter,
			cacheTtl: r.CATALOG_CACHE_TTL
		},
		inventory: {
			lowStockThreshold: r.LOW_STOCK_THRESHOLD,
			sweepInterval: r.INVENTORY_SWEEP_INTERVAL,
			holdGrace: r.HOLD_GRACE,
			saleHoldSeconds: r.SALE_HOLD_SECONDS
		},
		orders: {
			ttl: r.ORDER_TTL,
			sweepInterval: r.ORDER_SWEEP_INTERVAL,
			checkoutConcurrency: r.CHECKOUT_CONCURRENCY,
			checkoutQueue: r.CHECKOUT_QUEUE,
			soldOutTtl: r.SOLD_OUT_TTL
		},
		payments: {
			providerTimeout: r.PAYMENT_PROVIDER_TIMEOUT,
			reconcileInterval: r.PAYMENT_RECONCILE_INTERVAL
		},
		events: {
			relayInterval: r.OUTBOX_RELAY_INTERVAL,
			maxRetries: r.EVENT_MAX_RETRIES,
			ackWait: r.EVENT_ACK_WAIT,
			retention: r.EVENT_RETENTION,
			streamReplicas: r.EVENT_STREAM_REPLICAS,
			crashBeforePublish: r.TEST_CRASH_BEFORE_PUBLISH ?? null
		},
		notifications: { sender: r.NOTIFICATION_SENDER },
		pricing: {
			taxInclusiveCurrencies: list(r.TAX_INCLUSIVE_CURRENCIES),
			defaultCountry: r.TAX_DEFAULT_COUNTRY
		},
		/** OpenTelemetry tracing (adapters/tracing); null when TRACING_ENABLED is off. */
		tracing: r.TRACING_ENABLED
			? {
					sampleRatio: r.TRACING_SAMPLE_RATIO,
					/** Peers whose `traceparent` the gateway continues (proxy-addr entries); others start a new trace. */
					trustedClients: list(env.TRACING_TRUSTED_CLIENTS),
					serviceName:
						r.OTEL_SERVICE_NAME ??
						(nodeServices.length === 1
							? `flashmart-${path.basename(nodeServices[0])}`
							: "flashmart"),
					exporter: {
						// The signal-specific URL is used as it is; the generic one is a base that gets /v1/traces.
						url:
							r.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
							`${(r.OTEL_EXPORTER_OTLP_ENDPOINT ?? "http://localhost:4318").replace(/\/+$/, "")}/v1/traces`,
						headers: {
							...otlpHeaders("OTEL_EXPORTER_OTLP_HEADERS", r.OTEL_EXPORTER_OTLP_HEADERS),
							...otlpHeaders(
								"OTEL_EXPORTER_OTLP_TRACES_HEADERS",
								r.OTEL_EXPORTER_OTLP_TRACES_HEADERS
							)
						},
						timeoutMillis: r.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT ?? r.OTEL_EXPORTER_OTLP_TIMEOUT,
						compression:
							r.OTEL_EXPORTER_OTLP_TRACES_COMPRESSION ?? r.OTEL_EXPORTER_OTLP_COMPRESSION ?? "none"
					},
					batch: {
						scheduledDelayMillis: r.OTEL_BSP_SCHEDULE_DELAY,
						exportTimeoutMillis: r.OTEL_BSP_EXPORT_TIMEOUT,
						maxQueueSize: r.OTEL_BSP_MAX_QUEUE_SIZE,
						maxExportBatchSize: Math.min(
							r.OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
							r.OTEL_BSP_MAX_QUEUE_SIZE
						)
					}
				}
			: null,
		auth: {
			privateKeyPem: r.JWT_PRIVATE_KEY ?? null,
			publicKeyPem: r.JWT_PUBLIC_KEY ?? null,
			issuer: r.JWT_ISSUER,
			audience: r.JWT_AUDIENCE,
			accessTokenTtl: r.ACCESS_TOKEN_TTL,
			refreshTokenTtl: r.REFRESH_TOKEN_TTL,
			loginMaxFailures: r.LOGIN_MAX_FAILURES,
			loginFailureWindow: r.LOGIN_FAILURE_WINDOW,
			loginAddressMaxAccounts: r.LOGIN_ADDRESS_MAX_ACCOUNTS,
			loginAddressWindow: r.LOGIN_ADDRESS_WINDOW,
			deviceTokenTtl: r.LOGIN_DEVICE_TOKEN_TTL,
			registerMaxPerWindow: r.REGISTER_MAX_PER_WINDOW,
			registerWindow: r.REGISTER_WINDOW,
			adminEmail: adminEmail && adminEmail.ok ? adminEmail.email : null,
			adminPassword: r.ADMIN_PASSWORD ?? null
		}
	};
}

/** The typed configuration: what loadConfig makes of the variables in SCHEMA. */
export type AppConfig = ReturnType<typeof loadConfig>;

/** The key of the broker options under which brokerOptions() hands the configuration to every service. */
export const CONFIG_OPTION = "flashmart";

/**
 * The configuration a broker was created with: service files export `(broker) => createXService(configOf(broker))`,
 * so the same files load under server.ts, moleculer-runner and the tests without reading the environment themselves.
 */
export function configOf(broker: { options: object }): AppConfig {
	const cfg = (broker.options as Record<string, unknown>)[CONFIG_OPTION] as AppConfig | undefined;
	if (!cfg) {
		throw new Error(
			"This broker has no FlashMart configuration: create it with brokerOptions(cfg) (moleculer.config.ts)"
		);
	}
	return cfg;
}
