/** `npm run bench`: FlashMart's HTTP throughput and latency against a bare Moleculer baseline. */
/*
 * One run, all on 127.0.0.1, every process stopped at the end (also on error, SIGINT and SIGTERM):
 *   1. a nats-server of its own (scripts/lib/cluster.ts);
 *   2. the baseline: a bare moleculer-web gateway calling an `echo.hello` action on a second node
 *      over that NATS (bench/baseline/), Moleculer defaults throughout, its own namespace;
 *   3. FlashMart as a cluster: a gateway node (`api`) plus one node per other service of
 *      ALL_SERVICES, built from dist/, `NODE_ENV=production`, another namespace;
 *   4. every scenario of bench/scenarios.ts whose services exist (the others are reported as
 *      skipped): a warm-up that is not counted, then the measured run. A request scenario runs
 *      with autocannon; a flow (a sequence of requests per iteration, e.g. add to cart then check
 *      out) with bench/flow.ts's virtual users, then its check of what the run left behind (the
 *      checkout flow: no unit oversold, every reservation accounted for).
 * Results: a table on stdout, then what deserves a note (non-2xx answers by status, requests
 * without an answer, the flows' checks, the warn/error log lines FlashMart's nodes printed during
 * each row), bench/results/latest.json and bench/results/latest.md.
 *
 *   --duration <s>      seconds measured per row (default 10)
 *   --warmup <s>        seconds of uncounted load before each row (default 2)
 *   --connections <n>   concurrent connections (default 50); a flow runs that many virtual
 *                       users, at most 50
 *   --scenario <text>   only the scenarios whose name contains <text> (the baseline always runs)
 *   --quick             3 s measured after 1 s of warm-up, for smoke tests
 *   --observability     instead of the scenarios: product by id on two FlashMart clusters, one after the
 *                       other, with metrics and log shipping off (METRICS_ENABLED=false, no
 *                       ELASTICSEARCH_URL) and on (Prometheus reporter and gateway HTTP metrics, every
 *                       node shipping its logs to an Elasticsearch stand-in the bench starts on
 *                       loopback); both at LOG_LEVEL=info; reports on/off req/s as the overhead ratio
 *   --profile           start the FlashMart gateway node as
 *                         node --cpu-prof --cpu-prof-dir=bench/results/profiles dist/server.js
 *                       (cwd: the project root); when it stops at the end of the run it writes
 *                         bench/results/profiles/CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile
 *                       covering the node's whole life, start-up included; open it in Chrome
 *                       DevTools (Performance panel) or speedscope. The run prints the file's path.
 * Exit code 0 once the run completes, whatever the speed; 1 when something could not start or a row
 * could not be measured (no response at all, a node died, a scenario's setup failed), or a flow's
 * check found a discrepancy (e.g. stock reserved that no checkout accounts for); 2 for a usage error.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { ALL_SERVICES } from "../config";
import { type EmbeddedS3, startEmbeddedS3 } from "../adapters/object-store";
import {
	type NatsServer,
	type Proc,
	ROOT,
	SERVER_JS,
	freePort,
	makeKeyPair,
	spawnNode,
	startNats,
	startNode,
	stopAll,
	tempDir,
	uniqueNamespace,
	waitForStatus
} from "../scripts/lib/cluster";
import { type EsStandIn, startEsStandIn } from "../test/helpers/es-stand-in";
import { whileAlive } from "./child";
import { type ScaleOutRow, fullReport, latencySvg } from "./full-report";
import { summarise } from "./profile-summary";
import type { ColdStartResult, MemoryResult, MemorySample } from "./targets";
import { runFlow, stopFlow } from "./flow";
import { type LoadOptions, type Measurement, measure, stopLoad } from "./measure";
import {
	type BenchReport,
	type LogGroup,
	type ObservabilityOverhead,
	type RowResult,
	findings,
	markdown,
	observabilityLine,
	textTable
} from "./report";
import {
	BENCH_ADMIN,
	type FlowCheck,
	type FlowScenario,
	type RequestOptions,
	SCENARIOS,
	type Scenario,
	isFlow,
	resolveRequest
} from "./scenarios";

const RESULTS_DIR = path.join(ROOT, "bench", "results");
/** Relative to ROOT, the working directory of every FlashMart node (startNode). */
const PROFILE_DIR = path.join("bench", "results", "profiles");
const BASELINE_NAME = "baseline: bare gateway + echo";
const START_TIMEOUT_MS = 60_000;
/** A setup registers up to 100 customers (~200 ms of scrypt each, 4 at a time). */
const SETUP_TIMEOUT_MS = 60_000;
/** A flow's check may replay checkouts of unknown outcome for 30 s, then reads the stock. */
const VERIFY_TIMEOUT_MS = 60_000;
/** Virtual users of a flow: --connections, at most this many. */
const MAX_VIRTUAL_USERS = 50;

interface Cli {
	duration: number;
	warmup: number;
	connections: number;
	filter: string | null;
	/** Instances per service (`--nodes api=2,products=2`); one of each otherwise. */
	nodes: Record<string, number>;
	/** Services whose nodes run with --cpu-prof (`--profile [api,orders]`; bare `--profile`: the gateway). */
	profile: string[];
	observability: boolean;
	/** `--report`: every phase, then bench/REPORT.md and bench/latency.svg. */
	report: boolean;
	/** Services whose nodes run with `--trace-gc` (the memory runs then report their heap after the last full GC). */
	traceGc: string[];
	/** `--rewrite-report`: REPORT.md and the chart again from bench/results/latest.json, nothing run. */
	rewriteReport: boolean;
	/** Seconds of load per memory run (`--memory-seconds`, default 60). */
	memorySeconds: number;
}

class UsageError extends Error {}

const USAGE = `usage: npm run bench -- [options]
  --duration <s>      seconds measured per row (default 10)
  --warmup <s>        seconds of load before each row, not counted (default 2)
  --connections <n>   concurrent connections (default 50); flows: as many virtual users, at most ${MAX_VIRTUAL_USERS}
  --scenario <text>   only scenarios whose name contains <text> (the baseline always runs)
  --quick             3 s measured after 1 s of warm-up (smoke test)
  --observability     product by id with metrics + log shipping off, then on; reports the overhead ratio
  --report            the full run behind bench/REPORT.md: every scenario, then memory (3 runs of load, RSS
                      per node), observability off/on, scale-out (1 vs 2 gateways, 1 vs 2 products nodes),
                      embedded cold start; writes bench/REPORT.md and bench/latency.svg
  --rewrite-report    write bench/REPORT.md and bench/latency.svg again from bench/REPORT.json (after
                      editing bench/REPORT-notes.md), without running anything
  --trace-gc <nodes>  run those services' nodes with node --trace-gc; the memory runs of --report then give
                      each one's heap after its last full GC (live data) next to its RSS
  --memory-seconds <s> seconds of load per memory run of --report (default 60)
  --nodes <list>      instances per service, e.g. api=2,products=2 (scale-out); request scenarios spread their
                      connections over every gateway
  --profile [nodes]   CPU-profile FlashMart nodes into ${PROFILE_DIR}/: a comma-separated list of services
                      (e.g. api,orders; 'all' for every node), the gateway (api) when no list is given`;

function parseArgs(argv: string[]): Cli {
	const given: Partial<Cli> = {};
	let quick = false;
	for (let i = 0; i < argv.length; i++) {
		const [flag, inline] = argv[i].split(/=(.*)/s, 2);
		const value = (): string => {
			const v = inline ?? argv[++i];
			if (v === undefined || v === "") throw new UsageError(`${flag} needs a value`);
			return v;
		};
		const number = (min: number, integer: boolean): number => {
			const raw = value();
			const n = Number(raw);
			if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
				throw new UsageError(
					`${flag} wants ${integer ? "an integer" : "a number"} >= ${min}, not '${raw}'`
				);
			}
			return n;
		};
		switch (flag) {
			case "--duration":
				given.duration = number(1, true);
				break;
			case "--warmup":
				given.warmup = number(0, true);
				break;
			case "--connections":
				given.connections = number(1, true);
				break;
			case "--scenario":
				given.filter = value();
				break;
			case "--quick":
				quick = true;
				break;
			case "--profile": {
				// An optional list: `--profile`, `--profile api,orders`, `--profile=all`.
				const next = inline ?? (argv[i + 1]?.startsWith("--") ? undefined : argv[++i]);
				given.profile = next
					? next
							.split(",")
							.map(s => s.trim())
							.filter(Boolean)
					: ["api"];
				break;
			}
			case "--observability":
				given.observability = true;
				break;
			case "--report":
				given.report = true;
				break;
			case "--trace-gc":
				given.traceGc = value()
					.split(",")
					.map(x => x.trim())
					.filter(Boolean);
				break;
			case "--rewrite-report":
				given.rewriteReport = true;
				break;
			case "--memory-seconds":
				given.memorySeconds = number(5, true);
				break;
			case "--nodes": {
				const nodes: Record<string, number> = {};
				for (const part of value().split(",")) {
					const [service, count] = part.split("=");
					const n = Number(count);
					if (!service || !Number.isInteger(n) || n < 1 || n > 4) {
						throw new UsageError(`--nodes wants service=count pairs (count 1-4), not '${part}'`);
					}
					nodes[service.trim()] = n;
				}
				given.nodes = nodes;
				break;
			}
			case "--help":
			case "-h":
				throw new UsageError("");
			default:
				throw new UsageError(`unknown option '${argv[i]}'`);
		}
	}
	return {
		duration: given.duration ?? (quick ? 3 : 10),
		warmup: given.warmup ?? (quick ? 1 : 2),
		connections: given.connections ?? 50,
		filter: given.filter ?? null,
		profile: given.profile ?? [],
		nodes: given.nodes ?? {},
		report: given.report ?? false,
		rewriteReport: given.rewriteReport ?? false,
		traceGc: given.traceGc ?? [],
		memorySeconds: given.memorySeconds ?? 60,
		observability: given.observability ?? false
	};
}

const startedAt = Date.now();
const progress = (message: string) =>
	process.stderr.write(
		`[bench ${((Date.now() - startedAt) / 1000).toFixed(1).padStart(5)}s] ${message}\n`
	);

// Everything this run started, for cleanup().
const started: Proc[] = [];
const tempDirs: string[] = [];
let nats: NatsServer | null = null;
let s3: EmbeddedS3 | null = null;
let sink: EsStandIn | null = null;
let cleaning: Promise<void> | null = null;
let interrupted = false;

/** Stops the load, every node (gracefully: a profiled gateway writes its profile), then NATS. */
function cleanup(): Promise<void> {
	cleaning ??= (async () => {
		stopLoad();
		stopFlow();
		await Promise.all(started.map(proc => proc.stop("SIGTERM", 10_000)));
		if (nats) tempDirs.push(nats.storeDir);
		await nats?.stop();
		await s3?.close();
		await sink?.close();
		await stopAll(5_000);
		for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
	})();
	return cleaning;
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
	process.on(signal, () => {
		// A second signal does not wait: the exit handlers SIGKILL what is left.
		if (interrupted) process.exit(130);
		interrupted = true;
		progress(`${signal}: stopping everything (again to force)`);
		void cleanup().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
	});
}

interface Target {
	/** The first gateway's. */
	url: string;
	/** Every gateway's (`--nodes api=2`): request scenarios spread their connections over them. */
	urls: string[];
	procs: Proc[];
}

/** The bare gateway and echo nodes, answering `GET /echo`. */
async function startBaseline(natsUrl: string): Promise<Target> {
	const port = await freePort();
	const env = {
		BENCH_NATS_URL: natsUrl,
		BENCH_NAMESPACE: uniqueNamespace("bench-base"),
		BENCH_PORT: String(port)
	};
	const script = (name: string) => path.join(__dirname, "baseline", `${name}.js`);
	const echo = spawnNode("baseline-echo", [script("echo")], env);
	started.push(echo);
	const gateway = spawnNode("baseline-gateway", [script("gateway")], env);
	started.push(gateway);
	const url = `http://127.0.0.1:${port}`;
	await whileAlive([echo, gateway], waitForStatus(`${url}/echo`, { timeoutMs: START_TIMEOUT_MS }));
	return { url, urls: [url], procs: [gateway, echo] };
}

/**
 * FlashMart: a gateway node plus one node per other service, ready (`GET /ready` 200). `env` goes on top of the
 * bench's environment of every node (the observability rows switch metrics and log shipping with it).
 */
async function startFlashMart(
	natsUrl: string,
	services: string[],
	cli: Cli,
	env: Record<string, string> = {}
): Promise<Target> {
	const namespace = uniqueNamespace("bench");
	const port = await freePort();
	// The cluster mode never defaults secrets: a throw-away RS256 pair for this run. As in
	// production the gateway only verifies tokens (public key); backends also get the private key.
	const keys = makeKeyPair();
	// The media node needs an object store, as MinIO would be in production.
	if (!s3) {
		const s3Dir = tempDir("bench-s3");
		tempDirs.push(s3Dir);
		s3 = await startEmbeddedS3({ directory: s3Dir });
	}
	const common = {
		TRANSPORTER: natsUrl,
		NAMESPACE: namespace,
		NODE_ENV: "production",
		LOG_FORMAT: "json",
		LOG_LEVEL: "warn",
		METRICS_PORT: "0",
		// Spelled out so that a value in the caller's environment cannot change what "ready" means.
		REQUIRED_SERVICES: services.join(","),
		JWT_PUBLIC_KEY: keys.publicKey,
		// The catalog scenarios read the demo catalog.
		SEED_DEMO: "true",
		MINIO_ENDPOINT: s3.endpoint,
		MINIO_PORT: String(s3.port),
		MINIO_ACCESS_KEY: s3.accessKey,
		MINIO_SECRET_KEY: s3.secretKey,
		// The checkout scenarios create their own products as admin.
		ADMIN_EMAIL: BENCH_ADMIN.email,
		ADMIN_PASSWORD: BENCH_ADMIN.password,
		...env
	};
	const dataDirs = new Map<string, string>();
	const node = (service: string, instance: number, extra: Record<string, string> = {}): Proc => {
		// A second instance of a service shares the first one's store (as replicas share MongoDB in production):
		// it starts once the first has seeded it, and the bench's reads see the same documents on both.
		let dataDir = dataDirs.get(service);
		if (!dataDir) {
			dataDir = tempDir(`bench-${service}`);
			tempDirs.push(dataDir);
			dataDirs.set(service, dataDir);
		}
		const suffix = instance > 0 ? `-${instance + 1}` : "";
		const name = `flashmart-${service}${suffix}`;
		const env = {
			...common,
			NODE_ID: `${namespace}-${service}${suffix}`,
			SERVICES: service,
			DATA_DIR: dataDir,
			...extra
		};
		const profiled = cli.profile.includes(service) || cli.profile.includes("all");
		// Node 20 refuses --cpu-prof in NODE_OPTIONS: node flags go on the command line.
		const nodeArgs = profiled
			? [
					"--cpu-prof",
					`--cpu-prof-dir=${PROFILE_DIR}`,
					`--cpu-prof-name=${name}.${process.pid}.cpuprofile`
				]
			: [];
		if (cli.traceGc.includes(service) || cli.traceGc.includes("all")) nodeArgs.push("--trace-gc");
		const proc = startNode({ name, env, nodeArgs });
		started.push(proc);
		return proc;
	};
	if (!fs.existsSync(SERVER_JS)) throw new Error(`${SERVER_JS} is missing: run 'npm run build'`);
	if (cli.profile.length > 0) fs.mkdirSync(path.join(ROOT, PROFILE_DIR), { recursive: true });
	const gatewayEnv = (p: number) => ({ GATEWAY_HOST: "127.0.0.1", GATEWAY_PORT: String(p) });
	const gateway = node("api", 0, gatewayEnv(port));
	const backends = services
		.filter(s => s !== "api")
		.map(s => node(s, 0, { JWT_PRIVATE_KEY: keys.privateKey }));
	const url = `http://127.0.0.1:${port}`;
	const procs = [gateway, ...backends];
	await whileAlive(procs, waitForStatus(`${url}/ready`, { timeoutMs: START_TIMEOUT_MS }));
	// `--nodes`: the extra instances, once the first ones are ready (their stores seeded).
	const urls = [url];
	for (const [service, count] of Object.entries(cli.nodes)) {
		if (!services.includes(service)) continue;
		for (let i = 1; i < count; i++) {
			if (service === "api") {
				const extraPort = await freePort();
				const proc = node("api", i, gatewayEnv(extraPort));
				procs.push(proc);
				const extraUrl = `http://127.0.0.1:${extraPort}`;
				await whileAlive(
					procs,
					waitForStatus(`${extraUrl}/ready`, { timeoutMs: START_TIMEOUT_MS })
				);
				urls.push(extraUrl);
			} else {
				const metricsPort = await freePort();
				const proc = node(service, i, {
					JWT_PRIVATE_KEY: keys.privateKey,
					METRICS_ENABLED: "true",
					METRICS_PORT: String(metricsPort)
				});
				procs.push(proc);
				// Its metrics answer once the broker runs; then a moment for the others to see its services.
				await whileAlive(
					procs,
					waitForStatus(`http://127.0.0.1:${metricsPort}/metrics`, { timeoutMs: START_TIMEOUT_MS })
				);
				await new Promise(resolve => setTimeout(resolve, 3_000));
			}
		}
	}
	return { url, urls, procs };
}

function withTimeout<T>(task: Promise<T>, ms: number, what: string): Promise<T> {
	let timer: NodeJS.Timeout | undefined;
	const timeout = new Promise<never>((_, reject) => {
		timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
	});
	return Promise.race([task, timeout]).finally(() => clearTimeout(timer));
}

/** Measures one row; a failure (setup, a node exiting, no response at all) makes a failed row. */
async function measureRow(
	base: Pick<RowResult, "name" | "method" | "path">,
	target: Target,
	request: () => Promise<RequestOptions>,
	load: LoadOptions,
	baseline: Measurement | undefined
): Promise<RowResult> {
	progress(`${base.name}: ${load.warmup} s warm-up, ${load.duration} s measured`);
	try {
		const req = await whileAlive(target.procs, request());
		const m = await whileAlive(target.procs, measure(target.urls, req, load));
		if (m.responses === 0) {
			return {
				...base,
				status: "failed",
				reason: `no response at all (${m.errors} connection errors, ${m.timeouts} timeouts)`,
				measurement: m,
				ratio: null
			};
		}
		return {
			...base,
			status: "measured",
			measurement: m,
			ratio: ratioTo(baseline, m)
		};
	} catch (err) {
		stopLoad();
		return {
			...base,
			status: "failed",
			reason: err instanceof Error ? err.message : String(err),
			ratio: null
		};
	}
}

/** Requests per second relative to the baseline measured in the same run (3 decimals), or null without one. */
function ratioTo(baseline: Measurement | undefined, m: Measurement): number | null {
	if (!baseline || baseline.requestsPerSec <= 0) return null;
	return Math.round((m.requestsPerSec / baseline.requestsPerSec) * 1000) / 1000;
}

/** What a row says of its scenario, measured or not. */
function rowBase(
	scenario: Scenario
): Pick<RowResult, "name" | "kind" | "method" | "path" | "unit"> {
	if (!isFlow(scenario))
		return { name: scenario.name, method: scenario.method, path: scenario.path };
	return {
		name: scenario.name,
		kind: "flow",
		method: "FLOW",
		path: scenario.steps.map(s => `${s.method} ${s.path}`).join(" -> "),
		...(scenario.unit ? { unit: scenario.unit } : {})
	};
}

/** Runs a flow and its check; a failure (setup, a node exiting, no response at all, the check) makes a failed row. */
async function measureFlowRow(
	scenario: FlowScenario,
	target: Target,
	cli: Cli,
	baseline: Measurement | undefined
): Promise<RowResult> {
	const virtualUsers = Math.min(cli.connections, MAX_VIRTUAL_USERS);
	const base = rowBase(scenario);
	progress(
		`${scenario.name}: setup, then ${virtualUsers} virtual users, ${cli.warmup} s warm-up, ${cli.duration} s measured`
	);
	try {
		const flow = await whileAlive(
			target.procs,
			withTimeout(
				scenario.setup(target.url, { concurrency: virtualUsers }),
				SETUP_TIMEOUT_MS,
				"setup"
			)
		);
		const f = await whileAlive(
			target.procs,
			runFlow(target.url, scenario.steps, flow, {
				virtualUsers,
				duration: cli.duration,
				warmup: cli.warmup
			})
		);
		const { total: m, ...flowOnly } = f;
		let check: FlowCheck | undefined;
		if (flow.verify) {
			// A check that cannot run fails the run, but the measurement stays.
			check = await whileAlive(
				target.procs,
				withTimeout(flow.verify(), VERIFY_TIMEOUT_MS, "the check after the flow")
			).catch((err: unknown) => ({
				ok: false,
				summary: `the check could not run: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`,
				details: []
			}));
		}
		if (m.responses === 0) {
			return {
				...base,
				status: "failed",
				reason: `no response at all (${m.errors} requests without an answer, ${m.timeouts} timeouts)`,
				measurement: m,
				flow: flowOnly,
				check,
				ratio: null
			};
		}
		return {
			...base,
			status: "measured",
			measurement: m,
			flow: flowOnly,
			check,
			ratio: ratioTo(baseline, m)
		};
	} catch (err) {
		stopFlow();
		return {
			...base,
			status: "failed",
			reason: err instanceof Error ? err.message : String(err),
			ratio: null
		};
	}
}

/** Where each process's output is now, to read what it prints from here on (`newLogLines`). */
function outputMarks(procs: Proc[]): Map<Proc, string> {
	// The tail, not an offset: the captured output is trimmed when it grows large.
	return new Map(procs.map(p => [p, p.output().slice(-200)]));
}

/**
 * The warn-and-above lines the processes printed since `marks` (LOG_LEVEL is warn: every JSON line), grouped by
 * node, level and message, the most frequent first. Lines that are not JSON (a crash's stack) count as they are.
 */
function newLogLines(marks: Map<Proc, string>): LogGroup[] {
	const groups = new Map<string, LogGroup>();
	for (const [proc, mark] of marks) {
		const all = proc.output();
		const at = mark ? all.lastIndexOf(mark) : 0;
		const text = at >= 0 ? all.slice(at + mark.length) : all;
		for (const raw of text.split("\n")) {
			const line = raw.trim();
			if (!line || GC_TRACE_LINE.test(line)) continue;
			let level = "output";
			let message = line;
			try {
				const entry = JSON.parse(line) as Record<string, unknown>;
				level = String(entry.level ?? "?");
				const error = entry.error as { type?: string; message?: string } | undefined;
				message = String(entry.message ?? entry.msg ?? line);
				if (error?.message && !message.includes(error.message)) message += ` (${error.message})`;
			} catch {
				// Not JSON: the line itself.
			}
			if (!["warn", "error", "fatal", "output"].includes(level)) continue;
			message = message.replace(/\s+/g, " ").trim();
			// Ids and numbers vary from line to line: group on the message without them.
			const shape = message
				.replace(/[0-9a-f]{8}-[0-9a-f-]{27}|[0-9a-f]{24,}/gi, "<id>")
				.replace(/\d+/g, "N")
				.slice(0, 300);
			const key = `${proc.name}\0${level}\0${shape}`;
			const group = groups.get(key);
			if (group) group.count++;
			else groups.set(key, { node: proc.name, level, message: message.slice(0, 300), count: 1 });
		}
	}
	return [...groups.values()].sort((a, b) => b.count - a.count);
}

/** A line of `node --trace-gc` (`--trace-gc`): not a log line. */
const GC_TRACE_LINE = /^\[\d+:0x[0-9a-f]+\]\s+\d+ ms: /;

/** The heap (MB) left by the last full GC a `--trace-gc` node printed: its live data, garbage aside. */
function liveHeapOf(proc: Proc): number | undefined {
	const re = /Mark-Compact[^\n]*? ([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB/g;
	let last: number | undefined;
	for (const m of proc.output().matchAll(re)) last = Number(m[3]);
	return last;
}

/** The product read measured by `--observability`. */
const OBSERVED_SCENARIO = "product by id /api/products/:id";

/** Rounds of `--observability`: each variant is measured this many times, in turns. */
const OBSERVABILITY_ROUNDS = 3;

/** The middle value (of an odd count; the upper middle otherwise). */
const median = (values: number[]) =>
	[...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * `--observability`: the product read on a cluster with metrics and log shipping off and on another with both on
 * (logs shipped to a stand-in sink on loopback). Both clusters are up at once and measured in turns (off, on, off,
 * on, ...): on a shared machine the load of the moment drifts by tens of percent from one minute to the next, and
 * measured in turns both variants see the same drift. An idle cluster costs the other little (heartbeats, timers).
 * Each variant's figure is the median of its rounds. The same LOG_LEVEL (info, the production default) in both:
 * the difference is the reporter, the HTTP metrics and the shipping.
 */
async function measureObservability(
	natsUrl: string,
	services: string[],
	cli: Cli,
	load: LoadOptions,
	baseline: Measurement | undefined
): Promise<{ rows: RowResult[]; overhead: ObservabilityOverhead | null }> {
	const scenario = SCENARIOS.find(s => s.name === OBSERVED_SCENARIO);
	if (!scenario || isFlow(scenario)) throw new Error(`no request scenario '${OBSERVED_SCENARIO}'`);
	sink = await startEsStandIn({ store: false });
	const logLevel = "info";
	const variants: Array<{ label: string; env: Record<string, string> }> = [
		{
			label: "observability off",
			// Empty is unset (config/): whatever the caller's environment says.
			env: { METRICS_ENABLED: "false", LOG_LEVEL: logLevel, ELASTICSEARCH_URL: "" }
		},
		{
			label: "observability on: metrics + log shipping",
			env: { METRICS_ENABLED: "true", LOG_LEVEL: logLevel, ELASTICSEARCH_URL: sink.url }
		}
	];
	const clusters: Array<{ target: Target; marks: ReturnType<typeof outputMarks> }> = [];
	const rounds: RowResult[][] = variants.map(() => []);
	try {
		for (const variant of variants) {
			if (interrupted) break;
			progress(`starting FlashMart with ${variant.label}`);
			// Never profiled: the two clusters must differ only in what is observed.
			const target = await startFlashMart(natsUrl, services, { ...cli, profile: [] }, variant.env);
			clusters.push({ target, marks: outputMarks(target.procs) });
		}
		for (
			let round = 1;
			round <= OBSERVABILITY_ROUNDS && clusters.length === variants.length;
			round++
		) {
			for (const [i, variant] of variants.entries()) {
				if (interrupted) break;
				const { target } = clusters[i];
				const request = async () =>
					resolveRequest(
						scenario,
						scenario.setup ? await scenario.setup(target.url, { concurrency: cli.connections }) : {}
					);
				rounds[i].push(
					await measureRow(
						{
							...rowBase(scenario),
							name: `${scenario.name} [${variant.label}, round ${round} of ${OBSERVABILITY_ROUNDS}]`
						},
						target,
						request,
						load,
						baseline
					)
				);
			}
		}
	} finally {
		// The nodes flush their last lines to the sink as they stop.
		await Promise.all(clusters.flatMap(c => c.target.procs.map(p => p.stop("SIGTERM", 10_000))));
	}
	const rows: RowResult[] = [];
	const perSecond: number[][] = [];
	for (const [i, variant] of variants.entries()) {
		const measured = rounds[i].filter(r => r.status === "measured" && r.measurement);
		const values = measured.map(r => r.measurement!.requestsPerSec);
		perSecond.push(values);
		// The variant's row: its median round, named for the variant (the targets table reads these rows).
		const middle = measured.find(r => r.measurement!.requestsPerSec === median(values));
		const row = middle ?? rounds[i][rounds[i].length - 1];
		if (!row) continue;
		const logs = clusters[i] ? newLogLines(clusters[i].marks) : [];
		rows.push({
			...row,
			name: `${scenario.name} [${variant.label}]`,
			...(values.length > 1
				? {
						note: `median of ${values.length} rounds in turns: ${values.map(v => v.toFixed(0)).join(", ")} req/s`
					}
				: {}),
			...(logs.length > 0 ? { logs } : {})
		});
	}
	const [off, on] = perSecond;
	const overhead =
		off?.length && on?.length && median(off) > 0
			? {
					scenario: OBSERVED_SCENARIO,
					logLevel,
					offRequestsPerSec: median(off),
					onRequestsPerSec: median(on),
					ratio: Math.round((median(on) / median(off)) * 1000) / 1000,
					linesShipped: sink.received,
					rounds: { off, on }
				}
			: null;
	return { rows, overhead };
}

/** Stops every node started so far that still runs (a phase that failed half-way). */
async function stopStarted(): Promise<void> {
	await Promise.all(
		started
			.filter(p => p.child.exitCode === null && p.child.signalCode === null)
			.map(p => p.stop("SIGTERM", 10_000))
	);
}

/** RSS of each process in MB (Linux /proc), by node name. */
function rssOf(procs: Proc[]): Record<string, number> {
	const out: Record<string, number> = {};
	for (const proc of procs) {
		const pid = proc.child.pid;
		if (!pid) continue;
		try {
			const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
			const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
			out[proc.name] = Math.round((kb / 1024) * 10) / 10;
		} catch {
			// Exited: no sample.
		}
	}
	return out;
}

/** The gateway's V8 heap from its /metrics (Moleculer's process metrics), in MB. */
async function heapOf(url: string): Promise<{ used: number; total: number } | undefined> {
	try {
		const text = await (
			await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })
		).text();
		const mb = (name: string) => {
			const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, "m").exec(text);
			return m ? Math.round((Number(m[1]) / 1048576) * 10) / 10 : NaN;
		};
		const used = mb("process_memory_heap_size_used(?:_bytes)?");
		const total = mb("process_memory_heap_size_total(?:_bytes)?");
		return Number.isNaN(used) || Number.isNaN(total) ? undefined : { used, total };
	} catch {
		return undefined;
	}
}

const MEMORY_RUNS = 3;

/**
 * `--report`: consecutive runs of load on the running cluster, RSS of every node before and after each: product
 * reads (autocannon, half the connections) while the purchase flow runs (the other half as virtual users, new
 * customers each run), so every node of the purchase path and the catalog is busy.
 */
async function measureMemory(target: Target, cli: Cli): Promise<MemoryResult> {
	const read = SCENARIOS.find(s => s.name === OBSERVED_SCENARIO);
	const purchase = SCENARIOS.find(s => s.name.startsWith("purchase flow"));
	if (!read || isFlow(read) || !purchase || !isFlow(purchase))
		throw new Error("memory: scenarios missing");
	const half = Math.max(1, Math.floor(cli.connections / 2));
	const before = rssOf(target.procs);
	const runs: MemorySample[] = [];
	for (let i = 0; i < MEMORY_RUNS && !interrupted; i++) {
		progress(
			`memory run ${i + 1}/${MEMORY_RUNS}: ${cli.memorySeconds} s of product reads + purchase flow`
		);
		const req = resolveRequest(
			read,
			read.setup ? await read.setup(target.url, { concurrency: half }) : {}
		);
		const flow = await whileAlive(
			target.procs,
			withTimeout(purchase.setup(target.url, { concurrency: half }), SETUP_TIMEOUT_MS, "setup")
		);
		const [, purchased] = await whileAlive(
			target.procs,
			Promise.all([
				measure(target.urls, req, { connections: half, duration: cli.memorySeconds, warmup: 0 }),
				runFlow(target.url, purchase.steps, flow, {
					virtualUsers: half,
					duration: cli.memorySeconds,
					warmup: 0
				})
			])
		);
		runs.push({
			afterSeconds: (i + 1) * cli.memorySeconds,
			rssMb: rssOf(target.procs),
			purchases: purchased.completed,
			liveHeapMb: Object.fromEntries(
				target.procs
					.map(p => [p.name, liveHeapOf(p)] as const)
					.filter((e): e is readonly [string, number] => e[1] !== undefined)
			),
			gatewayHeapMb: await heapOf(target.url)
		});
	}
	return {
		load: `product by id (autocannon, ${half} connections) and the purchase flow (${half} virtual users) at once`,
		runSeconds: cli.memorySeconds,
		before,
		runs
	};
}

/** The layouts of the scale-out phase: instances of the gateway and of the products service. */
const SCALE_OUT_LAYOUTS: Array<Record<string, number>> = [
	{ api: 1, products: 1 },
	{ api: 2, products: 1 },
	{ api: 1, products: 2 },
	{ api: 2, products: 2 }
];
/** The catalog's nodes: products waits for inventory (stock levels) when it starts. */
const SCALE_OUT_SERVICES = ["api", "products", "inventory"];
/** Rows measured per layout: reads that touch the gateway, the products nodes, or the gateway alone. */
const SCALE_OUT_SCENARIOS = [
	OBSERVED_SCENARIO,
	"product list /api/products?category=&page=",
	"gateway /health"
];

/**
 * `--report`: the catalog reads on a cluster of just the gateway(s), the products node(s) and inventory, one layout
 * at a time.
 */
async function measureScaleOut(
	natsUrl: string,
	cli: Cli,
	load: LoadOptions,
	baseline: Measurement | undefined
): Promise<ScaleOutRow[]> {
	const out: ScaleOutRow[] = [];
	for (const layout of SCALE_OUT_LAYOUTS) {
		if (interrupted) break;
		const name = `${layout.api} gateway${layout.api > 1 ? "s" : ""}, ${layout.products} products node${layout.products > 1 ? "s" : ""}`;
		progress(`scale-out: ${name}`);
		let target: Target;
		try {
			target = await startFlashMart(natsUrl, SCALE_OUT_SERVICES, {
				...cli,
				nodes: layout,
				profile: []
			});
		} catch (err) {
			progress(
				`scale-out: ${name} could not start: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`
			);
			await stopStarted();
			continue;
		}
		for (const scenarioName of SCALE_OUT_SCENARIOS) {
			const scenario = SCENARIOS.find(s => s.name === scenarioName);
			if (!scenario || isFlow(scenario)) continue;
			const request = async () =>
				resolveRequest(
					scenario,
					scenario.setup ? await scenario.setup(target.url, { concurrency: cli.connections }) : {}
				);
			const row = await measureRow(
				{ ...rowBase(scenario), name: `${scenario.name} [${name}]` },
				target,
				request,
				load,
				baseline
			);
			if (row.measurement) {
				out.push({
					layout: name,
					scenario: scenario.name,
					requestsPerSec: row.measurement.requestsPerSec,
					p99: row.measurement.latencyMs.p99,
					ratio: row.ratio
				});
			}
		}
		await Promise.all(target.procs.map(p => p.stop("SIGTERM", 10_000)));
	}
	return out;
}

const COLD_START_ATTEMPTS = 3;

/** Polls `url` every 20 ms until it answers 200: ms since `t0`. */
async function readyAfter(url: string, t0: number): Promise<number> {
	while (performance.now() - t0 < START_TIMEOUT_MS) {
		try {
			const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
			await res.arrayBuffer();
			if (res.status === 200) return Math.round(performance.now() - t0);
		} catch {
			// Not listening yet.
		}
		await new Promise(resolve => setTimeout(resolve, 20));
	}
	throw new Error(`${url} did not answer 200 within ${START_TIMEOUT_MS} ms`);
}

/** `--report`: `npm start` in the embedded mode (fresh DATA_DIR each time) until `GET /ready` answers 200. */
async function measureColdStart(): Promise<ColdStartResult> {
	const attemptsMs: number[] = [];
	for (let i = 0; i < COLD_START_ATTEMPTS && !interrupted; i++) {
		const port = await freePort();
		const dataDir = tempDir("bench-cold");
		tempDirs.push(dataDir);
		const env: Record<string, string> = {};
		for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
		// The embedded default: whatever the caller's environment says about a cluster does not apply.
		for (const k of [
			"TRANSPORTER",
			"SERVICES",
			"MONGO_URI",
			"CACHER",
			"ELASTICSEARCH_URL",
			"NODE_ID",
			"NAMESPACE"
		])
			delete env[k];
		Object.assign(env, {
			GATEWAY_HOST: "127.0.0.1",
			GATEWAY_PORT: String(port),
			METRICS_PORT: "0",
			DATA_DIR: dataDir,
			LOG_LEVEL: "warn"
		});
		const t0 = performance.now();
		// Its own process group: npm and the node it execs stop together.
		const child = spawn("npm", ["start", "--silent"], {
			cwd: ROOT,
			env,
			detached: true,
			stdio: "ignore"
		});
		try {
			attemptsMs.push(await readyAfter(`http://127.0.0.1:${port}/ready`, t0));
		} finally {
			const exited = new Promise(resolve => child.once("exit", resolve));
			if (child.pid) process.kill(-child.pid, "SIGTERM");
			await withTimeout(exited, 15_000, "the embedded node's stop").catch(() => {
				if (child.pid) process.kill(-child.pid, "SIGKILL");
			});
		}
	}
	const sorted = [...attemptsMs].sort((a, b) => a - b);
	return { command: "npm start", attemptsMs, medianMs: sorted[Math.floor(sorted.length / 2)] ?? 0 };
}

/** Scenarios chosen by `--scenario`, each either runnable or skipped for a missing service. */
function plan(cli: Cli, services: string[]): Array<{ scenario: Scenario; missing: string[] }> {
	const filter = cli.filter?.toLowerCase();
	return SCENARIOS.filter(s => !filter || s.name.toLowerCase().includes(filter)).map(scenario => ({
		scenario,
		missing: scenario.requires.filter(r => !services.includes(r))
	}));
}

function listProfiles(since: number): string[] {
	const dir = path.join(ROOT, PROFILE_DIR);
	if (!fs.existsSync(dir)) return [];
	return fs
		.readdirSync(dir)
		.filter(f => f.endsWith(".cpuprofile") && fs.statSync(path.join(dir, f)).mtimeMs >= since)
		.map(f => path.join(PROFILE_DIR, f));
}

/** Hand-written analysis of the missed targets, included in REPORT.md when present. */
const REPORT_NOTES = path.join(ROOT, "bench", "REPORT-notes.md");
/** The measurements behind bench/REPORT.md, committed with it: `--rewrite-report` works from them. */
const REPORT_DATA = path.join(ROOT, "bench", "REPORT.json");

/** bench/REPORT.md and bench/latency.svg, with a summary of every profile this run wrote. */
function writeFullReport(report: BenchReport, args: string[]): void {
	// This run's profiles; without --profile, those an earlier `--profile` run left (their date is said).
	const files = report.profiles.length > 0 ? report.profiles : listProfiles(0);
	const profiles = files.map(p => summarise(path.join(ROOT, p)));
	const profilesFrom =
		report.profiles.length > 0
			? "this run"
			: files.length > 0
				? `an earlier \`--profile\` run (${new Date(fs.statSync(path.join(ROOT, files[0])).mtimeMs).toISOString()}), not this one: profiled nodes run slower and hold their samples in memory`
				: "";
	const gaps = fs.existsSync(REPORT_NOTES) ? fs.readFileSync(REPORT_NOTES, "utf8") : undefined;
	const md = fullReport(report, {
		chart: "latency.svg",
		profiles,
		profilesFrom,
		command: `npm run bench -- ${args.join(" ")}`,
		gaps
	});
	fs.writeFileSync(path.join(ROOT, "bench", "REPORT.md"), md);
	fs.writeFileSync(path.join(ROOT, "bench", "latency.svg"), latencySvg(report));
	process.stdout.write("report: bench/REPORT.md, bench/latency.svg\n");
}

async function main(): Promise<number> {
	let cli: Cli;
	try {
		cli = parseArgs(process.argv.slice(2));
	} catch (err) {
		if (!(err instanceof UsageError)) throw err;
		if (err.message) console.error(`bench: ${err.message}`);
		console.error(USAGE);
		return err.message ? 2 : 0;
	}
	if (cli.rewriteReport) {
		// The data behind the committed report (any later bench run overwrites latest.json).
		const source = fs.existsSync(REPORT_DATA) ? REPORT_DATA : path.join(RESULTS_DIR, "latest.json");
		const saved = JSON.parse(fs.readFileSync(source, "utf8")) as BenchReport & { args?: string[] };
		writeFullReport(saved, saved.args ?? ["--report"]);
		return 0;
	}
	const services: string[] = [...ALL_SERVICES];
	const chosen = cli.observability ? [] : plan(cli, services);
	if (!cli.observability && chosen.length === 0) {
		console.error(`bench: no scenario name contains '${cli.filter}'`);
		console.error(`scenarios: ${SCENARIOS.map(s => s.name).join(", ")}`);
		return 2;
	}
	const load: LoadOptions = {
		connections: cli.connections,
		duration: cli.duration,
		warmup: cli.warmup
	};
	progress(
		`${cli.connections} connections, ${cli.warmup} s warm-up + ${cli.duration} s per row; ` +
			`services: ${services.join(", ")}`
	);

	try {
		nats = await startNats();
		progress(
			`nats-server on ${nats.url}; starting the baseline and ${services.length} FlashMart node(s)`
		);
		const natsUrl = nats.url;
		const [baselineTarget, flashmart] = await Promise.all([
			startBaseline(natsUrl),
			// --observability starts its own clusters, one at a time, after the baseline.
			cli.observability ? null : startFlashMart(natsUrl, services, cli)
		]);
		progress(
			`baseline on ${baselineTarget.url}` +
				(flashmart ? `, FlashMart gateway on ${flashmart.url}` : "") +
				": ready"
		);

		const baseline = await measureRow(
			{ name: BASELINE_NAME, method: "GET", path: "/echo" },
			baselineTarget,
			async () => ({ method: "GET", path: "/echo", headers: {} }),
			load,
			undefined
		);
		if (baseline.measurement) baseline.ratio = 1;
		// The baseline is done: its idle nodes should not share the two cores with FlashMart's runs.
		await Promise.all(baselineTarget.procs.map(p => p.stop()));

		const rows: RowResult[] = [];
		let observability: ObservabilityOverhead | null = null;
		/** Product reads with metrics and log shipping off, then on: rows and the overhead. */
		const measureOverhead = async () => {
			const measured = await measureObservability(
				natsUrl,
				services,
				cli,
				load,
				baseline.measurement
			);
			rows.push(...measured.rows);
			observability = measured.overhead;
		};
		if (cli.observability) await measureOverhead();
		for (const { scenario, missing } of chosen) {
			if (!flashmart) break;
			const base = rowBase(scenario);
			if (missing.length > 0) {
				rows.push({
					...base,
					status: "skipped",
					reason: `needs ${missing.join(", ")}`,
					ratio: null
				});
				continue;
			}
			if (interrupted) break;
			const marks = outputMarks(flashmart.procs);
			let row: RowResult;
			if (isFlow(scenario)) {
				row = await measureFlowRow(scenario, flashmart, cli, baseline.measurement);
			} else {
				const request = async () => {
					const fromSetup = scenario.setup
						? await withTimeout(
								scenario.setup(flashmart.url, { concurrency: cli.connections }),
								SETUP_TIMEOUT_MS,
								"setup"
							)
						: {};
					return resolveRequest(scenario, fromSetup);
				};
				row = await measureRow(base, flashmart, request, load, baseline.measurement);
			}
			const logs = newLogLines(marks);
			if (logs.length > 0) row.logs = logs;
			rows.push(row);
		}
		if (interrupted) return 130;

		// --report: the phases after the scenarios, each on its own cluster but the memory runs.
		let memory: MemoryResult | undefined;
		let scaleOut: ScaleOutRow[] | undefined;
		let coldStart: ColdStartResult | undefined;
		if (cli.report && flashmart) {
			memory = await measureMemory(flashmart, cli).catch((err: unknown) => {
				progress(`memory runs failed: ${err instanceof Error ? err.message : String(err)}`);
				return undefined;
			});
			progress("stopping the scenarios' cluster");
			await Promise.all(flashmart.procs.map(p => p.stop("SIGTERM", 10_000)));
			await measureOverhead();
			scaleOut = await measureScaleOut(natsUrl, cli, load, baseline.measurement);
			progress("embedded cold start");
			coldStart = await measureColdStart();
		}
		if (interrupted) return 130;

		progress("stopping the cluster");
		await cleanup();

		const report: BenchReport & { args: string[] } = {
			args: process.argv.slice(2),
			date: new Date(startedAt).toISOString(),
			node: process.version,
			platform: `${os.platform()} ${os.arch()}`,
			cpus: os.cpus().length,
			cpuModel: os.cpus()[0]?.model.trim() ?? "unknown",
			connections: cli.connections,
			virtualUsers: Math.min(cli.connections, MAX_VIRTUAL_USERS),
			duration: cli.duration,
			warmup: cli.warmup,
			services,
			baseline,
			scenarios: rows,
			profiles: cli.profile.length > 0 ? listProfiles(startedAt) : [],
			...(observability ? { observability } : {}),
			...(memory ? { memory } : {}),
			...(scaleOut ? { scaleOut } : {}),
			...(coldStart ? { coldStart } : {}),
			...(Object.keys(cli.nodes).length > 0 ? { nodes: cli.nodes } : {})
		};
		fs.mkdirSync(RESULTS_DIR, { recursive: true });
		fs.writeFileSync(
			path.join(RESULTS_DIR, "latest.json"),
			`${JSON.stringify(report, null, "\t")}\n`
		);
		fs.writeFileSync(path.join(RESULTS_DIR, "latest.md"), markdown(report));
		if (cli.report) {
			const args = process.argv.slice(2);
			fs.writeFileSync(REPORT_DATA, `${JSON.stringify(report, null, "\t")}\n`);
			writeFullReport(report, args);
		}

		const all = [baseline, ...rows];
		process.stdout.write(`\n${textTable(report)}\n\n`);
		for (const row of all) {
			if (row.status === "failed") process.stdout.write(`${row.name} failed:\n${row.reason}\n\n`);
			for (const line of findings(row)) {
				process.stdout.write(line.startsWith(" ") ? `${line}\n` : `note: ${line}\n`);
			}
		}
		if (report.observability) {
			process.stdout.write(`${observabilityLine(report.observability)}\n`);
		} else if (cli.observability) {
			process.stdout.write(
				"note: the observability overhead could not be measured (a row failed)\n"
			);
		}
		for (const file of report.profiles) {
			process.stdout.write(`CPU profile: ${file}\n`);
		}
		if (cli.profile.length > 0 && report.profiles.length === 0) {
			process.stdout.write(`note: --profile wrote no .cpuprofile under ${PROFILE_DIR}\n`);
		}
		process.stdout.write(
			`results: ${path.relative(process.cwd(), path.join(RESULTS_DIR, "latest.json"))}, ` +
				`${path.relative(process.cwd(), path.join(RESULTS_DIR, "latest.md"))}\n`
		);
		return all.some(r => r.status === "failed" || r.check?.ok === false) ? 1 : 0;
	} catch (err) {
		// Interrupted while starting: the nodes' exits are ours, not a failure to report.
		if (interrupted) return 130;
		console.error(`bench: could not run: ${err instanceof Error ? err.message : String(err)}`);
		return 1;
	} finally {
		await cleanup();
	}
}

main().then(
	code => process.exit(code),
	(err: unknown) => {
		console.error(err);
		void cleanup().finally(() => process.exit(1));
	}
);
