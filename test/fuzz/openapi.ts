/**
 * The served OpenAPI document as the fuzzer needs it: one `Operation` per path and method, and a checker that says
 * whether an answer is one the document promises (a listed status, a body valid against that status's schema).
 */
import Ajv2020 from "ajv/dist/2020";
import addFormats from "ajv-formats";
import type { ValidateFunction } from "ajv";

export interface Schema {
	type?: string | string[];
	properties?: Record<string, Schema>;
	required?: string[];
	additionalProperties?: boolean | Schema;
	items?: Schema;
	enum?: unknown[];
	const?: unknown;
	pattern?: string;
	format?: string;
	contentMediaType?: string;
	minLength?: number;
	maxLength?: number;
	minimum?: number;
	maximum?: number;
	minItems?: number;
	maxItems?: number;
	uniqueItems?: boolean;
}

export interface Param {
	name: string;
	in: "path" | "query" | "header";
	required: boolean;
	schema: Schema;
}

interface Response {
	/** Media type → JSON pointer of its schema in the document (absent: no body documented). */
	content?: Record<string, string | undefined>;
}

export interface Operation {
	id: string;
	method: string;
	path: string;
	params: Param[];
	/** Media type → schema of the request body. */
	body?: Record<string, Schema>;
	/** Who the operation is for: anyone, any signed-in user, or admins. */
	access: "public" | "user" | "admin";
	responses: Record<string, Response>;
	/** Methods the document does not define on this path. */
	otherMethods: string[];
}

export type Doc = {
	paths: Record<string, Record<string, Record<string, unknown>>>;
	components?: Record<string, unknown>;
};

const METHODS = ["get", "put", "post", "delete", "patch"];
const escape = (s: string) => s.replace(/~/g, "~0").replace(/\//g, "~1");

/** Follows a local `$ref` ("#/components/...") one level, answering the target and its pointer. */
function deref<T>(doc: Doc, node: unknown, pointer: string): { node: T; pointer: string } {
	const ref = (node as { $ref?: string }).$ref;
	if (!ref) return { node: node as T, pointer };
	const target = ref
		.slice(2)
		.split("/")
		.reduce<unknown>(
			(at, key) => (at as Record<string, unknown>)[key.replace(/~1/g, "/").replace(/~0/g, "~")],
			doc
		);
	return { node: target as T, pointer: ref.slice(1) };
}

export function operations(doc: Doc): Operation[] {
	const out: Operation[] = [];
	// "/api/products/{id}" and "/api/products/{idOrSlug}" are one path to a client: methods are per shape.
	const shape = (path: string) => path.replace(/\{[^}]+\}/g, "{}");
	const defined = new Map<string, string[]>();
	for (const [path, item] of Object.entries(doc.paths))
		defined.set(shape(path), [
			...(defined.get(shape(path)) ?? []),
			...METHODS.filter(m => item[m])
		]);
	for (const [path, item] of Object.entries(doc.paths)) {
		const methods = defined.get(shape(path))!;
		for (const method of METHODS.filter(m => item[m])) {
			const op = item[method];
			const base = `/paths/${escape(path)}/${method}`;
			const shared = (item.parameters as unknown as unknown[]) ?? [];
			const params = [...shared, ...((op.parameters as unknown[]) ?? [])].map(
				p => deref<Param>(doc, p, "").node
			);
			const body = deref<{ content?: Record<string, { schema?: Schema }> }>(
				doc,
				op.requestBody ?? {},
				""
			).node.content;
			const responses: Record<string, Response> = {};
			for (const [status, raw] of Object.entries(op.responses as Record<string, unknown>)) {
				const { node, pointer } = deref<{ content?: Record<string, { schema?: unknown }> }>(
					doc,
					raw,
					`${base}/responses/${status}`
				);
				responses[status] = {
					content:
						node.content &&
						Object.fromEntries(
							Object.entries(node.content).map(([type, media]) => [
								type,
								media.schema ? `${pointer}/content/${escape(type)}/schema` : undefined
							])
						)
				};
			}
			const security = op.security as unknown[] | undefined;
			out.push({
				id: (op.operationId as string) ?? `${method} ${path}`,
				method: method.toUpperCase(),
				path,
				params,
				body: body && Object.fromEntries(Object.entries(body).map(([t, m]) => [t, m.schema ?? {}])),
				access: op["x-required-role"] === "admin" ? "admin" : security?.length ? "user" : "public",
				responses,
				// HEAD is defined wherever GET is: the document's description says it answers as GET, without the body.
				otherMethods: [...METHODS, "head"]
					.filter(m => !methods.includes(m) && !(m === "head" && methods.includes("get")))
					.map(m => m.toUpperCase())
			});
		}
	}
	return out;
}

/** What the document (and its description) promises for a method a path does not define. */
const ERROR_POINTER = "/components/schemas/Error";
export const UNDEFINED_METHOD: Record<string, Response> = {
	404: { content: { "application/json": ERROR_POINTER } },
	405: { content: { "application/json": ERROR_POINTER } }
};
/** A preflight is answered from the CORS settings alone: 204, or a refusal. */
export const PREFLIGHT: Record<string, Response> = {
	204: {},
	403: { content: { "application/json": ERROR_POINTER } },
	404: { content: { "application/json": ERROR_POINTER } }
};

const mediaMatches = (range: string, type: string) => {
	const [a, b] = range.toLowerCase().split(";")[0].trim().split("/");
	const [c, d] = type.toLowerCase().split(";")[0].trim().split("/");
	return (a === "*" || a === c) && (b === "*" || b === d);
};

export class Checker {
	private ajv = new Ajv2020({ strict: false, allErrors: false });
	private validators = new Map<string, ValidateFunction>();

	constructor(doc: Doc) {
		addFormats(this.ajv);
		this.ajv.addSchema(doc, "doc");
	}

	/**
	 * Why an answer breaks the document, or undefined when it keeps it. `responses` is the operation's own table,
	 * or UNDEFINED_METHOD / PREFLIGHT for a request with another method.
	 */
	check(
		responses: Record<string, Response>,
		status: number,
		contentType: string | undefined,
		/** Undefined for an answer without a body to check (HEAD). */
		body: Buffer | undefined
	): string | undefined {
		const json = body && parseJson(contentType, body);
		const errorType = (json as { type?: unknown } | undefined)?.type;
		const named = typeof errorType === "string" ? ` ${errorType}` : "";
		if (status >= 500) return `${status}${named}`;
		const documented = responses[String(status)] ?? responses[`${String(status)[0]}XX`];
		if (!documented) return `undocumented status ${status}${named}`;
		if (!documented.content) {
			return body?.length ? `${status} has a body the document does not list` : undefined;
		}
		const media = Object.keys(documented.content).find(
			t => contentType && mediaMatches(t, contentType)
		);
		if (!media)
			return `${status} with Content-Type ${contentType ?? "(none)"}, not a documented one`;
		const pointer = documented.content[media];
		if (!pointer || !/json/i.test(media) || !body) return undefined;
		if (json === undefined) return `${status} body is not JSON`;
		const validate = this.validator(pointer);
		if (validate(json)) return undefined;
		const err = validate.errors![0];
		// Array positions vary from answer to answer; the field does not.
		const at = err.instancePath.replace(/\/\d+(?=\/|$)/g, "/*") || "/";
		return `${status} body violates its schema at ${at}: ${err.message}`;
	}

	private validator(pointer: string): ValidateFunction {
		let v = this.validators.get(pointer);
		if (!v) {
			v = this.ajv.compile({ $ref: `doc#${pointer}` });
			this.validators.set(pointer, v);
		}
		return v;
	}
}

function parseJson(contentType: string | undefined, body: Buffer): unknown {
	if (!contentType || !/json/i.test(contentType)) return undefined;
	try {
		return JSON.parse(body.toString("utf8"));
	} catch {
		return undefined;
	}
}
