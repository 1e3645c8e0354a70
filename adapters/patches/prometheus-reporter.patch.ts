/**
 * Moleculer's Prometheus reporter with standard histograms. Moleculer 0.15 prints a bucket histogram without its
 * `_sum` and `_count` series (it only prints them for quantile histograms) and in object-key order, integer bounds
 * first (`le="1"` before `le="0.005"`). So `rate(x_sum[5m]) / rate(x_count[5m])` (mean latency) found nothing.
 * This reporter prints every bucket histogram itself, bounds ascending, then `+Inf`, `_sum` and `_count`, as the
 * exposition format expects; every other family is printed by Moleculer's code, unchanged.
 */
import { MetricReporters } from "moleculer";

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

const isBucketHistogram = (m: StoredMetric) =>
	m.type === "histogram" && !!m.buckets && !m.quantiles;

/**
 * Moleculer's own metrics (`moleculer.*`) as registered, minus the per-observation work Prometheus never sees: the
 * quantile reservoirs of the request and event time histograms (a sliding window sorted on every scrape, fed on
 * every call) and the `rate` calculators of the counters (Moleculer's in-process req/s, not exported). The profiles
 * of a loaded node showed the metrics middleware among the gateway's top costs (bench/REPORT.md). Buckets stay:
 * `moleculer_request_time_bucket` is what the dashboards and alerts read, now with `_sum` and `_count` too.
 */
export function withoutPerCallExtras(opts: RegisterOptions): RegisterOptions {
	if (!opts.name.startsWith("moleculer.")) return opts;
	const lean = { ...opts, rate: false };
	if (opts.type === "histogram") lean.quantiles = false;
	return lean;
}

export class FlashMartPrometheusReporter extends MetricReporters.Prometheus {
	/** Called by the broker's constructor, before any middleware registers its metrics. */
	override init(registry: never): void {
		super.init(registry);
		const reg = (this as unknown as ReporterInternals).registry;
		const register = reg.register.bind(reg);
		reg.register = (opts: RegisterOptions) => register(withoutPerCallExtras(opts));
	}

	/** True while Moleculer's generator runs: it then skips the histograms printed here. */
	private skippingHistograms = false;

	override matchMetricName(name: string): boolean {
		if (this.skippingHistograms) {
			const metric = (this as unknown as ReporterInternals).registry.store.get(name);
			if (metric && isBucketHistogram(metric)) return false;
		}
		return super.matchMetricName(name);
	}

	override generatePrometheusResponse(): string {
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
