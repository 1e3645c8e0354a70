/**
 * The moleculer-web gateway: the only door into FlashMart. It owns nothing persistent. It routes exactly the
 * operations of contract.ts (everything else is 404), gives every request an id that follows it across
 * nodes, enforces body limits, answers in the contract's error shape, and serves the operational endpoints.
 */
import { isUtf8 } from "node:buffer";
import fs from "node:fs";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import net from "node:net";
import type { Duplex } from "node:stream";
import path from "node:path";
import type {
	Context,
	Service,
	ServiceSchema,
	ServiceSettingSchema,
	ServiceBroker
} from "moleculer";
import ApiGateway from "moleculer-web";
import { type AppConfig, configOf } from "../../config";
import { clientIp, trustProxies } from "./client-ip";
import {
	ForbiddenError,
	NotFoundError,
	ServiceUnavailableError,
	UnauthorizedError,
	UnsupportedMediaTypeError,
	toHttpError
} from "../../lib/errors";
import {
	type HttpMetrics,
	NO_HTTP_METRICS,
	createHttpMetrics,
	documentedRoutes
} from "./http-metrics";
import {
	type Access,
	API_OPERATIONS,
	API_ROUTE,
	OPS_OPERATIONS,
	OPS_ROUTE,
	type Operation
} from "./contract";
import { type ActionSpecs, accessOf, loadActionSpecs } from "./action-specs";
import { buildOpenApi } from "./openapi";
import { traceHttpRequest } from "./trace-context";
import { acceptRequestId, bindToScope } from "../../lib/request-context";
import { type KeyPair, verifyAccessToken } from "../../lib/tokens";
import { loadKeys } from "../../adapters/keys";
import { METRIC } from "../../lib/metric-names";
import { natsDisconnected } from "../../adapters/patches/nats-connection-state.patch";
import { ReadCacheMixin } from "./read-cache.mixin";
import { UPLOAD_TIMEOUT_MS, UploadMixin, discardRest } from "./upload.mixin";
import type { AppMeta, AuthUser } from "../../types/meta";

/** API.md: bodies over 1 MiB are refused with 413. */
const JSON_BODY_LIMIT = 1024 * 1024;
const PKG_VERSION: string = (
	JSON.parse(fs.readFileSync(path.join(__dirname, findUp("package.json")), "utf8")) as {
		version: string;
	}
).version;

/** Walks up from this file to the nearest package.json (works from the source tree and from dist/). */
function findUp(file: string): string {
	let rel = file;
	for (let i = 0; i < 4; i++) {
		if (fs.existsSync(path.join(__dirname, rel))) return rel;
		rel = path.join("..", rel);
	}
	throw new Error(`${file} not found above ${__dirname}`);
}

export interface GatewayRequest extends IncomingMessage {
	$ctx?: Context;
	$requestId?: string;
	$startTime?: [number, number];
	body?: unknown;
	query?: Record<string, unknown>;
	$params?: Record<string, unknown>;
	/** The moleculer-web alias the request matched, if any; `metricRoute` is set by `aliasesOf`. */
	$alias?: { metricRoute?: string; fullPath?: string };
	/** The action the alias calls (moleculer-web sets it once the alias matched). */
	$action?: { name?: string };
	originalUrl?: string;
	/** A HEAD request, routed as GET (httpHandler): what its trace span names. */
	$head?: boolean;
}

type Next = (err?: unknown) => void;

type ApiSettings = ServiceSettingSchema & Record<string, unknown>;

interface ApiVars {
	/** moleculer-web's HTTP server. */
	server: Server;
	keys: KeyPair;
	draining: boolean;
	/** Answers still being written, for a stop to finish (or close) them. */
	inFlight: Set<ServerResponse>;
	openApiDoc: string;
	httpMetrics: HttpMetrics;
}

interface ApiMethods {
	httpHandler(req: GatewayRequest, res: ServerResponse, next?: Next): Promise<void>;
	errorHandler(req: GatewayRequest, res: ServerResponse, err: unknown): void;
	recordHttp(req: GatewayRequest, res: ServerResponse, started: number): void;
	answerOptions(req: GatewayRequest, res: ServerResponse): void;
	sendJson(res: ServerResponse, status: number, body: unknown): void;
	sendContractError(req: GatewayRequest, res: ServerResponse, err: unknown): void;
	readiness(): Promise<string[]>;
	backendStatus(): Promise<Record<string, "up" | "down">>;
	stopAccepting(): void;
	drain(timeoutMs: number): Promise<number>;
	authenticate(
		ctx: Context<unknown, AppMeta>,
		route: unknown,
		req: GatewayRequest
	): AuthUser | null;
	authorize(
		ctx: Context<unknown, AppMeta>,
		route: unknown,
		req: GatewayRequest,
		res: ServerResponse,
		alias: { access?: Access }
	): void;
}

type ApiThis = Service<ApiSettings> & ApiVars & ApiMethods;

const SECURITY_HEADERS: Record<string, string> = {
	"X-Content-Type-Options": "nosniff",
	"X-Frame-Options": "DENY",
	"Referrer-Policy": "no-referrer",
	"Cross-Origin-Opener-Policy": "same-origin",
	"Strict-Transport-Security": "max-age=31536000; includeSubDomains",
	"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
	"Cache-Control": "no-store"
};

/** The docs page loads Swagger UI from this gateway only: no inline script, no third-party origin. */
const DOCS_CSP =
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";
const SWAGGER_DIR = path.dirname(require.resolve("swagger-ui-dist/package.json"));
const DOCS_ASSETS: Record<string, { file: string; type: string } | { body: string; type: string }> =
	{
		"swagger-ui.css": {
			file: path.join(SWAGGER_DIR, "swagger-ui.css"),
			type: "text/css; charset=utf-8"
		},
		"swagger-ui-bundle.js": {
			file: path.join(SWAGGER_DIR, "swagger-ui-bundle.js"),
			type: "application/javascript; charset=utf-8"
		},
		"init.js": {
			body: 'window.ui = SwaggerUIBundle({ url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true });',
			type: "application/javascript; charset=utf-8"
		}
	};
const DOCS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>FlashMart API</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script><script src="/api/docs/init.js"></script></body></html>`;

/** Methods whose operations take a JSON body: a body of another type sent with them is refused (415). */
const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);

/**
 * The JSON parser's `verify`: JSON text is UTF-8 (API.md; RFC 8259 8.1), where body-parser decodes other charsets,
 * and broken bytes into U+FFFD, and lets them in. Bytes that are not UTF-8 are 400 (malformed, as broken JSON is);
 * another charset sent to an operation that takes a body is 415, as another content type is.
 */
function refuseNonUtf8(req: IncomingMessage, _res: unknown, body: Buffer, encoding: string): void {
	if (encoding !== "utf-8" && BODY_METHODS.has(req.method ?? "")) {
		throw Object.assign(new Error(encoding), { type: "charset.unsupported" });
	}
	if (!isUtf8(body)) throw Object.assign(new Error("not UTF-8"), { type: "entity.utf8.invalid" });
}

/**
 * A route middleware that runs after the JSON body parser: refuses an oversized body whatever its Content-Type
 * (the JSON parser only looks at JSON), refuses a body the JSON parser left unread (no or another Content-Type)
 * sent to an operation with 415 rather than running it without its fields, and drops prototype-polluting keys
 * before moleculer-web merges the body into the action's params.
 */
function bodyGuard(
	this: { resolveAlias(url: string, method: string): unknown },
	req: GatewayRequest & { parsedUrl?: string },
	res: ServerResponse,
	next: Next
) {
	const tooLarge = () => {
		// Read and drop the rest (bounded), as an upload does, on a connection kept open: with `Connection: close`
		// Node destroyed the socket once the 413 was sent, and a client still sending saw a broken pipe, not the 413.
		discardRest(req);
		next(
			Object.assign(new Error("too large"), { type: "entity.too.large", status: 413, expose: true })
		);
	};
	const length = Number(req.headers["content-length"] ?? 0);
	if (length > JSON_BODY_LIMIT) return tooLarge();
	if (req.body !== null && typeof req.body === "object") req.body = stripDangerousKeys(req.body);
	// A body the JSON parser left unread (another content type, any framing) is counted as it arrives, then dropped.
	if ((req as { _body?: boolean })._body || req.readableEnded) return next();
	let seen = 0;
	const onData = (chunk: Buffer) => {
		seen += chunk.length;
		if (seen > JSON_BODY_LIMIT) {
			req.off("data", onData).off("end", onEnd);
			tooLarge();
		}
	};
	const onEnd = () => {
		// An unknown path stays 404 whatever it was sent.
		const operation =
			BODY_METHODS.has(req.method ?? "") &&
			this.resolveAlias(req.parsedUrl ?? "", req.method ?? "");
		if (seen === 0 || !operation) return next();
		next(
			new UnsupportedMediaTypeError("Send the body as JSON, with Content-Type: application/json")
		);
	};
	req.on("data", onData).once("end", onEnd);
}

const DANGEROUS_KEYS = new Set(["__proto__", "constructor", "prototype"]);

function stripDangerousKeys(value: unknown, depth = 0): unknown {
	if (value === null || typeof value !== "object" || depth > 32) return value;
	if (Array.isArray(value)) return value.map(v => stripDangerousKeys(v, depth + 1));
	const clean: Record<string, unknown> = {};
	for (const [k, v] of Object.entries(value)) {
		if (!DANGEROUS_KEYS.has(k)) clean[k] = stripDangerousKeys(v, depth + 1);
	}
	return clean;
}

/** Uploads stream their body at the client's pace: their deadline is the upload's, every other request's REQUEST_TIMEOUT. */
const UPLOAD_PATHS = API_OPERATIONS.filter(op => op.handler === "upload").map(op => ({
	method: op.method,
	path: new RegExp(`^${API_ROUTE}${op.path.replace(/:[^/]+/g, "[^/?#]+")}/?(?:[?#]|$)`)
}));
const isUpload = (req: IncomingMessage) =>
	UPLOAD_PATHS.some(u => u.method === req.method && u.path.test(req.url ?? ""));

/**
 * Turns the operation table into moleculer-web aliases: gateway handlers (`handle_<name>` methods) as functions,
 * actions by name. Each alias carries its operation's access level (its action's permissions) for `authorize` and
 * its path template (route path included) for the `route` label of the HTTP metrics.
 */
function aliasesOf(
	routePath: string,
	ops: Operation[],
	specs: ActionSpecs
): Record<string, unknown> {
	const aliases: Record<string, unknown> = {};
	const prefix = routePath === "/" ? "" : routePath;
	for (const op of ops) {
		const key = `${op.method} ${op.path}`;
		const metricRoute = prefix + op.path;
		const access = accessOf(op, specs);
		if (op.handler) {
			const name = `handle_${op.handler}`;
			aliases[key] = {
				access,
				metricRoute,
				handler(this: Record<string, unknown>, req: GatewayRequest, res: ServerResponse) {
					const handle = this[name] as (req: GatewayRequest, res: ServerResponse) => unknown;
					return handle.call(this, req, res);
				}
			};
		} else if (op.action) {
			aliases[key] = {
				action: op.action,
				access,
				metricRoute,
				cached: op.cached,
				pathParams: op.pathParams
			};
		}
	}
	return aliases;
}

/** The parts of moleculer-web's gateway this service calls into. */
interface GatewayInternals {
	httpHandler(req: GatewayRequest, res: ServerResponse, next?: Next): Promise<void>;
	sendError(req: GatewayRequest, res: ServerResponse, err: unknown): void;
	send404(req: GatewayRequest, res: ServerResponse): void;
	checkOrigin(origin: string, allowed: unknown): boolean;
	writeCorsHeaders(
		settings: unknown,
		req: GatewayRequest,
		res: ServerResponse,
		preflight: boolean
	): void;
}
const gatewayHttpHandler = (ApiGateway as unknown as { methods: GatewayInternals }).methods
	.httpHandler;

/**
 * A request Node's HTTP parser refuses never reaches moleculer-web: it is answered here in the contract's shape,
 * with a request id and the security headers (431 for oversized headers, 400 for the rest), and the socket closed.
 */
function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
	if (err.code === "ECONNRESET" || !socket.writable) {
		socket.destroy();
		return;
	}
	const status = err.code === "HPE_HEADER_OVERFLOW" ? 431 : 400;
	const requestId = acceptRequestId(undefined);
	const body = JSON.stringify({
		name: "MoleculerClientError",
		message: status === 431 ? "Request headers too large" : "Malformed HTTP request",
		code: status,
		type: status === 431 ? "HEADERS_TOO_LARGE" : "BAD_REQUEST",
		requestId
	});
	const headers = {
		...SECURITY_HEADERS,
		"Content-Type": "application/json; charset=utf-8",
		"Content-Length": String(Buffer.byteLength(body)),
		"X-Request-Id": requestId,
		Connection: "close"
	};
	const reason = status === 431 ? "Request Header Fields Too Large" : "Bad Request";
	const head = Object.entries(headers)
		.map(([k, v]) => `${k}: ${v}\r\n`)
		.join("");
	socket.end(`HTTP/1.1 ${status} ${reason}\r\n${head}\r\n${body}`);
}

/** How many connections the server still has (accepted, not yet closed). */
function openConnections(server: Server | undefined): Promise<number> {
	return new Promise(resolve => {
		if (!server) return resolve(0);
		server.getConnections((err, count) => resolve(err ? 0 : count));
	});
}

/** What a warning says about an expected 5xx: the error's name, type and message, no stack. */
function causeOf(err: unknown): Record<string, unknown> | undefined {
	if (err === null || typeof err !== "object") return undefined;
	const e = err as { name?: unknown; type?: unknown; message?: unknown };
	return { name: e.name, type: e.type, message: e.message };
}

/** Hands the backend what it may need of the HTTP request: the idempotency key and the believed client address. */
function requestMetaPasser(trustedProxies: string[]) {
	const trust = trustProxies(trustedProxies);
	return function passRequestMeta(
		ctx: Context<unknown, AppMeta>,
		_route: unknown,
		req: GatewayRequest,
		_res: unknown,
		alias: { pathParams?: Record<string, string> }
	) {
		// A path parameter the action takes under another name (`/products/:id` → products.get's `idOrSlug`).
		const params = req.$params ?? {};
		for (const [from, to] of Object.entries(alias.pathParams ?? {})) {
			params[to] = params[from];
			delete params[from];
		}
		const key = req.headers["idempotency-key"];
		if (typeof key === "string") ctx.meta.idempotencyKey = key;
		ctx.meta.clientIp = clientIp(req.socket.remoteAddress, req.headers["x-forwarded-for"], trust);
	};
}

export function createApiService(cfg: AppConfig): ServiceSchema<ApiSettings, ApiMethods, ApiVars> {
	const passRequestMeta = requestMetaPasser(cfg.gateway.trustedProxies);
	const specs = loadActionSpecs();
	return {
		name: "api",
		mixins: [
			// Public catalog reads from memory until the catalog or a stock level changes (announced by broadcast).
			ReadCacheMixin({
				ttlSeconds: cfg.gateway.readCacheTtl,
				cleanAll: ["products.cache.clean"],
				cleanEntities: { "inventory.changed": ["productIds", "saleIds"] }
			}),
			ApiGateway as unknown as ServiceSchema,
			UploadMixin()
		],

		actions: {
			// moleculer-web's entry point, one call per HTTP request: the HTTP metrics count and time those, so Moleculer's
			// per-call request metrics leave it out (middlewares/action-metrics.middleware.ts).
			rest: { metrics: false } as never
		},

		settings: {
			port: cfg.gateway.port,
			ip: cfg.gateway.host,
			// Node's own limit for receiving a whole request (slow clients); action deadlines are the broker's.
			requestTimeout: 60_000,
			logRequest: "debug",
			logResponse: "debug",
			log4XXResponses: false,
			logRouteRegistration: "debug",
			optimizeOrder: true,
			qsOptions: { depth: 2, parameterLimit: 50, arrayLimit: 20, allowPrototypes: false },

			/**
			 * Runs first for every HTTP request, before moleculer-web creates the request's context: the place to settle
			 * the request id (a sane client token or a new one) and to set the headers every answer carries, 404s included.
			 */
			rootCallOptions(
				this: ApiThis,
				options: { requestID?: string; timeout?: number; headers?: Record<string, unknown> },
				req: GatewayRequest,
				res: ServerResponse
			) {
				const requestId = acceptRequestId(req.headers["x-request-id"]);
				options.requestID = requestId;
				// One deadline from the moment the request is read: moleculer-web's own action has none, so without this
				// each call took its action's timeout. Every call made for the request gets what is left of it.
				options.timeout = isUpload(req) ? UPLOAD_TIMEOUT_MS : cfg.requestTimeout;
				req.$requestId = requestId;
				// moleculer-web would prefer X-Correlation-Id over the sanitised id.
				delete req.headers["x-correlation-id"];
				res.setHeader("X-Request-Id", requestId);
				for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
				traceHttpRequest(this.broker, req, res, options);
			},

			cors:
				cfg.gateway.corsOrigins.length > 0
					? {
							origin: cfg.gateway.corsOrigins,
							methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
							allowedHeaders: ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"],
							exposedHeaders: ["X-Request-Id", "Idempotent-Replayed", "Retry-After", "Location"],
							credentials: false,
							maxAge: 600
						}
					: undefined,

			routes: [
				{
					name: "ops",
					path: OPS_ROUTE,
					mappingPolicy: "restrict",
					bodyParsers: false,
					logging: false,
					aliases: aliasesOf(OPS_ROUTE, OPS_OPERATIONS, specs)
				},
				{
					name: "api",
					path: API_ROUTE,
					// Only the aliases below are reachable: no `/api/<service>.<action>`, no `$node.*`.
					mappingPolicy: "restrict",
					autoAliases: false,
					bodyParsers: { json: { limit: JSON_BODY_LIMIT, strict: true, verify: refuseNonUtf8 } },
					use: [bodyGuard],
					authentication: true,
					authorization: true,
					aliases: aliasesOf(
						API_ROUTE,
						API_OPERATIONS.filter(op => op.handler !== "upload"),
						specs
					),
					onBeforeCall: passRequestMeta
				},
				{
					// Image uploads stream their body (up to 5 MiB) to the media service: no JSON parser, no 1 MiB guard.
					// After the `api` route, which stays the fallback that answers unknown /api paths.
					name: "uploads",
					path: API_ROUTE,
					mappingPolicy: "restrict",
					autoAliases: false,
					bodyParsers: false,
					authentication: true,
					authorization: true,
					aliases: aliasesOf(
						API_ROUTE,
						API_OPERATIONS.filter(op => op.handler === "upload"),
						specs
					),
					onBeforeCall: passRequestMeta
				}
			],

			onError(this: ApiThis, req: GatewayRequest, res: ServerResponse, err: unknown) {
				this.sendContractError(req, res, err);
			}
		},

		methods: {
			/**
			 * moleculer-web's entry point for every HTTP request, wrapped to count it and time it once it is answered.
			 * Almost every answer is complete when the handler settles; a streamed one is recorded when it closes.
			 */
			async httpHandler(this: ApiThis, req: GatewayRequest, res: ServerResponse, next?: Next) {
				const started = performance.now();
				// HEAD is GET without the body (RFC 9110 9.3.2): routed as the GET operation. Node made this response
				// bodiless when it read the method, so the answer keeps GET's status and headers and sends nothing more.
				const head = req.method === "HEAD";
				if (head) {
					req.method = "GET";
					req.$head = true;
				}
				this.inFlight.add(res);
				res.once("close", () => this.inFlight.delete(res));
				if (this.draining) res.setHeader("Connection", "close");
				if (req.method === "OPTIONS") this.answerOptions(req, res);
				else if (this.draining && (req.url ?? "").startsWith(`${API_ROUTE}/`)) {
					// Read after the stop began (it was on its way on a kept-alive connection): answered, not run.
					(this.settings as { rootCallOptions: Function }).rootCallOptions.call(this, {}, req, res);
					this.sendContractError(
						req,
						res,
						new ServiceUnavailableError("This gateway is shutting down, please retry")
					);
				} else await gatewayHttpHandler.call(this, req, res, next);
				if (head) req.method = "HEAD";
				if (res.writableEnded) this.recordHttp(req, res, started);
				else res.once("close", () => this.recordHttp(req, res, started));
			},

			/**
			 * OPTIONS never runs an action: moleculer-web would route it as the method Access-Control-Request-Method
			 * names, or as GET. A preflight from an allowed origin for an allowed method is answered from the CORS
			 * settings (204); any other OPTIONS is what an unknown method is, 404 NOT_FOUND.
			 */
			answerOptions(this: ApiThis, req: GatewayRequest, res: ServerResponse) {
				const gateway = this as unknown as GatewayInternals;
				const settings = this.settings as unknown as {
					rootCallOptions(options: object, req: GatewayRequest, res: ServerResponse): void;
					cors?: { origin: string[]; methods: string[] };
				};
				settings.rootCallOptions.call(this, {}, req, res);
				const origin = req.headers.origin;
				const wanted = req.headers["access-control-request-method"];
				const cors = settings.cors;
				if (
					cors &&
					typeof origin === "string" &&
					typeof wanted === "string" &&
					cors.methods.includes(wanted.toUpperCase()) &&
					gateway.checkOrigin(origin, cors.origin)
				) {
					gateway.writeCorsHeaders(settings, req, res, true);
					res.writeHead(204, { "Content-Length": "0" });
					res.end();
					return;
				}
				gateway.send404(req, res);
			},

			/** Counts and times one answered request under its operation's template (routes added later: their alias path). */
			recordHttp(this: ApiThis, req: GatewayRequest, res: ServerResponse, started: number) {
				const alias = req.$alias;
				const route = alias ? (alias.metricRoute ?? alias.fullPath) : undefined;
				this.httpMetrics.record(req.method ?? "", route, res.statusCode, started);
			},

			/**
			 * Replaces moleculer-web's error handler, which logs every non-4xx error at error level with its stack, before
			 * `sendContractError` logs it once more: that one line per error, at the right level, is enough.
			 */
			errorHandler(this: ApiThis, req: GatewayRequest, res: ServerResponse, err: unknown) {
				(this as unknown as GatewayInternals).sendError(req, res, err);
			},

			sendJson(this: ApiThis, res: ServerResponse, status: number, body: unknown) {
				if (res.headersSent) return;
				const payload = JSON.stringify(body);
				res.writeHead(status, {
					"Content-Type": "application/json; charset=utf-8",
					"Content-Length": Buffer.byteLength(payload)
				});
				res.end(payload);
			},

			/** Every error answer goes through here: the contract's shape, the request id, no internals. */
			sendContractError(this: ApiThis, req: GatewayRequest, res: ServerResponse, err: unknown) {
				// Answered already: the request's deadline (504), or a stop (503), came before the action's own error.
				if (res.headersSent) return;
				const httpError = toHttpError(err);
				const requestId = req.$requestId ?? req.$ctx?.requestID ?? acceptRequestId(undefined);
				// A checkout an orders node's bulkhead refused: admission working as meant, counted as such.
				if (
					(err as { type?: unknown }).type === "QUEUE_FULL" &&
					req.$action?.name === "orders.create"
				) {
					this.broker.metrics.increment(METRIC.CHECKOUT_REJECTIONS, { reason: "overloaded" });
				}
				const retryAfter = (httpError.data as { retryAfter?: unknown } | undefined)?.retryAfter;
				if (httpError.code === 429 && typeof retryAfter === "number") {
					res.setHeader("Retry-After", String(retryAfter));
				}
				if (httpError.code >= 500) {
					const what = `${req.method} ${req.originalUrl ?? req.url} answered ${httpError.code} ${httpError.type}`;
					// 503 and 504 are expected answers (a node down, a deadline passed): a warning without a stack.
					// Anything else is a defect somewhere and keeps its stack.
					if (httpError.code === 500) this.logger.error(what, { requestId }, err);
					else this.logger.warn(what, { requestId, cause: causeOf(err) });
					res.setHeader("Retry-After", "1");
				}
				this.sendJson(res, httpError.code, { ...httpError, requestId });
			},

			/** What is missing before this cluster can serve: the transporter, or required services and their stores. */
			async readiness(this: ApiThis): Promise<string[]> {
				// A stopping gateway says so at once: a load balancer's probe must not wait on backend checks.
				if (this.draining) return ["api"];
				const missing: string[] = [];
				const transit = (
					this.broker as unknown as { transit?: { connected: boolean; tx?: unknown } }
				).transit;
				if (transit && (!transit.connected || natsDisconnected(transit.tx)))
					missing.push("transporter");
				const status = await this.backendStatus();
				for (const [name, state] of Object.entries(status))
					if (state === "down") missing.push(name);
				return missing;
			},

			/** Each required backend service: registered and answering its store health check. */
			async backendStatus(this: ApiThis): Promise<Record<string, "up" | "down">> {
				const registry = (
					this.broker as unknown as {
						registry: {
							hasService(name: string): boolean;
							actions: { isAvailable(name: string): boolean };
						};
					}
				).registry;
				const required = cfg.requiredServices.filter(s => s !== "api");
				const entries = await Promise.all(
					required.map(async name => {
						if (!registry.hasService(name)) return [name, "down"] as const;
						if (!registry.actions.isAvailable(`${name}.health`)) return [name, "up"] as const;
						try {
							await this.broker.call(`${name}.health`, {}, { timeout: 2000, retries: 0 });
							return [name, "up"] as const;
						} catch {
							return [name, "down"] as const;
						}
					})
				);
				return Object.fromEntries(entries);
			},

			handle_health(this: ApiThis, _req: GatewayRequest, res: ServerResponse) {
				this.sendJson(res, 200, {
					status: "ok",
					uptime: Math.round(process.uptime() * 1000) / 1000,
					version: PKG_VERSION,
					nodeID: this.broker.nodeID
				});
			},

			handle_live(this: ApiThis, _req: GatewayRequest, res: ServerResponse) {
				this.sendJson(res, 200, { status: "ok" });
			},

			async handle_ready(this: ApiThis, req: GatewayRequest, res: ServerResponse) {
				try {
					const missing = await this.readiness();
					if (missing.length === 0) this.sendJson(res, 200, { status: "ok" });
					else this.sendJson(res, 503, { status: "unavailable", missing });
				} catch (err) {
					this.sendContractError(req, res, err);
				}
			},

			handle_metrics(this: ApiThis, _req: GatewayRequest, res: ServerResponse) {
				const metrics = (
					this.broker as unknown as {
						metrics: { reporter?: Array<{ generatePrometheusResponse?: () => string }> };
					}
				).metrics;
				const reporter = (metrics.reporter ?? []).find(
					r => typeof r.generatePrometheusResponse === "function"
				);
				const body =
					reporter?.generatePrometheusResponse?.() ??
					"# metrics are disabled (METRICS_ENABLED=false)\n";
				res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
				res.end(body);
			},

			async handle_apiHealth(this: ApiThis, req: GatewayRequest, res: ServerResponse) {
				try {
					const services = await this.backendStatus();
					const status = Object.values(services).every(s => s === "up") ? "ok" : "degraded";
					this.sendJson(res, 200, { status, services });
				} catch (err) {
					this.sendContractError(req, res, err);
				}
			},

			handle_openapi(this: ApiThis, _req: GatewayRequest, res: ServerResponse) {
				res.setHeader("Cache-Control", "public, max-age=300");
				res.writeHead(200, { "Content-Type": "application/json; charset=utf-8" });
				res.end(this.openApiDoc);
			},

			handle_docs(this: ApiThis, _req: GatewayRequest, res: ServerResponse) {
				res.setHeader("Content-Security-Policy", DOCS_CSP);
				res.setHeader("Cache-Control", "public, max-age=300");
				res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
				res.end(DOCS_PAGE);
			},

			handle_docsAsset(this: ApiThis, req: GatewayRequest, res: ServerResponse) {
				const name = String((req.$params ?? {}).asset ?? "");
				const asset = Object.hasOwn(DOCS_ASSETS, name) ? DOCS_ASSETS[name] : undefined;
				if (!asset) return this.sendContractError(req, res, new NotFoundError("Asset"));
				res.setHeader("Cache-Control", "public, max-age=86400");
				res.writeHead(200, { "Content-Type": asset.type });
				if ("body" in asset) res.end(asset.body);
				else fs.createReadStream(asset.file).pipe(res);
			},

			/**
			 * moleculer-web's authentication hook: the user of a valid Bearer token, verified locally with the public key
			 * (no call per request). No header: anonymous. A header that does not verify: 401 INVALID_TOKEN.
			 */
			authenticate(
				this: ApiThis,
				_ctx: Context<unknown, AppMeta>,
				_route: unknown,
				req: GatewayRequest
			) {
				const header = req.headers.authorization;
				if (!header) return null;
				const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header);
				const user = match ? verifyAccessToken(match[1], this.keys, cfg.auth) : null;
				if (!user) {
					this.broker.metrics.increment(METRIC.AUTH_EVENTS, { event: "token_rejected" });
					throw new UnauthorizedError("INVALID_TOKEN", "Invalid or expired access token");
				}
				bindToScope({ userId: user.id });
				return user;
			},

			/** moleculer-web's authorization hook: the operation's access level against the caller's roles. */
			authorize(
				this: ApiThis,
				ctx: Context<unknown, AppMeta>,
				_route: unknown,
				_req: GatewayRequest,
				_res: ServerResponse,
				alias: { access?: Access }
			) {
				const access = alias.access ?? "public";
				if (access === "public") return;
				const user = ctx.meta.user;
				if (!user) throw new UnauthorizedError("NO_TOKEN", "Authentication required");
				if (access === "admin" && !user.roles.includes("admin")) throw new ForbiddenError();
			},

			/**
			 * The first step of a stop: `/ready` fails from now on, and every answer still being written closes its
			 * connection when done. Requests read from now on are answered 503 with `Connection: close`, not run.
			 */
			stopAccepting(this: ApiThis) {
				this.draining = true;
				for (const res of this.inFlight) if (!res.headersSent) res.setHeader("Connection", "close");
			},

			/**
			 * A stop (middlewares/shutdown-deadline): for GATEWAY_DRAIN_DELAY the port stays open while /ready fails, so
			 * load balancers take this gateway out before connections are refused (a connection refused mid-handshake
			 * is a request lost); requests in progress are answered meanwhile. Then the port closes. Whatever is still
			 * open at `timeoutMs` is answered 503 (the client retries elsewhere) and its connection closed. Answers how
			 * many were cut short.
			 */
			async drain(this: ApiThis, timeoutMs: number): Promise<number> {
				if (!this.draining) this.stopAccepting();
				const started = Date.now();
				const until = started + timeoutMs;
				const delayUntil = started + Math.min(cfg.gateway.drainDelay, timeoutMs);
				while ((this.inFlight.size > 0 || Date.now() < delayUntil) && Date.now() < until) {
					await new Promise(resolve => setTimeout(resolve, 20));
				}
				// net.Server's close: http.Server's would cut idle kept-alive connections, on which a request may be
				// on its way. Each one still used gets its 503 with `Connection: close` and goes; the ones left idle
				// to the deadline are closed then.
				if (this.server?.listening) net.Server.prototype.close.call(this.server);
				while (Date.now() < until && (await openConnections(this.server)) > 0) {
					await new Promise(resolve => setTimeout(resolve, 20));
				}
				let cut = 0;
				for (const res of this.inFlight) {
					cut++;
					const req = res.req as GatewayRequest;
					if (!res.headersSent) {
						this.sendContractError(
							req,
							res,
							new ServiceUnavailableError("This gateway is shutting down, please retry")
						);
					} else res.destroy();
				}
				this.server?.closeAllConnections();
				return cut;
			}
		},

		created(this: ApiThis) {
			this.draining = false;
			this.inFlight = new Set();
			(this as unknown as { server?: Server }).server?.on("clientError", answerClientError);
			const doc = buildOpenApi(PKG_VERSION, specs);
			this.httpMetrics = this.broker.isMetricsEnabled()
				? createHttpMetrics(this.broker.metrics, documentedRoutes(doc))
				: NO_HTTP_METRICS;
			this.keys = loadKeys(cfg);
			this.openApiDoc = JSON.stringify(doc);
		}
	};
}

/** Moleculer's loader calls this with the broker; the configuration comes with the broker's options. */
export default (broker: ServiceBroker) => createApiService(configOf(broker));
