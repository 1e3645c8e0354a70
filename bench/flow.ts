/**
 * Drives a flow (bench/scenarios.ts): C virtual users, each running iterations of the flow's steps one after the
 * other in a closed loop (the next request leaves when the previous answer is in), for the warm-up and then the
 * measured duration, without a pause between the two. Steps go over node:http with a keep-alive agent (one socket
 * per virtual user at most). An iteration whose step answers something else than that step expects (or nothing)
 * ends there: the later steps are not sent.
 *
 * Counted: the iterations that start within the measured window, with all their steps (those started near its end
 * finish after it: the rates divide by the time until the last of them finished). Once the window is over no
 * iteration starts, the ones running finish, and the flow's `verify` runs on what the whole run left behind.
 * A flow may also decide for itself: `begin` can hold a virtual user back or stop it (the run then ends when all
 * have stopped, possibly before the window's end), and `skip` can leave a step out of an iteration.
 */
import http from "node:http";
import { performance } from "node:perf_hooks";
import type { WindowHooks } from "./cpu";
import { latencySummary, round } from "./measure";
import type {
	Flow,
	FlowMeasurement,
	FlowRequest,
	FlowResponse,
	FlowStep,
	Measurement
} from "./types";

export interface FlowOptions {
	virtualUsers: number;
	/** Seconds measured. */
	duration: number;
	/** Seconds of load before the measured window, not counted. */
	warmup: number;
	/** A request without an answer after this long counts as a timeout (the gateway answers 504 well before). */
	timeoutMs?: number;
	/** Told when the measured window opens (after the warm-up) and when its last iteration has finished. */
	window?: WindowHooks;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** The run going on, if any; each run has its own flag, so a stopped run never resumes with the next one. */
let current: { stopped: boolean } | null = null;

/** Stops the flow running now, if any: no iteration starts any more, the ones running end after their step. */
export function stopFlow(): void {
	if (current) current.stopped = true;
}

interface StepStats {
	latencies: number[];
	statusCodes: Record<string, number>;
	errors: number;
	timeouts: number;
}

type Sent = { res: FlowResponse } | { res: null; timedOut: boolean };

class ClientTimeout extends Error {}

function send(agent: http.Agent, base: URL, req: FlowRequest, timeoutMs: number): Promise<Sent> {
	const payload = req.body === undefined ? undefined : JSON.stringify(req.body);
	return new Promise(resolve => {
		const request = http.request(
			{
				agent,
				hostname: base.hostname,
				port: base.port,
				method: req.method,
				path: req.path,
				headers: {
					...(payload !== undefined
						? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }
						: {}),
					...req.headers
				}
			},
			response => {
				const chunks: Buffer[] = [];
				response.on("data", (chunk: Buffer) => chunks.push(chunk));
				response.on("error", () => resolve({ res: null, timedOut: false }));
				response.on("end", () => {
					const text = Buffer.concat(chunks).toString("utf8");
					let body: unknown = text;
					if (/json/i.test(String(response.headers["content-type"] ?? ""))) {
						try {
							body = JSON.parse(text);
						} catch {
							// Malformed JSON: the text.
						}
					}
					resolve({ res: { status: response.statusCode ?? 0, body, headers: response.headers } });
				});
			}
		);
		request.setTimeout(timeoutMs, () => request.destroy(new ClientTimeout()));
		request.on("error", err => resolve({ res: null, timedOut: err instanceof ClientTimeout }));
		request.end(payload);
	});
}

function toMeasurement(stats: StepStats, seconds: number): Measurement {
	const responses = stats.latencies.length;
	const non2xx = Object.entries(stats.statusCodes)
		.filter(([code]) => !code.startsWith("2"))
		.reduce((sum, [, n]) => sum + n, 0);
	return {
		requestsPerSec: round(seconds > 0 ? responses / seconds : 0),
		latencyMs: latencySummary(stats.latencies),
		responses,
		errors: stats.errors,
		timeouts: stats.timeouts,
		non2xx,
		statusCodes: { ...stats.statusCodes },
		duration: round(seconds)
	};
}

/** Warm-up, then the measured window, against `baseUrl`; resolves once every iteration has finished. */
export async function runFlow(
	baseUrl: string,
	steps: FlowStep[],
	flow: Flow,
	opts: FlowOptions
): Promise<FlowMeasurement> {
	const run = { stopped: false };
	current = run;
	const base = new URL(baseUrl);
	const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
	const agent = new http.Agent({ keepAlive: true, maxSockets: opts.virtualUsers });
	const stats: StepStats[] = steps.map(() => ({
		latencies: [],
		statusCodes: {},
		errors: 0,
		timeouts: 0
	}));
	const iterationLatencies: number[] = [];
	let iterations = 0;
	let warmupIterations = 0;
	const startedAt = performance.now();
	const windowStart = startedAt + opts.warmup * 1000;
	const windowEnd = windowStart + opts.duration * 1000;
	let lastEnd = windowStart;
	const over = () => run.stopped || performance.now() >= windowEnd;
	const opening = opts.window
		? setTimeout(() => opts.window!.opened(), Math.max(0, windowStart - performance.now()))
		: undefined;

	const virtualUser = async (vu: number) => {
		while (!run.stopped) {
			const state: Record<string, unknown> = {};
			if (performance.now() >= windowEnd) break;
			if (flow.begin && !(await flow.begin(vu, state, over))) break;
			const begin = performance.now();
			if (begin >= windowEnd || run.stopped) {
				// What begin handed this iteration goes back (a buyer to the queue) for the others' checks.
				flow.end?.(vu, state, false);
				break;
			}
			const measured = begin >= windowStart;
			if (measured) iterations++;
			else warmupIterations++;
			let ok = true;
			let i = 0;
			for (; i < steps.length && ok && !run.stopped; i++) {
				if (flow.skip?.(vu, i, state)) continue;
				const req = flow.request(vu, i, state);
				const sentAt = performance.now();
				const sent = await send(agent, base, req, timeoutMs);
				const ms = performance.now() - sentAt;
				flow.onResponse?.(vu, i, state, req, sent.res, ms);
				ok = sent.res !== null && steps[i].expect.includes(sent.res.status);
				if (!measured) continue;
				const s = stats[i];
				if (sent.res) {
					s.latencies.push(ms);
					const code = String(sent.res.status);
					s.statusCodes[code] = (s.statusCodes[code] ?? 0) + 1;
				} else {
					// As autocannon counts them: `errors` are all requests without an answer, timeouts included.
					s.errors++;
					if (sent.timedOut) s.timeouts++;
				}
			}
			if (i < steps.length) ok = false;
			flow.end?.(vu, state, ok);
			const end = performance.now();
			if (measured) {
				lastEnd = Math.max(lastEnd, end);
				if (ok) iterationLatencies.push(end - begin);
			}
			// A refused connection answers at once: do not spin on a gateway that is gone.
			if (!ok && end - begin < 5) await new Promise(resolve => setTimeout(resolve, 10));
		}
	};

	try {
		await Promise.all(
			Array.from({ length: opts.virtualUsers }, (_, vu) =>
				virtualUser(vu).catch(err => {
					run.stopped = true;
					throw err;
				})
			)
		);
	} finally {
		clearTimeout(opening);
		agent.destroy();
		if (current === run) current = null;
	}
	opts.window?.closed();
	// Until the window's end, or the last measured iteration's when they ran past it or all stopped before it.
	const until = Math.max(lastEnd, Math.min(performance.now(), windowEnd));
	const seconds = Math.max(0, (until - windowStart) / 1000);
	const perStep = steps.map((step, i) => ({
		name: step.name,
		method: step.method,
		path: step.path,
		...toMeasurement(stats[i], seconds)
	}));
	const pooled: StepStats = {
		latencies: stats.flatMap(s => s.latencies),
		statusCodes: {},
		errors: stats.reduce((n, s) => n + s.errors, 0),
		timeouts: stats.reduce((n, s) => n + s.timeouts, 0)
	};
	for (const s of stats) {
		for (const [code, n] of Object.entries(s.statusCodes)) {
			pooled.statusCodes[code] = (pooled.statusCodes[code] ?? 0) + n;
		}
	}
	return {
		virtualUsers: opts.virtualUsers,
		iterations,
		completed: iterationLatencies.length,
		iterationsPerSec: round(seconds > 0 ? iterationLatencies.length / seconds : 0),
		iterationLatencyMs: latencySummary(iterationLatencies),
		warmupIterations,
		total: toMeasurement(pooled, seconds),
		steps: perStep
	};
}
