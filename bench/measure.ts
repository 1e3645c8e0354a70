/** Drives one request with autocannon: a warm-up that is thrown away, then the measured run. */
import autocannon from "autocannon";
import type { WindowHooks } from "./cpu";
import type { Measurement, RequestOptions } from "./types";

export interface LoadOptions {
	connections: number;
	/** Seconds measured. */
	duration: number;
	/** Seconds of load before the measured run, not counted (0 for none). */
	warmup: number;
	/** Told when the measured run starts and ends. */
	window?: WindowHooks;
}

let current: autocannon.Instance | null = null;

/** Stops the load that is running now, if any (its run then finishes early with what it has). */
export function stopLoad(): void {
	current?.stop();
}

/** Warm-up, then the measured run, against `baseUrl` + `req.path` (connections spread over several bases). */
export async function measure(
	baseUrl: string | string[],
	req: RequestOptions,
	opts: LoadOptions
): Promise<Measurement> {
	if (opts.warmup > 0) await fire(baseUrl, req, opts.connections, opts.warmup, null);
	const latencies: number[] = [];
	opts.window?.opened();
	const result = await fire(baseUrl, req, opts.connections, opts.duration, latencies);
	opts.window?.closed();
	const statusCodes: Record<string, number> = {};
	for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) {
		statusCodes[code] = stat.count ?? 0;
	}
	return {
		requestsPerSec: round(result.requests.average),
		latencyMs: latencySummary(latencies),
		responses: result.requests.total,
		errors: result.errors,
		timeouts: result.timeouts,
		non2xx: result.non2xx,
		statusCodes,
		duration: result.duration
	};
}

/** p50/p95/p99 (nearest rank), mean and max of latencies in ms; zeros when there are none. */
export function latencySummary(latencies: number[]): Measurement["latencyMs"] {
	const sorted = Float64Array.from(latencies).sort();
	return {
		p50: round(percentile(sorted, 50)),
		p95: round(percentile(sorted, 95)),
		p99: round(percentile(sorted, 99)),
		mean: round(sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : 0),
		max: round(sorted.length ? sorted[sorted.length - 1] : 0)
	};
}

function fire(
	baseUrl: string | string[],
	req: RequestOptions,
	connections: number,
	duration: number,
	latencies: number[] | null
): Promise<autocannon.Result> {
	const headers: Record<string, string> = { ...req.headers };
	let body: string | undefined;
	if (typeof req.body === "string") body = req.body;
	else if (req.body !== undefined) {
		body = JSON.stringify(req.body);
		if (!Object.keys(headers).some(h => h.toLowerCase() === "content-type")) {
			headers["content-type"] = "application/json";
		}
	}
	const perConnection = req.connectionHeaders?.length ? req.connectionHeaders : null;
	let nextClient = 0;
	return new Promise((resolve, reject) => {
		const instance = autocannon(
			{
				url: Array.isArray(baseUrl)
					? baseUrl.length === 1
						? baseUrl[0] + req.path
						: // autocannon takes an array of URLs (connections spread over them); its typings do not say so.
							(baseUrl.map(u => u + req.path) as unknown as string)
					: baseUrl + req.path,
				method: req.method,
				headers,
				body,
				connections,
				duration,
				// Connection i sends its own headers (e.g. its own customer's token) on top of the common ones.
				...(perConnection
					? {
							setupClient: (client: autocannon.Client) =>
								client.setHeaders(perConnection[nextClient++ % perConnection.length])
						}
					: {})
			},
			(err: Error | null, result: autocannon.Result) => {
				current = null;
				if (err) reject(err);
				else resolve(result);
			}
		);
		current = instance;
		if (latencies) {
			instance.on("response", (_client, _status, _bytes, responseTime) => {
				latencies.push(responseTime);
			});
		}
	});
}

/** Nearest-rank percentile of an ascending array; 0 when it is empty. */
function percentile(sorted: Float64Array, p: number): number {
	if (sorted.length === 0) return 0;
	const rank = Math.ceil((p / 100) * sorted.length);
	return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export const round = (n: number) => Math.round(n * 100) / 100;
