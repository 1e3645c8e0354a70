/**
 * What each operation's action accepts and who may call it, as the gateway reads it at run time. A built gateway
 * reads dist/services/api/action-specs.json, which `npm run build` derives from the services' definitions
 * (derive-action-specs.ts), so a gateway node does not load the other services' code and store adapters.
 */
import fs from "node:fs";
import path from "node:path";
import { type Access, type ActionSpec, type JsonSchema, SPECS_FILE } from "./action-schema";
import type { Operation } from "./contract";

export type ActionSpecs = Record<string, ActionSpec>;

/** The derived specs: the built file when there is one, else derived now (ts-node, tests). */
export function loadActionSpecs(): ActionSpecs {
	const file = path.join(__dirname, SPECS_FILE);
	if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, "utf8")) as ActionSpecs;
	// Only from the sources, where every service's code is at hand anyway.
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const derive = require("./derive-action-specs") as typeof import("./derive-action-specs");
	return derive.deriveActionSpecs();
}

/** The spec of an operation's action (none for a gateway handler without one). */
export function specOf(op: Operation, specs: ActionSpecs): ActionSpec | undefined {
	if (!op.action) return undefined;
	const spec = specs[op.action];
	if (!spec) throw new Error(`${op.method} ${op.path}: ${op.action} has no derived spec`);
	return spec;
}

/** Who may call an operation: its action's permissions, or a handler's declared access. */
export function accessOf(op: Operation, specs: ActionSpecs): Access {
	return specOf(op, specs)?.access ?? op.access ?? "public";
}

/** Annotation keywords a contract note may add to a derived schema: words, never constraints. */
const NOTE_KEYS = new Set(["description", "examples", "title", "deprecated"]);

/** A derived parameter schema with the contract's note for `where` (a dotted parameter path) laid over it. */
function annotate(
	params: Record<string, JsonSchema>,
	where: string,
	note: JsonSchema,
	op: Operation
): Record<string, JsonSchema> {
	const bad = Object.keys(note).filter(k => !NOTE_KEYS.has(k));
	if (bad.length > 0) throw new Error(`${op.action}: note on ${where} restates ${bad.join(", ")}`);
	const [head, ...rest] = where.split(".");
	const schema = params[head];
	if (!schema) throw new Error(`${op.action}: note on ${where}, which the action does not take`);
	if (rest.length === 0) return { ...params, [head]: { ...schema, ...note } };
	const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
	return {
		...params,
		[head]: { ...schema, properties: annotate(props, rest.join("."), note, op) }
	};
}

/** Where an operation's parameters travel and their schemas, as the document states them. */
export interface BoundParams {
	path: Array<{ name: string; schema: JsonSchema }>;
	query: Array<{ name: string; required: boolean; schema: JsonSchema }>;
	/** The JSON body, when the action takes any parameter from it. */
	body?: JsonSchema;
}

/**
 * Splits an action's parameters over the request: path parameters by the path template, the rest in the query
 * string (GET, DELETE) or the JSON body, except those the gateway fills in itself.
 */
export function bindParams(op: Operation, specs: ActionSpecs): BoundParams {
	const spec = specOf(op, specs);
	const pathNames = [...op.path.matchAll(/:([A-Za-z0-9_]+)/g)].map(m => m[1]);
	if (!spec) {
		return { path: pathNames.map(name => ({ name, schema: { type: "string" } })), query: [] };
	}
	let params = spec.params;
	for (const [where, note] of Object.entries(op.notes ?? {})) {
		params = annotate(params, where, note, op);
	}
	const taken = new Set(op.gatewayParams ?? []);
	const path = pathNames.map(name => {
		const param = op.pathParams?.[name] ?? name;
		const schema = params[param];
		if (!schema) throw new Error(`${op.action}: path parameter ${name} is not one of its params`);
		taken.add(param);
		return { name, schema };
	});
	const rest = Object.keys(params).filter(name => !taken.has(name));
	const required = new Set(spec.required);
	if (op.method === "GET" || op.method === "DELETE") {
		return {
			path,
			query: rest.map(name => ({ name, required: required.has(name), schema: params[name] }))
		};
	}
	if (rest.length === 0) return { path, query: [] };
	const bodyRequired = rest.filter(name => required.has(name));
	return {
		path,
		query: [],
		body: {
			type: "object",
			...(bodyRequired.length > 0 ? { required: bodyRequired } : {}),
			properties: Object.fromEntries(rest.map(name => [name, params[name]]))
		}
	};
}
