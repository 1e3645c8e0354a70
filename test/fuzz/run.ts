/**
 * `npm run fuzz`: requests generated from the served OpenAPI document against a fresh embedded node, checked against
 * that document. FUZZ_SEED and FUZZ_RUNS (default 10000) replay a run; FUZZ_ONLY=opId,... sends only those
 * operations' requests of the same sequence (include the operations whose answers feed the ids a request uses,
 * e.g. products.create for products.update). Exits 1 on any 5xx, undocumented status or body off its schema.
 */
import http from "node:http";
import fc from "fast-check";
import { stopAll } from "../../scripts/lib/cluster";
import { startEmbedded } from "../helpers/embedded";
import { ADMIN, HINTS, type Pools, harvest, prepare } from "./fixtures";
import { type FuzzRequest, Raw, Ref, requestArbitrary } from "./generate";
import { Checker, type Doc, PREFLIGHT, UNDEFINED_METHOD, operations } from "./openapi";

const DEFAULT_SEED = 16016;
const seed = Number(process.env.FUZZ_SEED ?? DEFAULT_SEED);
const runs = Number(process.env.FUZZ_RUNS ?? 10000);
const only = process.env.FUZZ_ONLY?.split(",").filter(Boolean);
// A bound on the whole run, so a server that turns slow cannot hold CI for long.
const deadline = Date.now() + Number(process.env.FUZZ_MAX_SECONDS ?? 480) * 1000;

interface Answer {
	status: number;
	contentType?: string;
	body: Buffer;
}

function resolve(value: unknown, pools: Pools): unknown {
	if (value instanceof Ref) {
		const pool = pools[value.pool];
		return pool.length ? pool[value.n % pool.length] : `no-${value.pool}`;
	}
	if (Array.isArray(value)) return value.map(v => resolve(v, pools));
	if (
		value &&
		typeof value === "object" &&
		!(value instanceof Uint8Array) &&
		!(value instanceof Raw)
	)
		return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v, pools)]));
	return value;
}

// Through UTF-8 first: a lone surrogate becomes U+FFFD, as any client's encoder makes it.
const encode = (s: string) => encodeURIComponent(Buffer.from(s).toString());

function target(req: FuzzRequest, pools: Pools): string {
	const text = (v: unknown) => (v instanceof Raw ? v.text : encode(String(resolve(v, pools))));
	const path = req.op.path.replace(/\{([^}]+)\}/g, (_, name: string) => text(req.path[name]));
	const query = req.query.map(([k, v]) =>
		v instanceof Raw && !k ? v.text : `${encode(k)}=${text(v)}`
	);
	return query.length ? `${path}?${query.join("&")}` : path;
}

type Payload = { type?: string; data: Buffer; chunked?: boolean };

function payload(req: FuzzRequest, pools: Pools): Payload | undefined {
	if (!req.body) return undefined;
	const { type, raw, json, chunked } = req.body;
	if (raw !== undefined) return { type, data: Buffer.from(raw), chunked };
	const value = resolve(req.body.value, pools);
	if (value instanceof Uint8Array && !json) return { type, data: Buffer.from(value) };
	if (type === "multipart/form-data" && value && typeof value === "object" && !json) {
		const parts = Object.entries(value).map(([name, v]) =>
			v instanceof Uint8Array
				? Buffer.concat([
						Buffer.from(
							`--fuzz\r\nContent-Disposition: form-data; name="${name}"; filename="f.png"\r\n\r\n`
						),
						Buffer.from(v),
						Buffer.from("\r\n")
					])
				: Buffer.from(
						`--fuzz\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${String(v)}\r\n`
					)
		);
		return {
			type: "multipart/form-data; boundary=fuzz",
			data: Buffer.concat([...parts, Buffer.from("--fuzz--\r\n")])
		};
	}
	return { type, data: Buffer.from(JSON.stringify(value) ?? "") };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function send(
	base: URL,
	method: string,
	path: string,
	headers: Record<string, string>,
	body?: Payload
) {
	return new Promise<Answer>((done, fail) => {
		const req = http.request(
			{ host: base.hostname, port: base.port, method, path, headers, agent, timeout: 20000 },
			res => {
				const chunks: Buffer[] = [];
				res.on("data", c => chunks.push(c));
				res.on("end", () =>
					done({
						status: res.statusCode ?? 0,
						contentType: res.headers["content-type"],
						body: Buffer.concat(chunks)
					})
				);
				res.on("error", fail);
			}
		);
		req.on("timeout", () => req.destroy(new Error("no answer within 20 s")));
		req.on("error", fail);
		if (!body?.chunked) return req.end(body?.data);
		for (let at = 0; at < body.data.length; at += 65536)
			req.write(body.data.subarray(at, at + 65536));
		req.end();
	});
}

/** Printable and short: control characters escaped, bytes that are not UTF-8 counted. */
function short(text: string | Buffer, n = 160): string {
	const s = Buffer.isBuffer(text) ? text.toString("utf8") : text;
	if (Buffer.isBuffer(text) && s.includes("\ufffd")) return `<${text.length} bytes>`;
	const safe = s.replace(
		/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g,
		c => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`
	);
	return safe.length > n ? `${safe.slice(0, n)}... (${s.length} chars)` : safe;
}

interface Group {
	op: string;
	cause: string;
	count: number;
	statuses: Set<string>;
	mutations: Set<string>;
	examples: string[];
}

async function main() {
	if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(runs) || runs < 1)
		throw new Error("FUZZ_SEED must be an integer and FUZZ_RUNS a positive integer");
	console.log(
		`fuzz: seed ${seed}, ${runs} requests; replay with FUZZ_SEED=${seed} FUZZ_RUNS=${runs} npm run fuzz`
	);
	const started = Date.now();
	const { base } = await startEmbedded("fuzz", {
		ADMIN_EMAIL: ADMIN.email,
		ADMIN_PASSWORD: ADMIN.password,
		LOG_LEVEL: "warn"
	});
	const url = new URL(base);
	const { tokens, pools } = await prepare(base);
	const doc = (await (await fetch(`${base}/api/openapi.json`)).json()) as Doc;
	const ops = operations(doc);
	const checker = new Checker(doc);

	// The same number of requests for every operation, interleaved; each operation's from its own seed.
	const perOp = ops.map((op, i) =>
		fc.sample(requestArbitrary(op, HINTS), {
			seed: seed + i,
			numRuns: Math.ceil(runs / ops.length)
		})
	);
	const requests = Array.from(
		{ length: runs },
		(_, i) => perOp[i % ops.length][Math.floor(i / ops.length)]
	);
	console.log(
		`fuzz: ${ops.length} operations from /api/openapi.json; node ready and fixtures made in ${Date.now() - started} ms`
	);

	const groups = new Map<string, Group>();
	const statuses: Record<string, number> = {};
	// Answers per operation: a run whose valid requests never succeed would prove little.
	const byOp = Object.fromEntries(ops.map(op => [op.id, {} as Record<string, number>]));
	let sent = 0;
	for (const [index, req] of requests.entries()) {
		if (only && !only.includes(req.op.id)) continue;
		if (Date.now() > deadline) {
			console.warn(`fuzz: FUZZ_MAX_SECONDS reached after ${sent} requests`);
			break;
		}
		const path = target(req, pools);
		const body = payload(req, pools);
		const headers: Record<string, string> = { ...req.headers };
		const token = tokens[req.persona];
		if (token && !("Authorization" in headers)) headers.Authorization = `Bearer ${token}`;
		if (body?.type) headers["Content-Type"] = body.type;
		if (body && !body.chunked) headers["Content-Length"] = String(body.data.length);
		let cause: string | undefined;
		let answer: Answer | undefined;
		try {
			answer = await send(url, req.method, path, headers, body);
			cause = verdict(checker, req, answer);
			if (!cause && answer.status < 300 && /json/.test(answer.contentType ?? ""))
				harvest(pools, req.op.id, {
					answer: JSON.parse(answer.body.toString() || "null"),
					request: resolve(req.body?.value, pools)
				});
		} catch (err) {
			cause = `no answer: ${(err as Error).message}`;
		}
		sent++;
		const status = String(answer?.status ?? "none");
		statuses[status] = (statuses[status] ?? 0) + 1;
		if (req.method === req.op.method) byOp[req.op.id][status] = (byOp[req.op.id][status] ?? 0) + 1;
		if (!cause) continue;
		const key = `${req.op.id} (${req.op.method} ${req.op.path}): ${cause}`;
		const group = groups.get(key) ?? {
			op: req.op.id,
			cause,
			count: 0,
			statuses: new Set(),
			mutations: new Set(),
			examples: []
		};
		groups.set(key, group);
		group.count++;
		group.statuses.add(status);
		group.mutations.add(req.mutation);
		if (group.examples.length < 2) group.examples.push(describe(index, req, path, body, answer));
	}

	const seconds = ((Date.now() - started) / 1000).toFixed(1);
	console.log(`fuzz: ${sent} requests in ${seconds} s; statuses ${JSON.stringify(statuses)}`);
	console.log("fuzz: answers by operation (own method only)");
	for (const [id, counts] of Object.entries(byOp))
		if (!only || only.includes(id)) console.log(`  ${id} ${JSON.stringify(counts)}`);
	if (!groups.size) {
		console.log(`fuzz: every answer kept the document (seed ${seed})`);
		return 0;
	}
	report(groups);
	console.log(
		`fuzz: FAILED, seed ${seed}; replay with FUZZ_SEED=${seed} FUZZ_RUNS=${runs} npm run fuzz`
	);
	return 1;
}

const BEFORE_BODY = [401, 403, 404, 405, 413, 429, 431];

/** Why the answer breaks the document for this request, or undefined. */
function verdict(checker: Checker, req: FuzzRequest, answer: Answer): string | undefined {
	const table =
		req.method === "OPTIONS"
			? PREFLIGHT
			: req.method === req.op.method || (req.method === "HEAD" && req.op.method === "GET")
				? req.op.responses
				: UNDEFINED_METHOD;
	// A HEAD answer has no body to check, whatever its Content-Type says.
	const body = req.method === "HEAD" ? undefined : answer.body;
	const cause = checker.check(table, answer.status, answer.contentType, body);
	if (cause && req.method === "OPTIONS" && answer.status < 500)
		return "OPTIONS not answered as a preflight (204 or a refusal): the operation ran";
	// The document's conventions: a JSON operation's body over 1 MiB is 413 whatever the framing or type, unless
	// refused before the body is read. Uploads have their own, larger limit.
	const oversize = req.mutation.startsWith("body.oversize") && req.op.body?.["application/json"];
	if (!cause && oversize && !BEFORE_BODY.includes(answer.status))
		return `a body over 1 MiB answered ${answer.status}, not 413`;
	return cause;
}

function describe(
	index: number,
	req: FuzzRequest,
	path: string,
	body: { data: Buffer } | undefined,
	answer: Answer | undefined
): string {
	const headers = Object.entries(req.headers).map(([k, v]) => `${k}: ${short(v, 40)}`);
	return [
		`#${index} ${req.method} ${short(path)} as ${req.persona} [${req.mutation}]`,
		headers.length ? ` headers {${headers.join(", ")}}` : "",
		body ? ` body ${short(body.data)}` : "",
		` -> ${answer?.status ?? "no answer"} ${short(answer?.body ?? "", 200)}`
	].join("");
}

/** Each failure by operation and cause with examples, then each cause with the operations it hit. */
function report(groups: Map<string, Group>): void {
	const byCause = new Map<string, { count: number; ops: string[] }>();
	let failed = 0;
	for (const [key, group] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
		failed += group.count;
		const mutations = [...group.mutations].sort().join(", ");
		const statuses = [...group.statuses].join("/");
		console.log(`\nFAIL ${key}\n  ${group.count}x, status ${statuses}, mutations: ${mutations}`);
		for (const example of group.examples) console.log(`  ${example}`);
		const cause = byCause.get(group.cause) ?? { count: 0, ops: [] };
		byCause.set(group.cause, cause);
		cause.count += group.count;
		cause.ops.push(group.op);
	}
	console.log("\nfuzz: failures by cause");
	for (const [cause, { count, ops }] of [...byCause].sort((a, b) => b[1].count - a[1].count))
		console.log(`  ${count}x in ${ops.length} operation(s): ${cause} [${ops.join(", ")}]`);
	console.log(`fuzz: ${groups.size} distinct failures in ${failed} requests`);
}

main()
	.then(
		code => (process.exitCode = code),
		err => {
			console.error(err);
			process.exitCode = 1;
		}
	)
	.finally(() => {
		agent.destroy();
		return stopAll();
	});
