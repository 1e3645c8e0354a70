/**
 * The HTTP contract as data: every operation a client may call (API.md), the action behind it and who may call it.
 * The gateway builds its whitelist of aliases from this table and nothing else, and the OpenAPI document is
 * generated from it, so the two cannot drift apart.
 */

export type Access = "public" | "customer" | "admin";

/** A JSON schema fragment (OpenAPI 3.1 uses JSON Schema 2020-12). */
export type JsonSchema = Record<string, unknown>;

export interface Operation {
	method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
	/** moleculer-web path under the route, `:param` style. */
	path: string;
	/** The action called, or the name of a gateway handler for operational endpoints. */
	action?: string;
	handler?:
		"health" | "live" | "ready" | "metrics" | "apiHealth" | "openapi" | "docs" | "docsAsset";
	access: Access;
	tag: string;
	summary: string;
	/** Success status code. */
	status?: number;
	requestBody?: JsonSchema;
	query?: Record<string, JsonSchema>;
	headers?: Record<string, { schema: JsonSchema; required?: boolean; description: string }>;
	response?: JsonSchema;
	/** Error statuses this operation documents beyond the ones every operation may answer. */
	errors?: number[];
	/** Response content type when not JSON. */
	contentType?: string;
}

export const OPS_ROUTE = "/";
export const API_ROUTE = "/api";

const STR = { type: "string" } as const;
const INT = { type: "integer" } as const;

/** Operational endpoints, at the root: no auth, no body. */
export const OPS_OPERATIONS: Operation[] = [
	{
		method: "GET",
		path: "/health",
		handler: "health",
		access: "public",
		tag: "Operations",
		summary: "Liveness of this gateway node with its version",
		response: {
			type: "object",
			required: ["status", "uptime", "version", "nodeID"],
			properties: { status: { const: "ok" }, uptime: { type: "number" }, version: STR, nodeID: STR }
		}
	},
	{
		method: "GET",
		path: "/live",
		handler: "live",
		access: "public",
		tag: "Operations",
		summary: "200 while the process runs",
		response: { type: "object", properties: { status: { const: "ok" } } }
	},
	{
		method: "GET",
		path: "/ready",
		handler: "ready",
		access: "public",
		tag: "Operations",
		summary:
			"200 when the transporter is connected and every required service is available with its store reachable; " +
			"503 naming what is missing",
		errors: [503],
		response: {
			type: "object",
			properties: {
				status: { enum: ["ok", "unavailable"] },
				missing: { type: "array", items: STR }
			}
		}
	},
	{
		method: "GET",
		path: "/metrics",
		handler: "metrics",
		access: "public",
		tag: "Operations",
		summary: "Prometheus text exposition of this node's metrics",
		contentType: "text/plain; version=0.0.4"
	}
];

/** Everything under /api. Later features add their operations here. */
export const API_OPERATIONS: Operation[] = [
	{
		method: "GET",
		path: "/health",
		handler: "apiHealth",
		access: "public",
		tag: "Operations",
		summary: "The backend view: each required service up or down",
		response: {
			type: "object",
			required: ["status", "services"],
			properties: {
				status: { enum: ["ok", "degraded"] },
				services: { type: "object", additionalProperties: { enum: ["up", "down"] } }
			}
		}
	},
	{
		method: "GET",
		path: "/openapi.json",
		handler: "openapi",
		access: "public",
		tag: "Operations",
		summary: "This OpenAPI 3.1 document"
	},
	{
		method: "GET",
		path: "/docs",
		handler: "docs",
		access: "public",
		tag: "Operations",
		summary: "A browsable page of this document",
		contentType: "text/html"
	},
	{
		method: "GET",
		path: "/docs/:asset",
		handler: "docsAsset",
		access: "public",
		tag: "Operations",
		summary: "Static assets of the documentation page"
	}
];

export const PAGE_QUERY: Record<string, JsonSchema> = {
	page: { ...INT, minimum: 1, default: 1 },
	pageSize: { ...INT, minimum: 1, maximum: 100, default: 20 }
};
