/**
 * The gateway's HTTP metrics, named so the usual Prometheus queries work verbatim:
 * `http_requests_total{method,route,status}` and `http_request_duration_seconds{method,route}` (histogram).
 * `route` is the operation's template from services/api/contract.ts (`/api/products/:id`), never a raw path, so the label
 * set stays bounded whatever clients send; anything that matched no operation is `unmatched`.
 *
 * Kept cheap on purpose (Moleculer's own reporter already halves a bare gateway's throughput): the metric objects
 * are looked up once, and each request costs one label object, one counter update and one histogram observation.
 */
import type { MetricRegistry } from "moleculer";

export const HTTP_METRIC = {
	REQUESTS: "http.requests.total",
	DURATION: "http.request.duration.seconds"
} as const;

/** The route label of every request that matched no operation (unknown paths, methods, internal actions). */
export const UNMATCHED_ROUTE = "unmatched";

/** 5 ms .. 10 s: from a cached read to a request at the edge of REQUEST_TIMEOUT. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Counter {
	increment(labels: Record<string, unknown>, value?: number): void;
}
interface Histogram {
	observe(value: number, labels: Record<string, unknown>): void;
}

export interface HttpMetrics {
	/** Records one answered request; `started` is a `performance.now()` reading from its arrival. */
	record(method: string, route: string | undefined, status: number, started: number): void;
}

/** An operation and the statuses it documents: its `http_requests_total` series start at 0. */
export interface KnownRoute {
	method: string;
	route: string;
	statuses: number[];
}

/**
 * Every operation of an OpenAPI document (the one the gateway serves) with the statuses it documents, under the
 * route label the gateway counts it by (`/api/products/{id}` is counted as `/api/products/:id`).
 */
export function documentedRoutes(doc: Record<string, unknown>): KnownRoute[] {
	const paths = (doc.paths ?? {}) as Record<string, Record<string, { responses?: object }>>;
	return Object.entries(paths).flatMap(([p, ops]) =>
		Object.entries(ops).map(([method, op]) => ({
			method: method.toUpperCase(),
			route: p.replace(/\{([A-Za-z0-9_]+)\}/g, ":$1"),
			statuses: Object.keys(op.responses ?? {})
				.filter(s => /^\d{3}$/.test(s))
				.map(Number)
		}))
	);
}

/**
 * Registers the two families on `registry` and returns their recorder. The `known` routes' request counts start at
 * 0 (the Prometheus client convention), so the first 504 of a route is an increase, not a series born at 1.
 */
export function createHttpMetrics(registry: MetricRegistry, known: KnownRoute[] = []): HttpMetrics {
	const requests = (registry.getMetric(HTTP_METRIC.REQUESTS) ??
		registry.register({
			type: "counter",
			name: HTTP_METRIC.REQUESTS,
			labelNames: ["method", "route", "status"],
			description: "HTTP requests answered by the gateway",
			rate: false
		} as never)) as unknown as Counter;
	const duration = (registry.getMetric(HTTP_METRIC.DURATION) ??
		registry.register({
			type: "histogram",
			name: HTTP_METRIC.DURATION,
			labelNames: ["method", "route"],
			description: "Time from a request's arrival to its answer",
			unit: "seconds",
			buckets: DURATION_BUCKETS,
			rate: false
		} as never)) as unknown as Histogram;

	// Numbers, as `record` passes them: the registry keys a series by its label values' types too.
	for (const { method, route, statuses } of known) {
		for (const status of statuses) requests.increment({ method, route, status }, 0);
	}

	return {
		record(method, route, status, started) {
			// One object for both: the histogram only reads the label names it declares.
			const labels = { method, route: route ?? UNMATCHED_ROUTE, status };
			requests.increment(labels, 1);
			duration.observe((performance.now() - started) / 1000, labels);
		}
	};
}

/** A recorder that does nothing, for nodes with metrics switched off. */
export const NO_HTTP_METRICS: HttpMetrics = { record() {} };
