/**
 * What an action accepts, in the words of the OpenAPI document: fastest-validator `params` as JSON Schema 2020-12
 * and `permissions` as an access level. Pure code, so the gateway can use its output without loading the services.
 * A rule it cannot translate faithfully throws: a document that guesses would mislead clients and fuzzers alike.
 */
import type { ActionError, Permission } from "../../types/moleculer-ext";

export type Access = "public" | "customer" | "admin";

/** A JSON schema fragment (OpenAPI 3.1 uses JSON Schema 2020-12). */
export type JsonSchema = Record<string, unknown>;

/** The derived specs' file, written next to the compiled gateway by `npm run build`. */
export const SPECS_FILE = "action-specs.json";

/** An action's parameters as the document needs them. */
export interface ActionSpec {
	access: Access;
	/** Each top-level parameter's schema. */
	params: Record<string, JsonSchema>;
	/** Parameters a call must carry (no `optional`, no `default`). */
	required: string[];
	/** The error answers the action declares (beyond validation). */
	errors?: ActionError[];
}

type Rule = Record<string, unknown>;

/** The access level a client needs for an action: what the permissions middleware will demand on the node. */
export function accessOf(permissions: Permission | undefined, action = "action"): Access {
	if (permissions === undefined) return "public";
	if (permissions === "authenticated") return "customer";
	if (Array.isArray(permissions) && permissions.length === 1 && permissions[0] === "admin")
		return "admin";
	throw new Error(`${action}: permissions ${JSON.stringify(permissions)} have no access level`);
}

/** fastest-validator's shorthand (`"string"`, `"number|optional"`) as a full rule. */
function normalize(rule: unknown, where: string): Rule {
	if (typeof rule === "string") {
		const [type, ...flags] = rule.split("|");
		const out: Rule = { type };
		for (const flag of flags) {
			const [key, value] = flag.split(":");
			if (value === undefined || value === "true") out[key] = true;
			else if (value === "false") out[key] = false;
			else out[key] = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
		}
		return out;
	}
	if (rule && typeof rule === "object" && !Array.isArray(rule)) return rule as Rule;
	throw new Error(`${where}: unsupported rule ${JSON.stringify(rule)}`);
}

/**
 * A lower-cased value is matched after lower-casing, so a client may send either case: widen `a-z` classes to
 * `a-zA-Z` (and the reverse for upper-casing). A letter outside a class cannot be widened this way: refuse.
 */
function caseFolded(source: string, to: "lower" | "upper", where: string): string {
	const [from, add] = to === "lower" ? ["a-z", "A-Z"] : ["A-Z", "a-z"];
	const outside = source.replace(/\\.|\[(?:\\.|[^\]\\])*\]/g, "");
	if (/[A-Za-z]/.test(outside.replace(/\\[a-zA-Z]/g, ""))) {
		throw new Error(`${where}: cannot state a case-insensitive form of /${source}/`);
	}
	return source.replace(/\[((?:\\.|[^\]\\])*)\]/g, (cls, body: string) =>
		body.includes(from) && !body.includes(add) ? `[${body.replace(from, from + add)}]` : cls
	);
}

function stringSchema(rule: Rule, where: string): JsonSchema {
	const out: JsonSchema = { type: "string" };
	if (rule.type === "email") out.format = "email";
	if (typeof rule.min === "number") out.minLength = rule.min;
	if (typeof rule.max === "number") out.maxLength = rule.max;
	if (typeof rule.length === "number") out.minLength = out.maxLength = rule.length;
	if (rule.pattern !== undefined) {
		const re = rule.pattern instanceof RegExp ? rule.pattern : new RegExp(String(rule.pattern));
		if (re.flags.replace(/[gy]/g, "")) throw new Error(`${where}: pattern flags ${re.flags}`);
		let source = re.source;
		if (rule.lowercase) source = caseFolded(source, "lower", where);
		if (rule.uppercase) source = caseFolded(source, "upper", where);
		out.pattern = source;
	}
	if (rule.enum !== undefined) out.enum = rule.enum;
	return out;
}

function numberSchema(rule: Rule): JsonSchema {
	const out: JsonSchema = { type: rule.integer ? "integer" : "number" };
	if (typeof rule.min === "number") out.minimum = rule.min;
	if (typeof rule.max === "number") out.maximum = rule.max;
	if (rule.positive) out.exclusiveMinimum = 0;
	if (rule.negative) out.exclusiveMaximum = 0;
	return out;
}

/** Only the keys fastest-validator would act on, so a rule with a key this file does not know is refused. */
const KNOWN: Record<string, string[]> = {
	string: ["min", "max", "length", "pattern", "enum", "trim", "lowercase", "uppercase", "convert"],
	email: ["max", "min", "normalize", "mode"],
	number: ["min", "max", "integer", "positive", "negative", "convert"],
	boolean: ["convert"],
	enum: ["values"],
	array: ["items", "min", "max", "length", "unique", "empty"],
	object: ["props", "properties", "strict"],
	record: ["key", "value"]
};
const COMMON = ["type", "optional", "default", "nullable", "messages", "label", "description"];

/** One rule as JSON Schema. */
export function ruleToJsonSchema(raw: unknown, where: string): JsonSchema {
	const rule = normalize(raw, where);
	const type = String(rule.type);
	const known = KNOWN[type];
	if (!known) throw new Error(`${where}: rule type "${type}" has no JSON Schema here`);
	// A custom checker only narrows what its rule accepts; the rule states how, as JSON Schema, in `jsonSchema`.
	const documented =
		rule.custom !== undefined && rule.jsonSchema !== undefined ? ["custom", "jsonSchema"] : [];
	const unknown = Object.keys(rule).filter(
		k => !known.includes(k) && !COMMON.includes(k) && !documented.includes(k)
	);
	if (unknown.length > 0)
		throw new Error(`${where}: rule keys ${unknown.join(", ")} not translated`);

	let out: JsonSchema;
	switch (type) {
		case "string":
		case "email":
			out = stringSchema(rule, where);
			break;
		case "number":
			out = numberSchema(rule);
			break;
		case "boolean":
			out = { type: "boolean" };
			break;
		case "enum":
			out = { enum: rule.values };
			break;
		case "array": {
			out = { type: "array" };
			if (rule.items !== undefined) out.items = ruleToJsonSchema(rule.items, `${where}[]`);
			if (typeof rule.min === "number") out.minItems = rule.min;
			if (typeof rule.max === "number") out.maxItems = rule.max;
			if (typeof rule.length === "number") out.minItems = out.maxItems = rule.length;
			if (rule.empty === false) out.minItems = Math.max(1, Number(out.minItems ?? 0));
			if (rule.unique) out.uniqueItems = true;
			break;
		}
		case "record": {
			out = { type: "object" };
			if (rule.key !== undefined) out.propertyNames = ruleToJsonSchema(rule.key, `${where}{key}`);
			if (rule.value !== undefined)
				out.additionalProperties = ruleToJsonSchema(rule.value, `${where}{value}`);
			break;
		}
		default: {
			const props = (rule.props ?? rule.properties ?? {}) as Record<string, unknown>;
			out = objectSchema(props, rule.strict, where);
		}
	}
	if (rule.jsonSchema) out = { ...out, ...(rule.jsonSchema as JsonSchema) };
	// Words beside the rule in the service (what a value means), for the document; fastest-validator ignores them.
	if (typeof rule.description === "string") out.description = rule.description;
	if (rule.default !== undefined && typeof rule.default !== "function") out.default = rule.default;
	if (rule.nullable) {
		if (typeof out.type === "string") out.type = [out.type, "null"];
		else if (Array.isArray(out.enum)) out.enum = [...(out.enum as unknown[]), null];
	}
	return out;
}

/** Whether a call may leave the parameter out: fastest-validator fills in a default before it checks. */
export function isRequired(raw: unknown, where = "rule"): boolean {
	const rule = normalize(raw, where);
	return rule.optional !== true && rule.default === undefined;
}

function objectSchema(props: Record<string, unknown>, strict: unknown, where: string): JsonSchema {
	const properties: Record<string, JsonSchema> = {};
	const required: string[] = [];
	for (const [name, rule] of Object.entries(props)) {
		if (name.startsWith("$$")) continue;
		properties[name] = ruleToJsonSchema(rule, `${where}.${name}`);
		if (isRequired(rule, `${where}.${name}`)) required.push(name);
	}
	// `strict: "remove"` drops unknown keys and answers; only `strict: true` refuses them.
	return {
		type: "object",
		...(required.length > 0 ? { required } : {}),
		properties,
		...(strict === true ? { additionalProperties: false } : {})
	};
}

/** An action's `params` and `permissions` as an ActionSpec. */
export function actionSpecOf(
	action: string,
	params: Record<string, unknown> | undefined,
	permissions: Permission | undefined,
	errors?: ActionError[]
): ActionSpec {
	if (params === undefined) throw new Error(`${action} declares no params`);
	const schema = objectSchema(params, params.$$strict, action);
	return {
		access: accessOf(permissions, action),
		params: schema.properties as Record<string, JsonSchema>,
		required: (schema.required as string[] | undefined) ?? [],
		...(errors && errors.length > 0 ? { errors } : {})
	};
}
