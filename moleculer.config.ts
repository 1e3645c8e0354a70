/**
 * Broker options, and nothing else: every value comes from config/.
 * Embedded mode (no TRANSPORTER): all services in one broker. Cluster mode: NATS, `SERVICES` picks this node's services.
 */
import type { BrokerOptions, Errors as MoleculerErrors, ServiceBroker } from "moleculer";
import { Errors } from "moleculer";
import { type AppConfig, CONFIG_OPTION, loadConfig } from "./config";
import { eventsMiddleware } from "./adapters/events";
import { resolveLogShipper } from "./adapters/logging";
import type { LogShipper } from "./adapters/logging/log-shipper";
import { FlashMartLogger } from "./adapters/logging/logger";
import { trackNatsConnection } from "./adapters/patches/nats-connection-state.patch";
import { BreakerResetMiddleware } from "./adapters/patches/breaker-reset.patch";
import { coalesceNatsWrites } from "./adapters/patches/nats-write-coalescing.patch";
import { FlashMartPrometheusReporter } from "./adapters/patches/prometheus-reporter.patch";
import { NullRefusingValidator } from "./adapters/patches/null-refusing-validator.patch";
import DeadlineMiddleware from "./middlewares/deadline.middleware";
import { ShutdownDeadlineMiddleware } from "./middlewares/shutdown-deadline.middleware";
import TransporterDownMiddleware from "./middlewares/transporter-down.middleware";
import LogShippingMiddleware from "./middlewares/log-shipping.middleware";
import ActionMetricsOptOutMiddleware from "./middlewares/action-metrics.middleware";
import BusinessMetricsMiddleware from "./middlewares/business-metrics.middleware";
import PermissionsMiddleware from "./middlewares/permissions.middleware";
import RequestContextMiddleware from "./middlewares/request-context.middleware";
import { resolveTracing } from "./adapters/tracing";
import TracingMiddleware from "./middlewares/tracing.middleware";

/** How long a stopping node keeps trying to ship its last log lines. */
export const LOG_FLUSH_TIMEOUT_MS = 5000;

type AnyError = Error & { code?: unknown; status?: unknown; expose?: boolean; retryable?: boolean };

/** A 4xx http-errors object (body-parser): its message is written for clients. */
const isClientHttpError = (err: AnyError) =>
	err.expose === true && typeof err.status === "number" && err.status >= 400 && err.status < 500;

/**
 * A Moleculer error, local or rebuilt from the transporter. Custom error classes do not survive the transporter
 * (the receiving node rebuilds a plain error), so this looks at the shape (`code` + `type`), not at `instanceof`.
 */
const isMoleculerShaped = (err: AnyError) =>
	err instanceof Errors.MoleculerError ||
	(typeof err.code === "number" &&
		err.code >= 400 &&
		err.code < 600 &&
		typeof (err as { type?: unknown }).type === "string");

/**
 * The broker's last word on an error from an action or event handler: Moleculer errors pass through; anything else
 * (a TypeError, a driver error) is logged with its stack and replaced by a detail-free 500, so nothing internal
 * crosses the transporter or reaches a client.
 */
function errorHandler(this: ServiceBroker, err: AnyError, info: unknown) {
	if (isMoleculerShaped(err) || isClientHttpError(err)) throw err;
	const requestID = (info as { ctx?: { requestID?: string | null } }).ctx?.requestID;
	this.logger.error("Unhandled error in a handler", { requestID }, err);
	throw new Errors.MoleculerServerError("Internal server error", 500, "INTERNAL_ERROR");
}

/**
 * `logShipper`: where every log record goes besides the console (server.ts makes one when ELASTICSEARCH_URL is
 * set, and flushes it after the broker has stopped).
 */
export function brokerOptions(
	cfg: AppConfig,
	opts: { logShipper?: LogShipper | null } = {}
): BrokerOptions {
	// One socket write per event-loop turn instead of one per message (adapters/patches/nats-write-coalescing.patch.ts).
	if (cfg.transporter) {
		coalesceNatsWrites();
		trackNatsConnection();
	}
	const options: BrokerOptions = {
		namespace: cfg.namespace,
		nodeID: cfg.nodeID,

		transporter: cfg.transporter
			? {
					type: "NATS",
					options: {
						url: cfg.transporter,
						// Keep trying: a NATS restart must not take the node down for good.
						maxReconnectAttempts: -1,
						reconnectTimeWait: 500
					}
				}
			: null,
		serializer: "JSON",
		// Stream chunks (image uploads) well below NATS's 1 MiB max payload, even after JSON-encoding binary data.
		transit: { maxChunkSize: 64 * 1024 },

		logger: new FlashMartLogger({
			level: cfg.log.level,
			format: cfg.log.format,
			sink: opts.logShipper ?? null
		}) as unknown as BrokerOptions["logger"],
		logLevel: cfg.log.level,

		// Never wait forever: every call has a deadline, and the gateway turns it into a 504.
		requestTimeout: cfg.requestTimeout,
		// Off by default; an action that is safe to repeat opts in with `retryPolicy: { enabled: true }`.
		retryPolicy: {
			enabled: false,
			retries: 3,
			delay: 100,
			maxDelay: 1000,
			factor: 2,
			check: (err: Error) => !!(err as MoleculerErrors.MoleculerRetryableError).retryable
		},

		heartbeatInterval: cfg.heartbeatInterval,
		heartbeatTimeout: cfg.heartbeatTimeout,
		// In-flight requests finish before a node stops (graceful shutdown on SIGTERM).
		tracking: { enabled: true, shutdownTimeout: cfg.shutdownTimeout },
		disableBalancer: false,
		registry: { strategy: "RoundRobin", preferLocal: true },

		circuitBreaker: {
			enabled: true,
			threshold: cfg.breaker.threshold,
			minRequestCount: cfg.breaker.minRequestCount,
			windowTime: cfg.breaker.windowTime,
			halfOpenTime: cfg.breaker.halfOpenTime,
			// Only server-side failures count; a client's 4xx says nothing about the node's health.
			check: (err: Error) => {
				const code = (err as AnyError).code;
				return typeof code === "number" && code >= 500;
			}
		},
		bulkhead: {
			enabled: true,
			concurrency: cfg.bulkhead.concurrency,
			maxQueueSize: cfg.bulkhead.maxQueueSize
		},

		// Read caches: per process in the embedded mode, Redis (shared by every node) when CACHER is a redis:// URL.
		cacher:
			cfg.cacher.type === "redis"
				? ({
						type: "Redis",
						// ioredis takes a URL string; Moleculer's typings only know its options object.
						options: { redis: cfg.cacher.url as never, prefix: `${cfg.namespace}-cache`, ttl: 300 }
					} as BrokerOptions["cacher"])
				: { type: "Memory", options: { ttl: 300 } },

		// `null` is a 422 for every param whose rule does not say `nullable: true`, optional ones included.
		validator: new NullRefusingValidator() as unknown as BrokerOptions["validator"],
		errorHandler,

		metrics: {
			enabled: cfg.metrics.enabled,
			reporter: cfg.metrics.enabled
				? [
						// An instance: Moleculer's resolver takes it as it is (its typings only know names).
						new FlashMartPrometheusReporter({
							port: cfg.metrics.port,
							path: "/metrics"
						}) as never
					]
				: []
		},
		tracing: { enabled: false },
		// server.ts owns SIGINT/SIGTERM: it stops the gateway taking connections before the broker stops.
		skipProcessEventRegistration: true,

		middlewares: [
			ActionMetricsOptOutMiddleware,
			RequestContextMiddleware,
			PermissionsMiddleware,
			DeadlineMiddleware,
			TransporterDownMiddleware,
			BreakerResetMiddleware(),
			ShutdownDeadlineMiddleware(cfg.shutdownTimeout),
			BusinessMetricsMiddleware,
			LogShippingMiddleware(opts.logShipper ?? null),
			// OpenTelemetry spans and W3C trace context (TRACING_ENABLED); a middleware without hooks when off.
			TracingMiddleware(resolveTracing(cfg)),
			// Durable events: JetStream on the transporter's NATS, or in-process in the embedded mode.
			eventsMiddleware(cfg)
		]
	};
	// Every service file reads its configuration from here (configOf in config/).
	return Object.assign(options, { [CONFIG_OPTION]: cfg });
}

/**
 * What moleculer-runner loads (`moleculer-runner --config dist/moleculer.config.js`, SERVICEDIR=dist/services):
 * the broker server.ts builds, from the same environment. Two differences, both the runner's: it owns the stop
 * signals, so the broker registers them; and log lines are flushed to Elasticsearch when the broker has stopped.
 */
export default function runnerOptions(): BrokerOptions {
	const cfg = loadConfig(process.env);
	const logShipper = resolveLogShipper(cfg);
	const options = brokerOptions(cfg, { logShipper });
	options.skipProcessEventRegistration = false;
	options.stopped = () => logShipper?.close(LOG_FLUSH_TIMEOUT_MS);
	// After this returns, the runner overwrites every option whose upper-cased name is an environment variable with
	// that variable's raw string: TRANSPORTER and CACHER would lose their options. They have been read already.
	for (const key of Object.keys(options)) delete process.env[key.toUpperCase()];
	return options;
}
