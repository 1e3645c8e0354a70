/**
 * Builds the OpenAPI 3.1 document of the whole HTTP API from the operation table in contract.ts, with each
 * operation's parameters and access level derived from its action (action-specs.ts) and its answers as the
 * contract's named schemas. Decisions API.md leaves open are written down here, in the document clients read.
 * Run as a script (`node dist/services/api/openapi.js [file]`) it writes the document, for the linter and the
 * client generator.
 */
import fs from "node:fs";
import { type ActionSpecs, accessOf, bindParams, loadActionSpecs, specOf } from "./action-specs";
import {
	API_OPERATIONS,
	API_ROUTE,
	type JsonSchema,
	OPS_OPERATIONS,
	OPS_ROUTE,
	type Operation,
	SCHEMAS,
	TAGS,
	ref
} from "./contract";

const STATUS_TEXT: Record<number, string> = {
	400: "Malformed request: body (INVALID_REQUEST_BODY), header, or percent-encoding of the path (UNABLE_DECODE_PARAM)",
	401:
		"Missing, expired or forged token (NO_TOKEN, INVALID_TOKEN), or bad credentials. A bad Authorization " +
		"header is refused on public operations too",
	402: "The payment provider declined (PAYMENT_DECLINED)",
	403: "Authenticated but not allowed (FORBIDDEN)",
	404: "Unknown route or entity, or an entity owned by someone else (NOT_FOUND)",
	409: "Conflict with the current state; `type` says which",
	413: "Body over 1 MiB, or upload over its limit (PAYLOAD_TOO_LARGE)",
	415: "Unsupported media type or charset (UNSUPPORTED_MEDIA_TYPE); JSON bodies are UTF-8",
	422: "Well-formed but invalid (VALIDATION_ERROR and others); data lists the fields",
	429: "Too many requests (RATE_LIMIT_EXCEEDED); see Retry-After",
	431: "Request headers too large (HEADERS_TOO_LARGE)",
	500: "Internal error (INTERNAL_ERROR); no details are given",
	503: "A backend node is down or overloaded (SERVICE_UNAVAILABLE); safe to retry after Retry-After",
	504: "A backend node is too slow (REQUEST_TIMEOUT)"
};

/** Error statuses whose answers carry `Retry-After`. */
const RETRY_AFTER = new Set([429, 503]);

/** Statuses any operation can answer: a malformed request line or header is refused before any routing. */
const COMMON_ERRORS = [400, 429, 431, 500, 503, 504];

/** Success answers' words when the operation names none. */
const ANSWER_BY_STATUS: Record<number, string> = {
	200: "OK",
	201: "Created",
	204: "Done; no body"
};

/** The decision API.md leaves open for the public catalog reads: how fresh an answer is. */
const CACHED_READ =
	"May be answered from the gateway's read cache. A change to the catalog or to a product's stock drops the " +
	"cached answers it affects on every gateway as soon as it is announced by event: at once for a catalog change " +
	"or an isolated stock change, within 50 ms for stock changes under load (reservations and sales are announced " +
	"together). GATEWAY_READ_CACHE_TTL seconds (default 10) bound what an announcement that raced a read can leave " +
	"stale. Responses still carry `Cache-Control: no-store`: no client or proxy may keep them.";

const DESCRIPTION = `FlashMart's HTTP API, served by the moleculer-web gateway. A typed TypeScript client generated
from this document lives in the repository's \`client/\` folder; docs/api.md is the guide.

Conventions (API.md), and decisions where it is silent:
- JSON in and out, UTF-8. Bodies over 1 MiB answer 413 whatever their Content-Type; malformed JSON, and a body
  that is not valid UTF-8, answer 400 INVALID_REQUEST_BODY; a charset other than UTF-8 answers 415. Keys named
  \`__proto__\`, \`constructor\` or \`prototype\` are dropped from bodies.
- Unknown body fields are dropped (never stored, never honoured); fields with the wrong type answer 422 with the
  field list. Unknown query parameters are ignored.
- Every response carries \`X-Request-Id\`. A client-sent \`X-Request-Id\` is echoed when it is 1-128 characters of
  \`A-Z a-z 0-9 . _ : @ = + / -\`; otherwise a UUID is generated.
- Errors: \`{ name, message, code, type, data?, requestId }\` (the \`Error\` schema), HTTP status = code; branch on
  \`type\`. 5xx answers carry no details. 429 and 503 answers carry \`Retry-After\` (seconds).
- Lists: \`?page=1&pageSize=20\` (pageSize 1..100) answer \`{ rows, total, page, pageSize, totalPages }\`.
- Responses are \`Cache-Control: no-store\` unless stated otherwise.
- Every GET operation answers HEAD too (RFC 9110): the status and headers GET would send, no body.
- Unknown paths and methods answer 404 NOT_FOUND; internal actions are never reachable over HTTP.`;

/** The document's path template of an operation: `/api/products/:id` is `/api/products/{id}`. */
export function toOpenApiPath(route: string, path: string): string {
	const full = (route === "/" ? "" : route) + path;
	return full.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
}

const errorContent = (schema: JsonSchema = ref("Error")) => ({
	"application/json": { schema }
});
const headersOf = (status: number) => ({
	"X-Request-Id": { $ref: "#/components/headers/RequestId" },
	...(RETRY_AFTER.has(status) ? { "Retry-After": { $ref: "#/components/headers/RetryAfter" } } : {})
});

/** A parameter object, with its schema's words lifted to where the docs page shows them. */
function parameter(name: string, where: "path" | "query", required: boolean, schema: JsonSchema) {
	const { description, ...rest } = schema;
	return {
		name,
		in: where,
		required,
		...(typeof description === "string" ? { description } : {}),
		schema: rest
	};
}

function operationObject(
	op: Operation,
	specs: ActionSpecs,
	authenticated: boolean,
	/** Collects the shared error answers the operation refers to. */
	shared: Set<number>
): Record<string, unknown> {
	const status = op.status ?? 200;
	const access = accessOf(op, specs);
	const bound = bindParams(op, specs);
	if (bound.body && op.requestContent) {
		throw new Error(`${op.method} ${op.path}: a JSON body and another request content`);
	}
	const params: unknown[] = [
		...bound.path.map(p => parameter(p.name, "path", true, p.schema)),
		...bound.query.map(q => parameter(q.name, "query", q.required, q.schema))
	];
	for (const [name, h] of Object.entries(op.headers ?? {})) {
		params.push({
			name,
			in: "header",
			required: !!h.required,
			description: h.description,
			schema: h.schema
		});
	}
	params.push({ $ref: "#/components/parameters/RequestId" });

	const responses: Record<string, unknown> = {
		[String(status)]: {
			description: op.answer ?? ANSWER_BY_STATUS[status],
			headers: headersOf(status),
			...(status === 204
				? {}
				: {
						content: {
							[op.contentType ?? "application/json"]: { schema: op.response ?? {} }
						}
					})
		}
	};
	const errors = new Set<number>([...Object.keys(op.errors ?? {}).map(Number), ...COMMON_ERRORS]);
	if (bound.body) [400, 413, 415, 422].forEach(s => errors.add(s));
	// Path and query parameters are validated by the action as the body is.
	if (bound.path.length > 0 || bound.query.length > 0) errors.add(422);
	// Routes that authenticate refuse a bad token whatever the operation's access level.
	if (access !== "public" || authenticated) errors.add(401);
	if (access === "admin") errors.add(403);
	// Error types the action declares are named under their status, with when they happen.
	const declared = specOf(op, specs)?.errors ?? [];
	for (const e of declared) errors.add(e.status);
	for (const s of [...errors].sort()) {
		const mine = declared.filter(e => e.status === s);
		const note = [op.errors?.[s], ...mine.map(e => `${e.type}: ${e.description}`)]
			.filter(Boolean)
			.join(". ");
		const body = op.errorBodies?.[s];
		// The shared answer unless this operation says more about the status, or answers another shape with it.
		if (note || body) {
			responses[String(s)] = {
				description: note || STATUS_TEXT[s],
				headers: headersOf(s),
				content: errorContent(body)
			};
		} else {
			responses[String(s)] = { $ref: `#/components/responses/E${s}` };
			shared.add(s);
		}
	}

	return {
		tags: [op.tag],
		summary: op.summary,
		description: op.cached ? `${op.description}\n\n${CACHED_READ}` : op.description,
		...(op.cached ? { "x-gateway-cache": true } : {}),
		operationId: op.handler ? `gateway.${op.handler}` : op.action,
		...(access === "public" ? { security: [] } : { security: [{ bearerAuth: [] }] }),
		...(access === "admin" ? { "x-required-role": "admin" } : {}),
		parameters: params,
		...(bound.body
			? {
					requestBody: {
						// Required when the action requires one of its fields; an all-optional body may be left out.
						required: Array.isArray(bound.body.required),
						content: { "application/json": { schema: bound.body } }
					}
				}
			: {}),
		...(op.requestContent
			? {
					requestBody: {
						required: true,
						content: Object.fromEntries(
							Object.entries(op.requestContent).map(([type, schema]) => [type, { schema }])
						)
					}
				}
			: {}),
		responses
	};
}

/**
 * OpenAPI 3.1 allows one path template per path: `/products/{id}` and `/products/{idOrSlug}` are the same one,
 * and a client could not tell which a request means. Refuses the table when two of its templates coincide but
 * for their parameters' names, or when a method is bound twice to one template.
 */
export function checkTemplates(ops: Array<{ method: string; template: string }>): void {
	const byShape = new Map<string, string>();
	const bound = new Set<string>();
	for (const { method, template } of ops) {
		const shape = template.replace(/\{[^}]+\}/g, "{}");
		const seen = byShape.get(shape);
		if (seen !== undefined && seen !== template) {
			throw new Error(`path templates ${seen} and ${template} differ only by parameter names`);
		}
		byShape.set(shape, template);
		if (bound.has(`${method} ${template}`)) throw new Error(`${method} ${template} is bound twice`);
		bound.add(`${method} ${template}`);
	}
}

export function buildOpenApi(
	version: string,
	specs: ActionSpecs = loadActionSpecs()
): Record<string, unknown> {
	const tables: Array<[string, Operation[], boolean]> = [
		[OPS_ROUTE, OPS_OPERATIONS, false],
		[API_ROUTE, API_OPERATIONS, true]
	];
	const all = tables.flatMap(([route, ops]) =>
		ops.map(op => ({ method: op.method, template: toOpenApiPath(route, op.path) }))
	);
	checkTemplates(all);

	const paths: Record<string, Record<string, unknown>> = {};
	const shared = new Set<number>();
	for (const [route, ops, authenticated] of tables) {
		for (const op of ops) {
			if (op.handler === "docsAsset") continue;
			const p = toOpenApiPath(route, op.path);
			paths[p] = paths[p] ?? {};
			paths[p][op.method.toLowerCase()] = operationObject(op, specs, authenticated, shared);
		}
	}

	const responses: Record<string, unknown> = {};
	for (const status of [...shared].sort()) {
		responses[`E${status}`] = {
			description: STATUS_TEXT[status],
			headers: headersOf(status),
			content: errorContent()
		};
	}

	return {
		openapi: "3.1.0",
		info: {
			title: "FlashMart API",
			version,
			description: DESCRIPTION,
			license: { name: "MIT", identifier: "MIT" }
		},
		servers: [{ url: "/", description: "The gateway that serves this document" }],
		tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
		paths,
		components: {
			schemas: SCHEMAS,
			responses,
			parameters: {
				RequestId: {
					name: "X-Request-Id",
					in: "header",
					required: false,
					description: "Echoed back when sane; generated otherwise.",
					schema: { type: "string", maxLength: 128 }
				}
			},
			headers: {
				RequestId: {
					description: "The request id, echoed or generated",
					schema: { type: "string" }
				},
				RetryAfter: {
					description: "Seconds to wait before retrying",
					schema: { type: "integer", minimum: 0 }
				}
			},
			securitySchemes: {
				bearerAuth: { type: "http", scheme: "bearer", bearerFormat: "JWT (RS256, at most 15 min)" }
			}
		}
	};
}

if (require.main === module) {
	// npm runs scripts at the package root, whose package.json gives the version the gateway states too.
	const { version } = JSON.parse(fs.readFileSync("package.json", "utf8")) as { version: string };
	const json = JSON.stringify(buildOpenApi(version), null, "\t") + "\n";
	const file = process.argv[2];
	if (file) fs.writeFileSync(file, json);
	else process.stdout.write(json);
}
