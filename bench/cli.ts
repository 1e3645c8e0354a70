/** The bench's flags: what `npm run bench -- ...` accepts, and the usage text it prints on a mistake. */
import { PROFILE_DIR } from "./output";

/** Open holds at which `--holds` times reserve + commit when given no list. */
export const DEFAULT_HOLD_LEVELS = [0, 1_000, 10_000, 50_000];

/** Virtual users of a flow: --connections, at most this many. */
export const MAX_VIRTUAL_USERS = 50;

export interface Cli {
	duration: number;
	warmup: number;
	connections: number;
	filter: string | null;
	/** Instances per service (`--nodes api=2,products=2`); one of each otherwise. */
	nodes: Record<string, number>;
	/** Services whose nodes run with --cpu-prof (`--profile [api,orders]`; bare `--profile`: the gateway). */
	profile: string[];
	observability: boolean;
	/** Rounds of `--observability` per variant and scenario (`--rounds`, default 5). */
	rounds: number;
	/** `--report`: every phase, then bench/REPORT.md and bench/latency.svg. */
	report: boolean;
	/** Services whose nodes run with `--trace-gc` (the memory runs then report their heap after the last full GC). */
	traceGc: string[];
	/** `--rewrite-report`: REPORT.md and the chart again from bench/REPORT.json, nothing run. */
	rewriteReport: boolean;
	/** Seconds of load per memory run (`--memory-seconds`, default 60). */
	memorySeconds: number;
	/** `--holds [levels]`: the reserve + commit micro-benchmark at these levels of open holds; null otherwise. */
	holds: number[] | null;
	/** `--quick`: shorter runs (the holds mode times fewer pairs). */
	quick: boolean;
	/** `--groups`: one node per service group (SERVICE_GROUPS, as compose and Kubernetes run them), not per service. */
	groups: boolean;
}

export class UsageError extends Error {}

export const USAGE = `usage: npm run bench -- [options]
  --duration <s>      seconds measured per row (default 10)
  --warmup <s>        seconds of load before each row, not counted (default 2)
  --connections <n>   concurrent connections (default 50); flows: as many virtual users, at most ${MAX_VIRTUAL_USERS}
  --scenario <text>   only scenarios whose name contains <text> (the baseline always runs)
  --quick             3 s measured after 1 s of warm-up (smoke test); --holds: 100 pairs per level;
                      the flash sale: 1,000 units, 300 buyers
  --observability     product by id and the purchase flow on 4 clusters: all off, metrics + log shipping,
                      and those with tracing at TRACING_SAMPLE_RATIO 1.0 and 0.1 (spans to a loopback OTLP
                      collector); reports each one's throughput and p99 against all off; --scenario
                      keeps one of the two
  --rounds <n>        rounds of --observability, each variant measured once per round (default 5)
  --report            the full run behind bench/REPORT.md: every scenario, then memory (3 runs of load, RSS
                      per node), observability (as --observability), scale-out (1 vs 2 gateways, 1 vs 2
                      products nodes), embedded cold start, reserve + commit by open holds (--holds); writes
                      bench/REPORT.md and bench/latency.svg
  --rewrite-report    write bench/REPORT.md and bench/latency.svg again from bench/REPORT.json (after
                      editing bench/REPORT-notes.md), without running anything
  --trace-gc <nodes>  run those services' nodes with node --trace-gc; the memory runs of --report then give
                      each one's heap after its last full GC (live data) next to its RSS
  --memory-seconds <s> seconds of load per memory run of --report (default 60)
  --holds [levels]    reserve + commit on one product (in-process inventory, NeDB) at levels of open holds,
                      a comma-separated list (default 0,1000,10000,50000); nothing else runs
  --nodes <list>      instances per service, e.g. api=2,products=2 (scale-out); request scenarios spread their
                      connections over every gateway
  --groups            one node per service group, as docker-compose.yaml and Kubernetes run them (gateway: api;
                      users; catalog: products, media; commerce: inventory, carts, orders, pricing; payments:
                      payments, notifications), instead of one node per service; --nodes then names only api
  --profile [nodes]   CPU-profile FlashMart nodes into ${PROFILE_DIR}/: a comma-separated list of services
                      (e.g. api,orders; 'all' for every node), the gateway (api) when no list is given`;

export function parseArgs(argv: string[]): Cli {
	const cli = parseFlags(argv);
	const others = Object.keys(cli.nodes).filter(service => service !== "api");
	if (cli.groups && others.length > 0) {
		throw new UsageError(
			`--groups runs one node per group: --nodes may name api only, not ${others.join(", ")}`
		);
	}
	return cli;
}

function parseFlags(argv: string[]): Cli {
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
			case "--rounds":
				given.rounds = number(1, true);
				break;
			case "--holds": {
				// An optional list, as --profile's: `--holds`, `--holds 0,1000`, `--holds=0,5000`.
				const next = inline ?? (argv[i + 1]?.startsWith("--") ? undefined : argv[++i]);
				const levels = next ? next.split(",").map(s => Number(s.trim())) : DEFAULT_HOLD_LEVELS;
				if (levels.some((n, j) => !Number.isInteger(n) || n < 0 || (j > 0 && n <= levels[j - 1]))) {
					throw new UsageError(`--holds wants ascending integers >= 0, not '${next}'`);
				}
				given.holds = levels;
				break;
			}
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
			case "--groups":
				given.groups = true;
				break;
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
		observability: given.observability ?? false,
		rounds: given.rounds ?? 5,
		holds: given.holds ?? null,
		quick,
		groups: given.groups ?? false
	};
}
