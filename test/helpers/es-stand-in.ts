/**
 * A loopback stand-in for Elasticsearch, on node:http, that speaks what the log shipper uses: `PUT _index_template/<name>`
 * and `POST _bulk` (newline-delimited action and document lines), with the `x-elastic-product` header the official
 * client insists on. It keeps every document and every raw request body, and can be made slow (answers held for a
 * while) to play an overloaded cluster. Used by the tests and by `npm run bench` as the log sink.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface StoredDoc {
	index: string;
	doc: Record<string, unknown>;
}

export interface EsStandIn {
	url: string;
	port: number;
	docs: StoredDoc[];
	/** Raw bodies of every request received, in order. */
	bodies: string[];
	/** Documents indexed (answered), stored or not. */
	received: number;
	templates: Map<string, unknown>;
	/** `_bulk` requests received, answered or not. */
	bulkRequests: number;
	/** Requests received and not answered yet (held by `delayMs`). */
	pending(): number;
	/** Delay before each answer, in ms (0: answer at once); can be changed at any time. */
	delayMs: number;
	/** Drops the stored documents and bodies (keeps templates and settings). */
	clear(): void;
	close(): Promise<void>;
}

const HEADERS = {
	"Content-Type": "application/json",
	"x-elastic-product": "Elasticsearch"
};

/** Parses a `_bulk` body into documents: `index`/`create` actions followed by their document. */
function parseBulk(
	body: string,
	defaultIndex: string | undefined
): { docs: StoredDoc[]; items: unknown[] } {
	const lines = body.split("\n").filter(l => l.trim() !== "");
	const docs: StoredDoc[] = [];
	const items: unknown[] = [];
	for (let i = 0; i < lines.length; i += 2) {
		const action = JSON.parse(lines[i]) as Record<string, { _index?: string }>;
		const op = Object.keys(action)[0];
		const index = action[op]._index ?? defaultIndex ?? "";
		const doc = JSON.parse(lines[i + 1] ?? "{}") as Record<string, unknown>;
		docs.push({ index, doc });
		items.push({
			[op]: { _index: index, _id: String(docs.length), status: 201, result: "created" }
		});
	}
	return { docs, items };
}

/** `store: false` only counts documents (a sink for long runs: the bench). */
export async function startEsStandIn(
	opts: { port?: number; delayMs?: number; store?: boolean } = {}
): Promise<EsStandIn> {
	const store = opts.store ?? true;
	let pending = 0;
	const held = new Set<NodeJS.Timeout>();
	const state: EsStandIn = {
		url: "",
		port: 0,
		docs: [],
		bodies: [],
		received: 0,
		templates: new Map(),
		bulkRequests: 0,
		pending: () => pending,
		delayMs: opts.delayMs ?? 0,
		clear() {
			state.docs.length = 0;
			state.bodies.length = 0;
		},
		close: () =>
			new Promise<void>(resolve => {
				for (const t of held) clearTimeout(t);
				server.closeAllConnections();
				server.close(() => resolve());
			})
	};

	const answer = (res: http.ServerResponse, status: number, body: unknown, after: () => void) => {
		const send = () => {
			pending--;
			after();
			if (res.destroyed) return;
			res.writeHead(status, HEADERS);
			res.end(JSON.stringify(body));
		};
		if (state.delayMs <= 0) return send();
		const t = setTimeout(() => {
			held.delete(t);
			send();
		}, state.delayMs);
		held.add(t);
	};

	const server = http.createServer((req, res) => {
		pending++;
		const chunks: Buffer[] = [];
		req.on("data", (c: Buffer) => chunks.push(c));
		req.on("end", () => {
			const body = Buffer.concat(chunks).toString("utf8");
			const url = new URL(req.url ?? "/", "http://stand-in");
			const parts = url.pathname.split("/").filter(Boolean);
			if (store) state.bodies.push(body);
			try {
				if (req.method === "PUT" && parts[0] === "_index_template" && parts[1]) {
					state.templates.set(parts[1], JSON.parse(body));
					return answer(res, 200, { acknowledged: true }, () => undefined);
				}
				const bulkAt = parts.indexOf("_bulk");
				if ((req.method === "POST" || req.method === "PUT") && bulkAt >= 0) {
					state.bulkRequests++;
					const { docs, items } = parseBulk(body, bulkAt === 1 ? parts[0] : undefined);
					// Stored when answered: a held request has not been "indexed" yet.
					return answer(res, 200, { took: 1, errors: false, items }, () => {
						state.received += docs.length;
						if (store) state.docs.push(...docs);
					});
				}
				if (req.method === "GET" && parts.length === 0) {
					return answer(
						res,
						200,
						{ name: "stand-in", cluster_name: "stand-in", version: { number: "8.15.0" } },
						() => undefined
					);
				}
				answer(
					res,
					404,
					{ error: { type: "not_found", reason: url.pathname }, status: 404 },
					() => undefined
				);
			} catch (err) {
				answer(
					res,
					400,
					{ error: { type: "parse_exception", reason: String(err) }, status: 400 },
					() => undefined
				);
			}
		});
	});
	await new Promise<void>(resolve => server.listen(opts.port ?? 0, "127.0.0.1", resolve));
	state.port = (server.address() as AddressInfo).port;
	state.url = `http://127.0.0.1:${state.port}`;
	return state;
}
