/**
 * Moleculer's Prometheus reporter with standard histograms. Moleculer prints a bucket histogram without its `_sum`
 * and `_count` series (only quantile histograms get them) and with its bounds in object-key order, so a mean latency
 * query (`rate(x_sum[5m]) / rate(x_count[5m])`) finds nothing. This reporter prints every bucket histogram itself,
 * bounds ascending, then `+Inf`, `_sum` and `_count`; every other family is printed by Moleculer's code, unchanged.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { MetricReporters, type ServiceBroker } from "moleculer";
import { handleHealth } from "../health";
import { type PatchTarget, outOfRange, warnSkipped } from "./target";

/**
 * It overrides the reporter's generatePrometheusResponse/matchMetricName and wraps the registry's `register`, none
 * of them public API; and a Moleculer that prints `_sum` itself would print it twice.
 */
export const TARGET: PatchTarget = { package: "moleculer", range: "~0.15.2" };

interface HistogramItem {
	labels: Record<string, unknown>;
	buckets?: Record<string, number>;
	count: number;
	sum: number;
}

interface StoredMetric {
	name: string;
	type: string;
	description?: string;
	unit?: string;
	buckets?: number[];
	quantiles?: number[];
	snapshot(): HistogramItem[];
}

interface RegisterOptions {
	name: string;
	type: string;
	quantiles?: unknown;
	rate?: boolean;
}

interface ReporterInternals {
	registry: {
		store: Map<string, StoredMetric>;
		register(opts: RegisterOptions): unknown;
	};
	formatMetricName(name: string): string;
}

/** Why Moleculer's reporter is not what this was written against, or null when it is. */
export function probe(): string | null {
	const proto = MetricReporters.Prometheus?.prototype as unknown as
		Record<string, unknown> | undefined;
	if (!proto) return "MetricReporters.Prometheus is missing";
	for (const method of [
		"init",
		"handler",
		"generatePrometheusResponse",
		"matchMetricName",
		"formatMetricName",
		"labelsToStr"
	]) {
		if (typeof proto[method] !== "function") return `Prometheus reporter's ${method} is missing`;
	}
	// Skipping the histograms relies on Moleculer's generator asking matchMetricName of every stored metric.
	const source = String(proto.generatePrometheusResponse);
	for (const part of ["this.registry.store.forEach", "this.matchMetricName(metric.name)"]) {
		if (!source.includes(part)) return `generatePrometheusResponse no longer uses ${part}`;
	}
	return null;
}

const isBucketHistogram = (m: StoredMetric) =>
	m.type === "histogram" && !!m.buckets && !m.quantiles;

/**
 * Moleculer's own metrics (`moleculer.*`) as registered, minus the per-observation work Prometheus never sees: the
 * quantile reservoirs of the request and event time histograms (a sliding window sorted on every scrape, fed on
 * every call) and the `rate` calculators of the counters (Moleculer's in-process req/s, not exported), which made
 * the metrics middleware one of a loaded gateway's top costs (bench/REPORT.md). Buckets stay:
 * `moleculer_request_time_bucket` is what the dashboards and alerts read, now with `_sum` and `_count` too.
 */
export function withoutPerCallExtras(opts: RegisterOptions): RegisterOptions {
	if (!opts.name.startsWith("moleculer.")) return opts;
	const lean = { ...opts, rate: false };
	if (opts.type === "histogram") lean.quantiles = false;
	return lean;
}

/** Whether the patch applies here: checked once a process, when the first reporter starts. */
let applies: boolean | undefined;

export class FlashMartPrometheusReporter extends MetricReporters.Prometheus {
	/** False outside the target: then this is Moleculer's own reporter, unchanged. */
	private patched = false;

	/** Called by the broker's constructor, before any middleware registers its metrics. */
	override init(registry: never): void {
		super.init(registry);
		this.stopOnListenError();
		const reg = (this as unknown as ReporterInternals).registry;
		if (applies === undefined) {
			const reason =
				outOfRange(TARGET) ??
				probe() ??
				(typeof reg.register !== "function" || !(reg.store instanceof Map)
					? "the metric registry has no register() or store Map"
					: null);
			applies = reason === null;
			if (reason !== null) warnSkipped("prometheus-reporter", reason);
		}
		this.patched = applies;
		if (!this.patched) return;
		const register = reg.register.bind(reg);
		reg.register = (opts: RegisterOptions) => register(withoutPerCallExtras(opts));
	}

	/**
	 * Moleculer listens without an `error` listener, so a METRICS_PORT already in use threw an unhandled `error`
	 * event: a stack trace and no log line. A node that cannot listen stops as the gateway does on its port, with a
	 * fatal line naming the variable; an error after listening is logged and the node keeps running.
	 */
	private stopOnListenError(): void {
		const { server, opts, logger } = this as unknown as {
			server?: Server;
			opts: { port?: number };
			logger: { error(...args: unknown[]): void; fatal(message: string): void };
		};
		if (!server) return;
		const onListenError = (err: NodeJS.ErrnoException) => {
			const why =
				err.code === "EADDRINUSE"
					? `Metrics port ${opts.port} is already in use (METRICS_PORT)`
					: `The metrics endpoint cannot listen on port ${opts.port} (METRICS_PORT)`;
			// As broker.fatal does, but one line: its error argument would add the stack.
			logger.fatal(`${why}: ${err.message}`);
			process.exit(1);
		};
		server.once("error", onListenError);
		server.once("listening", () => {
			server.off("error", onListenError);
			server.on("error", err => logger.error("Metrics endpoint error", err));
		});
	}

	/** True while Moleculer's generator runs: it then skips the histograms printed here. */
	private skippingHistograms = false;

	override matchMetricName(name: string): boolean {
		if (this.patched && this.skippingHistograms) {
			const metric = (this as unknown as ReporterInternals).registry.store.get(name);
			if (metric && isBucketHistogram(metric)) return false;
		}
		return super.matchMetricName(name);
	}

	/** The reporter's HTTP server also answers the node's `/live` and `/ready` (adapters/health). */
	override handler(req: IncomingMessage, res: ServerResponse): void {
		const broker = (this as unknown as { broker: ServiceBroker }).broker;
		if (!handleHealth(broker, req, res)) super.handler(req, res);
	}

	override generatePrometheusResponse(): string {
		if (!this.patched) return super.generatePrometheusResponse();
		const self = this as unknown as ReporterInternals;
		this.skippingHistograms = true;
		let text: string;
		try {
			text = super.generatePrometheusResponse();
		} finally {
			this.skippingHistograms = false;
		}
		const out: string[] = [];
		for (const metric of self.registry.store.values()) {
			if (!isBucketHistogram(metric) || !this.matchMetricName(metric.name)) continue;
			const items = metric.snapshot();
			if (items.length === 0) continue;
			const name = self.formatMetricName(metric.name).replace(/[.-]/g, "_");
			const help = metric.description ?? `${metric.name}${metric.unit ? ` (${metric.unit})` : ""}`;
			out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
			for (const item of items) {
				for (const bound of metric.buckets ?? []) {
					const labels = this.labelsToStr(item.labels, { le: String(bound) });
					out.push(`${name}_bucket${labels} ${item.buckets?.[bound] ?? 0}`);
				}
				out.push(`${name}_bucket${this.labelsToStr(item.labels, { le: "+Inf" })} ${item.count}`);
				const labels = this.labelsToStr(item.labels);
				out.push(`${name}_sum${labels} ${item.sum}`, `${name}_count${labels} ${item.count}`);
			}
			out.push("");
		}
		return out.length > 0 ? `${text}\n${out.join("\n")}` : text;
	}
}
