/**
 * A loopback stand-in for Elasticsearch, on node:http, that speaks what the log shipper uses: `PUT _index_template/<name>`
 * and `POST _bulk` (newline-delimited action and document lines), with the `x-elastic-product` header the official
 * client insists on. It keeps every document and every raw request body, and can be made slow (answers held for a
 * while) to play an overloaded cluster.
 *
 * As strict as Elasticsearch with security on: every request needs a user's credentials (401 `security_exception`
 * with `WWW-Authenticate` otherwise), and each user may only do what its roles grant (403 `security_exception`). The
 * users and roles mirror docker/elasticsearch/setup.sh: `elastic` is a superuser; the shipper's user
 * (`flashmart_logs_writer`) may only create documents in `logs-flashmart-*` through `_bulk` and auto-create those
 * indices, so its `PUT _index_template` is refused as Elasticsearch refuses it.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface EsUser {
	username: string;
	password: string;
	roles: string[];
}

/** The users of docker/elasticsearch/setup.sh, with test passwords. */
export const ES_USERS = {
	elastic: { username: "elastic", password: "elastic-test-password", roles: ["superuser"] },
	shipper: {
		username: "flashmart_logs",
		password: "logs-test-password",
		roles: ["flashmart_logs_writer"]
	}
} as const satisfies Record<string, EsUser>;

/** The shipper user's credentials as a node's environment (config/index.ts). */
export const SHIPPER_ENV = {
	ELASTICSEARCH_USERNAME: ES_USERS.shipper.username,
	ELASTICSEARCH_PASSWORD: ES_USERS.shipper.password
};

/** Index privileges by role, on index-name patterns (setup.sh); `superuser` may do everything. */
const ROLES: Record<string, { indices: Array<{ names: RegExp; privileges: string[] }> }> = {
	flashmart_logs_writer: {
		indices: [{ names: /^logs-flashmart-/, privileges: ["create_doc", "auto_configure"] }]
	},
	flashmart_logs_reader: {
		indices: [{ names: /^logs-flashmart-/, privileges: ["read", "view_index_metadata"] }]
	}
};

/** Index privileges that grant each index action (Elasticsearch 8). */
const GRANTED_BY: Record<string, string[]> = {
	create_doc: ["create_doc", "create", "index", "write", "all"],
	index: ["index", "write", "all"],
	auto_create: ["auto_configure", "create_index", "manage", "all"]
};

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
	/** Requests refused with 401 or 403 (whole requests; refused bulk items are in `refusedItems`). */
	refused: Array<{ status: 401 | 403; method: string; path: string; user?: string }>;
	refusedItems: number;
	/** Indices that exist (created by a `_bulk`). */
	indices: Set<string>;
	/** Drops the stored documents and bodies (keeps templates and settings). */
	clear(): void;
	close(): Promise<void>;
}

const HEADERS = {
	"Content-Type": "application/json",
	"x-elastic-product": "Elasticsearch"
};

/** The authenticated user's name and roles. */
interface Principal {
	username: string;
	roles: readonly string[];
}

function mayOnIndex(user: Principal, index: string, action: keyof typeof GRANTED_BY): boolean {
	if (user.roles.includes("superuser")) return true;
	return user.roles.some(r =>
		(ROLES[r]?.indices ?? []).some(
			g => g.names.test(index) && g.privileges.some(p => GRANTED_BY[action].includes(p))
		)
	);
}

/** Elasticsearch's error answer: `{ error: { root_cause: [..], type, reason, .. }, status }`. */
function esError(status: number, type: string, reason: string, extra: object = {}) {
	const cause = { type, reason, ...extra };
	return { error: { root_cause: [cause], ...cause }, status };
}

const AUTHENTICATE = ['Basic realm="security", charset="UTF-8"', "ApiKey"];

function unauthorized(user: Principal, action: string, grantedBy: string, on = ""): string {
	return (
		`action [${action}] is unauthorized for user [${user.username}] with effective roles ` +
		`[${user.roles.join(",")}]${on}, this action is granted by the ${grantedBy}`
	);
}

/**
 * Parses a `_bulk` body into documents: `index`/`create` actions followed by their document. Each item is
 * authorised as Elasticsearch does: `create`, or `index` without `_id`, needs `create_doc`; `index` with an `_id`
 * needs `index`; a new index needs `auto_configure`. A refused item is a 403 in `items`, the others go through.
 */
function parseBulk(
	body: string,
	defaultIndex: string | undefined,
	user: Principal,
	indices: Set<string>
): { docs: StoredDoc[]; items: unknown[]; errors: boolean } {
	const lines = body.split("\n").filter(l => l.trim() !== "");
	const docs: StoredDoc[] = [];
	const items: unknown[] = [];
	let errors = false;
	for (let i = 0; i < lines.length; i += 2) {
		const action = JSON.parse(lines[i]) as Record<string, { _index?: string; _id?: string }>;
		const op = Object.keys(action)[0];
		const index = action[op]._index ?? defaultIndex ?? "";
		const doc = JSON.parse(lines[i + 1] ?? "{}") as Record<string, unknown>;
		const needs = op === "index" && action[op]._id !== undefined ? "index" : "create_doc";
		const allowed =
			mayOnIndex(user, index, needs) &&
			(indices.has(index) || mayOnIndex(user, index, "auto_create"));
		if (!allowed) {
			errors = true;
			items.push({
				[op]: {
					_index: index,
					status: 403,
					error: {
						type: "security_exception",
						reason: unauthorized(
							user,
							"indices:data/write/bulk[s]",
							`index privileges [${GRANTED_BY[needs].join(",")}]`,
							` on indices [${index}]`
						)
					}
				}
			});
			continue;
		}
		indices.add(index);
		docs.push({ index, doc });
		items.push({
			[op]: { _index: index, _id: String(docs.length), status: 201, result: "created" }
		});
	}
	return { docs, items, errors };
}

function basicUser(req: http.IncomingMessage): string {
	const m = /^Basic (.+)$/i.exec(req.headers.authorization ?? "");
	return m ? Buffer.from(m[1], "base64").toString("utf8").split(":")[0] : "";
}

/** `store: false` only counts documents (a sink for long runs: the bench). */
export async function startEsStandIn(
	opts: { port?: number; delayMs?: number; store?: boolean; users?: EsUser[] } = {}
): Promise<EsStandIn> {
	const store = opts.store ?? true;
	const users = opts.users ?? Object.values(ES_USERS);
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
		refused: [],
		refusedItems: 0,
		indices: new Set(),
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

	/** The user of the request's Basic credentials, or null (absent, unknown user, wrong password). */
	const authenticate = (req: http.IncomingMessage): Principal | null | undefined => {
		const header = req.headers.authorization;
		if (!header) return undefined;
		const m = /^Basic (.+)$/i.exec(header);
		if (!m) return null;
		const text = Buffer.from(m[1], "base64").toString("utf8");
		const colon = text.indexOf(":");
		const user = users.find(u => u.username === text.slice(0, colon));
		return user && user.password === text.slice(colon + 1) ? user : null;
	};

	const answer = (
		res: http.ServerResponse,
		status: number,
		body: unknown,
		after: () => void,
		headers: Record<string, string | string[]> = {}
	) => {
		const send = () => {
			pending--;
			after();
			if (res.destroyed) return;
			res.writeHead(status, { ...HEADERS, ...headers });
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
			const method = req.method ?? "GET";
			const user = authenticate(req);
			if (!user) {
				const reason =
					user === undefined
						? `missing authentication credentials for REST request [${req.url}]`
						: `unable to authenticate user [${basicUser(req)}] for REST request [${req.url}]`;
				state.refused.push({ status: 401, method, path: url.pathname });
				return answer(
					res,
					401,
					esError(401, "security_exception", reason, {
						header: { "WWW-Authenticate": AUTHENTICATE }
					}),
					() => undefined,
					{ "WWW-Authenticate": AUTHENTICATE }
				);
			}
			const superuser = user.roles.includes("superuser");
			const forbid = (action: string, grantedBy: string) => {
				state.refused.push({ status: 403, method, path: url.pathname, user: user.username });
				answer(
					res,
					403,
					esError(403, "security_exception", unauthorized(user, action, grantedBy)),
					() => undefined
				);
			};
			try {
				if (req.method === "PUT" && parts[0] === "_index_template" && parts[1]) {
					if (!superuser) {
						return forbid(
							"indices:admin/index_template/put",
							"cluster privileges [manage_index_templates,manage,all]"
						);
					}
					state.templates.set(parts[1], JSON.parse(body));
					return answer(res, 200, { acknowledged: true }, () => undefined);
				}
				const bulkAt = parts.indexOf("_bulk");
				if ((req.method === "POST" || req.method === "PUT") && bulkAt >= 0) {
					state.bulkRequests++;
					const { docs, items, errors } = parseBulk(
						body,
						bulkAt === 1 ? parts[0] : undefined,
						user,
						state.indices
					);
					// Stored when answered: a held request has not been "indexed" yet.
					return answer(res, 200, { took: 1, errors, items }, () => {
						state.refusedItems += items.length - docs.length;
						state.received += docs.length;
						if (store) state.docs.push(...docs);
					});
				}
				if (req.method === "GET" && parts.length === 0) {
					if (!superuser) {
						return forbid("cluster:monitor/main", "cluster privileges [monitor,manage,all]");
					}
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
