/**
 * The shapes the bench's files share: the requests and flows that scenarios declare and flow.ts and measure.ts drive,
 * and a run's results (bench/results/latest.json, bench/REPORT.json). In one place, importing nothing, so that the
 * files that declare, measure and report import them from here and not from each other.
 */

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export type JsonValue =
	string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The request autocannon repeats: what a scenario declares, merged with what its setup returns. */
export interface RequestOptions {
	method: HttpMethod;
	/** Path and query on the gateway, e.g. `/api/products?limit=20`. */
	path: string;
	headers: Record<string, string>;
	/** A string is sent as is; anything else as JSON (with `Content-Type: application/json`). */
	body?: string | JsonValue;
	/**
	 * Headers of one connection each, on top of `headers`: connection i sends entry i (modulo the length), e.g.
	 * its own customer's `Authorization`, so that concurrent connections do not all write the same cart.
	 */
	connectionHeaders?: Array<Record<string, string>>;
}

/** What a setup knows of the row it prepares. */
export interface SetupContext {
	/** Concurrent connections (a request scenario) or virtual users (a flow) the row runs with. */
	concurrency: number;
	/** `--quick`: a smaller run where the scenario's size is its own (the flash sale's buyers and units). */
	quick?: boolean;
}

/** One step of a flow, as the reports name it. */
export interface FlowStep {
	name: string;
	method: HttpMethod;
	/** The route, for the reports (e.g. `/api/cart/items/:productId`). */
	path: string;
	/** The statuses that let the iteration go on; any other answer (or none) ends the iteration there. */
	expect: number[];
}

/** A request of a flow step, as sent. A body is sent as JSON. */
export interface FlowRequest {
	method: HttpMethod;
	path: string;
	headers?: Record<string, string>;
	body?: JsonValue;
}

/** An answer to a flow step: the status and the body (parsed when it is JSON, else the text). */
export interface FlowResponse {
	status: number;
	body: unknown;
	/** The response's headers, names in lower case (e.g. `retry-after`). */
	headers?: Record<string, string | string[] | undefined>;
}

/** What a flow's `verify` found after the run. */
export interface FlowCheck {
	ok: boolean;
	/** One line, e.g. `0 oversell (...)`. */
	summary: string;
	/** The discrepancies, or what was checked. */
	details: string[];
}

/** A prepared flow: builds every request, sees every answer, checks what the run left behind. */
export interface Flow {
	/**
	 * Step `step` of the current iteration of virtual user `vu` (0..C-1). A virtual user runs one iteration at a
	 * time; `state` is new for each iteration and shared by its steps.
	 */
	request(vu: number, step: number, state: Record<string, unknown>): FlowRequest;
	/**
	 * Whether step `step` of this iteration is left out (not sent, not counted: the iteration goes on with the next
	 * step), e.g. an add to cart when the unit is still in the cart from an attempt that was turned away.
	 */
	skip?(vu: number, step: number, state: Record<string, unknown>): boolean;
	/** Every answer, warm-up included; `null` when none came (connection error, client timeout); `ms` it took. */
	onResponse?(
		vu: number,
		step: number,
		state: Record<string, unknown>,
		req: FlowRequest,
		res: FlowResponse | null,
		ms: number
	): void;
	/**
	 * Before each iteration of virtual user `vu`: may wait (for a buyer who may try again) and fill `state`; false
	 * when this virtual user has nothing left to do (it stops; the run ends when every one has stopped). `over()`
	 * turns true once the run's time is up or it was stopped: a wait must end then.
	 */
	begin?(vu: number, state: Record<string, unknown>, over: () => boolean): Promise<boolean>;
	/** After each iteration, whatever its outcome (`ok`: every step answered as expected). */
	end?(vu: number, state: Record<string, unknown>, ok: boolean): void;
	/** The flash sale's figures, once `verify` has run. */
	flashSale?(): FlashSaleResult | undefined;
	/** Runs once every iteration has finished (warm-up and measured). `ok: false` makes the bench exit 1. */
	verify?(): Promise<FlowCheck>;
}

export interface Measurement {
	/** Completed responses per second (any status), the mean of autocannon's per-second samples. */
	requestsPerSec: number;
	/** Over every completed response, 2xx or not (as autocannon does); sub-millisecond resolution. */
	latencyMs: { p50: number; p95: number; p99: number; mean: number; max: number };
	/** Completed responses, any status. */
	responses: number;
	/** Connection errors and timeouts: requests that got no response at all. */
	errors: number;
	timeouts: number;
	non2xx: number;
	statusCodes: Record<string, number>;
	/** Seconds the measured run actually took. */
	duration: number;
}

export interface StepMeasurement extends Measurement {
	name: string;
	method: string;
	path: string;
}

export interface FlowMeasurement {
	virtualUsers: number;
	/** Iterations started in the measured window, whatever their outcome. */
	iterations: number;
	/** Of those, the ones whose every step answered as expected (for the checkout flow: purchases). */
	completed: number;
	/** Completed iterations per second. */
	iterationsPerSec: number;
	/** Latency of a whole completed iteration (all its steps, back to back). */
	iterationLatencyMs: Measurement["latencyMs"];
	/** Iterations run during the warm-up (not counted above). */
	warmupIterations: number;
	/** Every step's responses together: `requestsPerSec` is steps per second. */
	total: Measurement;
	steps: StepMeasurement[];
}

/** Log lines of warn level and above that FlashMart's nodes printed during a row, grouped. */
export interface LogGroup {
	node: string;
	level: string;
	message: string;
	count: number;
}

export interface RowResult {
	name: string;
	/** A request scenario (autocannon) or a flow (bench/flow.ts); absent on old results: a request. */
	kind?: "request" | "flow";
	/** A flow's is "FLOW", its path the steps' (`POST /api/cart/items -> POST /api/orders`). */
	method: HttpMethod | "FLOW";
	path: string;
	status: "measured" | "skipped" | "failed";
	/** Why it was skipped or failed. */
	reason?: string;
	/** A flow's: every step's responses together (`requestsPerSec` = steps per second). */
	measurement?: Measurement;
	/** A flow's iterations and per-step measurements (their pooled measurement is `measurement`). */
	flow?: Omit<FlowMeasurement, "total">;
	/** What the words "iterations" stand for in a flow's notes (e.g. "purchases"). */
	unit?: string;
	/** A flow's check of what the run left behind; `ok: false` makes the bench exit 1. */
	check?: FlowCheck;
	/**
	 * This row's req/s over the baseline's (same run); null when either is missing. For a flow: its steps/s (every
	 * HTTP request of its iterations) over the baseline's req/s.
	 */
	ratio: number | null;
	/** Warn-and-above log lines of FlashMart's nodes from this row's setup to its end (the most frequent first). */
	logs?: LogGroup[];
	/** How the row's figures were taken, when not in one run (e.g. the median of rounds). */
	note?: string;
	/** The flash-sale scenario's figures. */
	flashSale?: FlashSaleResult;
	/**
	 * CPU ms FlashMart's nodes spent per request (a flow: per whole iteration) over the measured window, from /proc
	 * (`--observability`; absent where it could not be read).
	 */
	cpuMsPerUnit?: number;
}

/** Checkouts admitted while one stretch of units sold (bench/scenarios.ts's flash sale). */
export interface SaleWindow {
	/** Units sold when the window began and ended. */
	fromUnits: number;
	toUnits: number;
	/** Admitted checkouts in the window, over its seconds (from the completions of successful checkouts). */
	checkoutsPerSec: number;
	seconds: number;
}

export interface FlashSaleResult {
	buyers: number;
	/** Seconds it took to register them (before the sale started; not in any rate). */
	registrationSeconds: number;
	/** The warm-up before the clock (absent on results from before it): its seconds and checkouts of another product. */
	warmup?: { seconds: number; checkouts: number };
	units: number;
	perCustomerLimit: number;
	/** Units per window (250). */
	windowUnits: number;
	windows: SaleWindow[];
	bestWindow: number;
	/** The last full window's rate. */
	lastWindow: number;
	/** lastWindow / bestWindow. */
	lastToBest: number;
	/** Admitted checkouts over the seconds from the sale's start to the last admitted checkout. */
	sustainedPerSec: number;
	/** Seconds from the start to the last admitted checkout, and to the last answer of the run. */
	sellOutSeconds: number;
	runSeconds: number;
	/** Latency of the checkouts answered 201. */
	admittedLatencyMs: Measurement["latencyMs"];
	/** Checkouts answered 201 (replays of unclear answers included) and the units in them. */
	admitted: number;
	admittedUnits: number;
	oversold: number;
	/** Answers other than 200/201, by step, status and error type: `checkout 409 OUT_OF_STOCK`. */
	rejects: Record<string, number>;
	/** 5xx answers of every step; of them, 503/429-style admission answers with Retry-After are `overloaded`. */
	serverErrors: number;
	overloaded: number;
	/** Requests that got no answer at all (connection errors, client timeouts). */
	noAnswer: number;
	/** Buyers who got more than the per-customer limit (must be 0). */
	overLimitBuyers: number;
	/** What the owner says after the run: GET /api/inventory/:productId and GET /api/sales/:id. */
	inventory: Record<string, unknown>;
	unitsLeft: number | null;
}

/** One variant's figures for one scenario of `--observability`: medians over its rounds. */
export interface ObservabilityFigure {
	scenario: string;
	/** What `perSecond` counts: "req/s" (a request scenario) or e.g. "purchases/s" (a flow's whole iterations). */
	unit: string;
	perSecond: number;
	/** ms: of each request, or of a flow's whole iteration (all its steps back to back). */
	p99: number;
	/** perSecond of every round, in the order measured; null for a round that measured nothing. */
	rounds: Array<number | null>;
	/** The median of the rounds' CPU ms per request (or iteration), and every round's; absent without /proc. */
	cpuMsPerUnit?: number;
	cpuRounds?: number[];
}

/** One cluster of `--observability`: what it had on, and what it measured. */
export interface ObservabilityVariant {
	label: string;
	metricsAndLogs: boolean;
	/** TRACING_SAMPLE_RATIO; null with tracing off. */
	sampleRatio: number | null;
	figures: ObservabilityFigure[];
	/** Log lines its stand-in Elasticsearch indexed over the cluster's life (metrics and logs on). */
	linesShipped?: number;
	/** Spans its loopback OTLP collector accepted over the cluster's life (tracing on). */
	spansReceived?: number;
	/** Export requests that collector refused (none expected). */
	exportsRefused?: number;
}

export interface ObservabilityOverhead {
	scenario: string;
	/** LOG_LEVEL of every cluster. */
	logLevel: string;
	offRequestsPerSec: number;
	onRequestsPerSec: number;
	/** on / off req/s (3 decimals): 0.9 means observability costs 10 % of the throughput. */
	ratio: number;
	/** Log lines the stand-in sink indexed during the "on" cluster's life. */
	linesShipped: number;
	/**
	 * req/s of every round, in the order measured (off and on in turns; null: a round that measured nothing); the
	 * figures above are their medians.
	 */
	rounds?: { off: Array<number | null>; on: Array<number | null> };
	/**
	 * Every variant, "off" first, then metrics + logs, then with tracing; the fields above are the first two's
	 * product read. Absent in results from before tracing was measured.
	 */
	variants?: ObservabilityVariant[];
	/** Set when these figures come from an `--observability` run of their own and not from the report's run. */
	measuredBy?: { date: string; command: string };
}

export interface MemorySample {
	/** Seconds of load before this sample (cumulative over the runs). */
	afterSeconds: number;
	/** Resident set size per node, in MB. */
	rssMb: Record<string, number>;
	/** `--trace-gc` nodes: the V8 heap after their last full GC (MB), i.e. what is live. */
	liveHeapMb?: Record<string, number>;
	/** Purchases the flow completed during this run (the orders node keeps each in its NeDB store, in memory). */
	purchases?: number;
	/** The (first) gateway's V8 heap, used and total, in MB (its /metrics), to tell garbage from growth. */
	gatewayHeapMb?: { used: number; total: number };
}

export interface MemoryResult {
	/** What the load was. */
	load: string;
	/** Seconds of load per run. */
	runSeconds: number;
	/** RSS of every node before the first run, then after each run. */
	before: Record<string, number>;
	runs: MemorySample[];
}

export interface ColdStartResult {
	command: string;
	/** ms from spawning `npm start` to the first `GET /ready` 200, per attempt. */
	attemptsMs: number[];
	medianMs: number;
}

export interface ScaleOutRow {
	layout: string;
	scenario: string;
	requestsPerSec: number;
	p99: number;
	ratio: number | null;
}

export interface BenchReport {
	date: string;
	node: string;
	platform: string;
	cpus: number;
	cpuModel: string;
	connections: number;
	/** Virtual users of the flows: `connections`, at most 50. */
	virtualUsers: number;
	/** Seconds measured per row. */
	duration: number;
	/** Seconds of warm-up before each measured run, not counted. */
	warmup: number;
	/** The services FlashMart had (config ALL_SERVICES), which decides what is skipped. */
	services: string[];
	baseline: RowResult;
	scenarios: RowResult[];
	/** .cpuprofile files of the gateway node written by this run (`--profile`). */
	profiles: string[];
	/** `--observability`: the product read and the purchase flow with metrics, logs and tracing off and on. */
	observability?: ObservabilityOverhead;
	/** `--report`: RSS of every node over consecutive runs of load. */
	memory?: MemoryResult;
	/** `--report`: `npm start` (embedded) to `/ready` 200. */
	coldStart?: ColdStartResult;
	/** `--report`: the request rows again with more instances (`--nodes`). */
	scaleOut?: ScaleOutRow[];
	/** Instances per service when not one each (`--nodes`). */
	nodes?: Record<string, number>;
	/** `--groups`: the nodes' services, one list per node, when nodes ran service groups and not one service each. */
	groups?: string[][];
	/** `--holds` (and `--report`): reserve + commit on one product at levels of open holds. */
	holds?: HoldsResult;
}

/** One level of `--holds`: that many holds open on the product while the pairs ran. */
export interface HoldLevel {
	holds: number;
	/** The level asked for, when opening its holds ran out of time (then `holds` is how many were opened). */
	requested?: number;
	/** Reserve + commit pairs timed, one after the other. */
	pairs: number;
	/** Pairs per second of time spent in them (the control's pairs in between left out). */
	pairsPerSec: number;
	/** Of one pair (reserve, then commit), ms. */
	latencyMs: Measurement["latencyMs"];
	/** Seconds it took to open this level's holds on top of the previous level's. */
	openSeconds: number;
	/** p50 and mean over the first level's (0 holds). */
	ratioP50?: number;
	ratioMean?: number;
	/** The same pairs on a product without holds, each right after one of the above (the machine's pace then). */
	controlLatencyMs?: Measurement["latencyMs"];
	/** ratioP50 and ratioMean divided by the control's own ratio to the first level: drift of the machine removed. */
	correctedP50?: number;
	correctedMean?: number;
}

export interface HoldsResult {
	product: string;
	store: string;
	levels: HoldLevel[];
}

/** One of the performance issue's targets, checked against a run (bench/targets.ts). */
export interface TargetResult {
	scenario: string;
	target: string;
	measured: string;
	/** To the baseline's req/s, when the target is a ratio. */
	ratio: string;
	/** null when the run did not measure it. */
	pass: boolean | null;
}
