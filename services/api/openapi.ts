/**
 * Builds the OpenAPI 3.1 document of the whole HTTP API from the operation table in contract.ts, with each
 * operation's parameters and access level derived from its action (action-specs.ts).
 * Decisions API.md leaves open are written down here, in the document clients read.
 */
import { type ActionSpecs, accessOf, bindParams, loadActionSpecs, specOf } from "./action-specs";
import {
	API_OPERATIONS,
	API_ROUTE,
	type JsonSchema,
	OPS_OPERATIONS,
	OPS_ROUTE,
	type Operation
} from "./contract";

const ERROR_SCHEMA: JsonSchema = {
	type: "object",
	required: ["name", "message", "code", "type", "requestId"],
	properties: {
		name: { type: "string", examples: ["ValidationError"] },
		message: { type: "string" },
		code: { type: "integer", description: "Equals the HTTP status." },
		type: { type: "string", examples: ["VALIDATION_ERROR"] },
		data: { description: "Details: for VALIDATION_ERROR a list of { field, type, message }." },
		requestId: { type: "string" }
	}
};

const STATUS_TEXT: Record<number, string> = {
	400: "Malformed request: body (INVALID_REQUEST_BODY), header, or percent-encoding of the path (UNABLE_DECODE_PARAM)",
	401:
		"Missing, expired or forged token (NO_TOKEN, INVALID_TOKEN), or bad credentials. A bad Authorization " +
		"header is refused on public operations too",
	402: "The payment provider declined (PAYMENT_DECLINED)",
	403: "Authenticated but not allowed (FORBIDDEN)",
	404: "Unknown route or entity, or an entity owned by someone else (NOT_FOUND)",
	409: "Conflict",
	413: "Body over 1 MiB, or upload over its limit (PAYLOAD_TOO_LARGE)",
	415: "Unsupported media type or charset (UNSUPPORTED_MEDIA_TYPE); JSON bodies are UTF-8",
	422: "Well-formed but invalid (VALIDATION_ERROR and others); data lists the fields",
	429: "Too many requests (RATE_LIMIT_EXCEEDED); see Retry-After",
	431: "Request headers too large (HEADERS_TOO_LARGE)",
	500: "Internal error (INTERNAL_ERROR); no details are given",
	503: "A backend node is down or overloaded (SERVICE_UNAVAILABLE); safe to retry after Retry-After",
	504: "A backend node is too slow (REQUEST_TIMEOUT)"
};

/** Statuses any operation can answer: a malformed request line or header is refused before any routing. */
const COMMON_ERRORS = [400, 429, 431, 500, 503, 504];

/** The decision API.md leaves open for the public catalog reads: how fresh an answer is. */
const CACHED_READ =
	"May be answered from the gateway's read cache. A change to the catalog or to a product's stock drops the " +
	"cached answers it affects on every gateway as soon as it is announced by event: at once for a catalog change " +
	"or an isolated stock change, within 50 ms for stock changes under load (reservations and sales are announced " +
	"together). GATEWAY_READ_CACHE_TTL seconds (default 10) bound what an announcement that raced a read can leave " +
	"stale. Responses still carry `Cache-Control: no-store`: no client or proxy may keep them.";

const DESCRIPTION = `FlashMart's HTTP API, served by the moleculer-web gateway.

Conventions (API.md), and decisions where it is silent:
- JSON in and out, UTF-8. Bodies over 1 MiB answer 413 whatever their Content-Type; malformed JSON answers 400
  INVALID_REQUEST_BODY. Keys named \`__proto__\`, \`constructor\` or \`prototype\` are dropped from bodies.
- Unknown body fields are dropped (never stored, never honoured); fields with the wrong type answer 422 with the
  field list. Unknown query parameters are ignored.
- Every response carries \`X-Request-Id\`. A client-sent \`X-Request-Id\` is echoed when it is 1-128 characters of
  \`A-Z a-z 0-9 . _ : @ = + / -\`; otherwise a UUID is generated.
- Errors: \`{ name, message, code, type, data?, requestId }\`, HTTP status = code. 5xx answers carry no details.
  503 answers carry \`Retry-After\` (seconds).
- Lists: \`?page=1&pageSize=20\` (pageSize 1..100) answer \`{ rows, total, page, pageSize, totalPages }\`.
- Responses are \`Cache-Control: no-store\` unless stated otherwise.
- Unknown paths and methods answer 404 NOT_FOUND; internal actions are never reachable over HTTP.`;

function toOpenApiPath(route: string, path: string): string {
	const full = (route === "/" ? "" : route) + path;
	return full.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
}

function operationObject(
	op: Operation,
	specs: ActionSpecs,
	authenticated: boolean
): Record<string, unknown> {
	const status = op.status ?? 200;
	const access = accessOf(op, specs);
	const bound = bindParams(op, specs);
	if (bound.body && op.requestContent) {
		throw new Error(`${op.method} ${op.path}: a JSON body and another request content`);
	}
	const params: unknown[] = [];
	for (const p of bound.path) {
		params.push({ name: p.name, in: "path", required: true, schema: p.schema });
	}
	for (const q of bound.query) {
		params.push({ name: q.name, in: "query", required: q.required, schema: q.schema });
	}
	for (const [name, h] of Object.entries(op.headers ?? {})) {
		params.push({
			name,
			in: "header",
			required: !!h.required,
			description: h.description,
			schema: h.schema
		});
	}
	params.push({
		name: "X-Request-Id",
		in: "header",
		required: false,
		description: "Echoed back when sane; generated otherwise.",
		schema: { type: "string", maxLength: 128 }
	});

	const responses: Record<string, unknown> = {
		[String(status)]: {
			description: op.summary,
			headers: { "X-Request-Id": { $ref: "#/components/headers/RequestId" } },
			...(status === 204
				? {}
				: {
						content: {
							[op.contentType ?? "application/json"]: { schema: op.response ?? {} }
						}
					})
		}
	};
	const errors = new Set<number>([...(op.errors ?? []), ...COMMON_ERRORS]);
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
		responses[String(s)] =
			mine.length === 0
				? { $ref: `#/components/responses/E${s}` }
				: {
						description: [STATUS_TEXT[s], ...mine.map(e => `${e.type}: ${e.description}`)].join(
							". "
						),
						headers: { "X-Request-Id": { $ref: "#/components/headers/RequestId" } },
						content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } }
					};
	}

	return {
		tags: [op.tag],
		summary: op.summary,
		...(op.cached ? { description: CACHED_READ, "x-gateway-cache": true } : {}),
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

export function buildOpenApi(
	version: string,
	specs: ActionSpecs = loadActionSpecs()
): Record<string, unknown> {
	const paths: Record<string, Record<string, unknown>> = {};
	const add = (route: string, ops: Operation[], authenticated: boolean) => {
		for (const op of ops) {
			if (op.handler === "docsAsset") continue;
			const p = toOpenApiPath(route, op.path);
			paths[p] = paths[p] ?? {};
			paths[p][op.method.toLowerCase()] = operationObject(op, specs, authenticated);
		}
	};
	add(OPS_ROUTE, OPS_OPERATIONS, false);
	add(API_ROUTE, API_OPERATIONS, true);

	const responses: Record<string, unknown> = {};
	for (const [status, text] of Object.entries(STATUS_TEXT)) {
		responses[`E${status}`] = {
			description: text,
			headers: { "X-Request-Id": { $ref: "#/components/headers/RequestId" } },
			content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } }
		};
	}

	return {
		openapi: "3.1.0",
		info: { title: "FlashMart API", version, description: DESCRIPTION },
		servers: [{ url: "/" }],
		tags: [...new Set([...OPS_OPERATIONS, ...API_OPERATIONS].map(o => o.tag))].map(name => ({
			name
		})),
		paths,
		components: {
			schemas: { Error: ERROR_SCHEMA },
			responses,
			headers: {
				RequestId: {
					description: "The request id, echoed or generated",
					schema: { type: "string" }
				}
			},
			securitySchemes: {
				bearerAuth: { type: "http", scheme: "bearer", bearerFormat: "JWT (RS256, at most 15 min)" }
			}
		}
	};
}
