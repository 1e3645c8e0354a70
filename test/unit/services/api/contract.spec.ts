/**
 * The served OpenAPI document against the actions behind it: every operation must take exactly its action's
 * parameters, with the same required flags, types, enums and limits, and demand what the action's permissions
 * demand. The comparison below reads the fastest-validator rules directly (not through action-schema.ts), so a
 * mistake in the translation fails here as surely as a wrong operation does.
 */
import fs from "node:fs";
import path from "node:path";
import { ruleToJsonSchema } from "../../../../services/api/action-schema";
import { bindParams, loadActionSpecs } from "../../../../services/api/action-specs";
import { API_OPERATIONS, API_ROUTE, type Operation } from "../../../../services/api/contract";
import {
	type ActionDefinition,
	actionDefinitions,
	deriveActionSpecs
} from "../../../../services/api/derive-action-specs";
import { buildOpenApi } from "../../../../services/api/openapi";

type Json = Record<string, unknown>;
type Rule = Record<string, unknown>;

interface DocParam {
	name: string;
	in: "path" | "query" | "header";
	required: boolean;
	schema: Json;
}

interface DocOperation {
	security: unknown[];
	"x-required-role"?: string;
	parameters: DocParam[];
	requestBody?: { content: Record<string, { schema: Json }> };
	responses: Record<string, unknown>;
}

const rule = (r: unknown): Rule => {
	if (typeof r !== "string") return r as Rule;
	const [type, ...flags] = r.split("|");
	return Object.fromEntries([["type", type], ...flags.map(f => [f, true])]) as Rule;
};
const requiredRule = (r: Rule) => r.optional !== true && r.default === undefined;
const patternSource = (p: unknown) => (p instanceof RegExp ? p.source : String(p));

/** Where `schema` does not state what fastest-validator's `r` accepts, each disagreement as a sentence. */
function schemaProblems(where: string, r: Rule, schema: Json): string[] {
	const problems: string[] = [];
	const expect = (what: string, want: unknown, got: unknown) => {
		if (JSON.stringify(want) !== JSON.stringify(got)) {
			problems.push(
				`${where}: ${what} is ${JSON.stringify(got)}, the action says ${JSON.stringify(want)}`
			);
		}
	};
	const type = String(r.type);
	const jsonType = {
		string: "string",
		email: "string",
		boolean: "boolean",
		array: "array",
		object: "object",
		record: "object",
		number: r.integer ? "integer" : "number",
		enum: undefined
	}[type];
	expect("type", jsonType, schema.type);
	if (type === "enum") expect("enum", r.values, schema.enum);
	if (type === "string" || type === "email") {
		expect("minLength", r.min, schema.minLength);
		expect("maxLength", r.max, schema.maxLength);
		if (r.pattern !== undefined) {
			// A case-folding rule matches after folding, so the document may widen a-z to a-zA-Z (or the reverse).
			const fold = (s: unknown) => String(s ?? "").replace(/A-Z|a-z/g, "");
			const same =
				r.lowercase || r.uppercase
					? fold(schema.pattern) === fold(patternSource(r.pattern))
					: schema.pattern === patternSource(r.pattern);
			if (!same) expect("pattern", patternSource(r.pattern), schema.pattern);
		} else expect("pattern", undefined, schema.pattern);
	}
	if (type === "number") {
		expect("minimum", r.min, schema.minimum);
		expect("maximum", r.max, schema.maximum);
	}
	if (type === "array") {
		expect("minItems", r.min, schema.minItems);
		expect("maxItems", r.max, schema.maxItems);
		expect("uniqueItems", r.unique ? true : undefined, schema.uniqueItems);
		if (r.items !== undefined) {
			problems.push(...schemaProblems(`${where}[]`, rule(r.items), (schema.items ?? {}) as Json));
		}
	}
	if (type === "object") {
		problems.push(
			...objectProblems(
				where,
				(r.props ?? {}) as Record<string, unknown>,
				schema,
				r.strict === true
			)
		);
	}
	if (typeof r.default !== "function") expect("default", r.default, schema.default);
	return problems;
}

/** An object schema against a set of rules: the same properties, the same required ones, each property alike. */
function objectProblems(
	where: string,
	props: Record<string, unknown>,
	schema: Json,
	strict: boolean
): string[] {
	const problems: string[] = [];
	const docProps = (schema.properties ?? {}) as Record<string, Json>;
	const docRequired = new Set((schema.required ?? []) as string[]);
	const names = Object.keys(props).filter(n => !n.startsWith("$$"));
	for (const name of names) {
		const r = rule(props[name]);
		if (!docProps[name]) {
			problems.push(`${where}.${name}: missing from the document`);
			continue;
		}
		if (requiredRule(r) !== docRequired.has(name)) {
			problems.push(
				`${where}.${name}: required is ${docRequired.has(name)}, the action says ${requiredRule(r)}`
			);
		}
		problems.push(...schemaProblems(`${where}.${name}`, r, docProps[name]));
	}
	for (const name of Object.keys(docProps)) {
		if (!names.includes(name))
			problems.push(`${where}.${name}: documented, but the action does not take it`);
	}
	if ((schema.additionalProperties === false) !== strict) {
		problems.push(
			`${where}: additionalProperties ${String(schema.additionalProperties)} while strict is ${strict}`
		);
	}
	return problems;
}

/** Every way a documented operation disagrees with the action it calls. */
function operationProblems(op: Operation, doc: DocOperation, def: ActionDefinition): string[] {
	const where = `${op.method} ${op.path}`;
	const problems: string[] = [];
	const params = { ...(def.params ?? {}) };
	for (const name of op.gatewayParams ?? []) delete params[name];

	// Path and query parameters become the properties of one object, with the body's, to compare as one.
	const props: Record<string, Json> = {};
	const required: string[] = [];
	for (const p of doc.parameters.filter(p => p.in === "path" || p.in === "query")) {
		const name = p.in === "path" ? (op.pathParams?.[p.name] ?? p.name) : p.name;
		if (props[name]) problems.push(`${where}: ${name} is documented twice`);
		props[name] = p.schema;
		if (p.required) required.push(name);
	}
	const body = doc.requestBody?.content["application/json"]?.schema;
	if (body) {
		for (const [name, schema] of Object.entries((body.properties ?? {}) as Record<string, Json>)) {
			if (props[name]) problems.push(`${where}: ${name} is documented twice`);
			props[name] = schema;
		}
		required.push(...((body.required ?? []) as string[]));
		if (body.additionalProperties === false && params.$$strict !== true) {
			problems.push(`${where}: the body refuses unknown fields, which the action drops`);
		}
	}
	problems.push(
		...objectProblems(where, params, { properties: props, required }, false).filter(
			p => !p.includes("additionalProperties")
		)
	);

	const permissions = def.permissions;
	const secured = doc.security.length > 0;
	const admin = doc["x-required-role"] === "admin";
	const wantSecured = permissions !== undefined;
	const wantAdmin = Array.isArray(permissions) && permissions.includes("admin");
	if (Array.isArray(permissions) && permissions.some(p => p !== "admin")) {
		problems.push(`${where}: permissions ${JSON.stringify(permissions)} have no access level`);
	}
	if (secured !== wantSecured) {
		problems.push(
			`${where}: security ${secured ? "required" : "none"}, permissions ${JSON.stringify(permissions)}`
		);
	}
	if (admin !== wantAdmin) {
		problems.push(
			`${where}: x-required-role ${doc["x-required-role"]}, permissions ${JSON.stringify(permissions)}`
		);
	}
	// A public operation may still answer 401 (bad credentials), so only the presence of these is checked.
	if (wantSecured && !doc.responses["401"]) problems.push(`${where}: 401 not documented`);
	if (wantAdmin && !doc.responses["403"]) problems.push(`${where}: 403 not documented`);
	return problems;
}

const definitions = actionDefinitions();
const doc = buildOpenApi("test") as { paths: Record<string, Record<string, DocOperation>> };
const docPath = (op: Operation) => (API_ROUTE + op.path).replace(/:([A-Za-z0-9_]+)/g, "{$1}");
const documented = (op: Operation) => doc.paths[docPath(op)][op.method.toLowerCase()];
const withAction = API_OPERATIONS.filter(op => op.action);
const clone = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
const find = (method: string, p: string) =>
	withAction.find(op => op.method === method && op.path === p) as Operation;

describe("the HTTP contract", () => {
	it("documents every operation with exactly its action's parameters and permissions", () => {
		expect(withAction.length).toBeGreaterThan(25);
		const problems = withAction.flatMap(op =>
			operationProblems(op, documented(op), definitions[op.action!])
		);
		expect(problems).toEqual([]);
	});

	it("names only actions the services define", () => {
		expect(withAction.filter(op => !definitions[op.action!]).map(op => op.action)).toEqual([]);
	});

	it("serves, once built, the specs the sources derive", () => {
		const built = path.join(__dirname, "../../../../dist/services/api/action-specs.json");
		// Absent before the first build; `npm test` builds first, so there it always compares.
		if (!fs.existsSync(built)) return;
		const specs = JSON.parse(fs.readFileSync(built, "utf8")) as unknown;
		expect(specs).toEqual(deriveActionSpecs(definitions));
	});

	it("keeps the notes' words over the derived schemas", () => {
		const register = documented(find("POST", "/auth/register"));
		const body = register.requestBody!.content["application/json"].schema as {
			properties: Record<string, Json>;
		};
		expect(body.properties.email).toMatchObject({
			type: "string",
			format: "email",
			description: expect.stringMatching(/^Trimmed, NFKC-normalised .* lower-cased/)
		});
		const checkout = documented(find("POST", "/orders")).requestBody!.content["application/json"]
			.schema as { properties: { shippingAddress: { properties: Record<string, Json> } } };
		expect(checkout.properties.shippingAddress.properties.country.description).toMatch(/ISO-3166/);
	});
});

describe("the contract check", () => {
	const cartAdd = find("POST", "/cart/items");
	const productList = find("GET", "/products");
	const orderGet = find("GET", "/orders/:id");
	const userList = find("GET", "/users");
	const problemsOf = (op: Operation, edit: (d: DocOperation) => void) => {
		const d = clone(documented(op));
		edit(d);
		return operationProblems(op, d, definitions[op.action!]);
	};
	const bodyOf = (d: DocOperation) =>
		d.requestBody!.content["application/json"].schema as {
			required: string[];
			properties: Record<string, Json>;
		};

	it("fails on a parameter the operation leaves out", () => {
		const problems = problemsOf(cartAdd, d => {
			delete bodyOf(d).properties.quantity;
			bodyOf(d).required = [];
		});
		expect(problems).toEqual(["POST /cart/items.quantity: missing from the document"]);
	});

	it("fails on a parameter the action does not take", () => {
		const problems = problemsOf(productList, d => {
			d.parameters.push({
				name: "price[$gt]",
				in: "query",
				required: false,
				schema: { type: "integer" }
			});
		});
		expect(problems).toEqual([
			"GET /products.price[$gt]: documented, but the action does not take it"
		]);
	});

	it("fails on a required flag, a type, an enum or a limit that differs", () => {
		const problems = problemsOf(productList, d => {
			const param = (name: string) => d.parameters.find(p => p.name === name)!;
			param("q").required = true;
			param("minPrice").schema = { type: "number", minimum: 0 };
			param("sort").schema = { enum: ["price", "name"], default: "-createdAt" };
			param("pageSize").schema = { ...param("pageSize").schema, maximum: 1000 };
		});
		expect(problems).toEqual([
			"GET /products.q: required is true, the action says false",
			'GET /products.minPrice: type is "number", the action says "integer"',
			'GET /products.sort: enum is ["price","name"], the action says ["price","-price","name","-createdAt"]',
			"GET /products.pageSize: maximum is 1000, the action says 100"
		]);
	});

	it("fails on a nested field that differs", () => {
		const problems = problemsOf(find("POST", "/orders"), d => {
			const address = bodyOf(d).properties.shippingAddress as { properties: Record<string, Json> };
			address.properties.country = { type: "string" };
		});
		expect(problems).toEqual([
			'POST /orders.shippingAddress.country: pattern is undefined, the action says "^[A-Za-z]{2}$"'
		]);
	});

	it("fails on an access level the permissions do not demand", () => {
		const asPublic = problemsOf(orderGet, d => {
			d.security = [];
			delete d.responses["401"];
		});
		expect(asPublic).toEqual([
			'GET /orders/:id: security none, permissions "authenticated"',
			"GET /orders/:id: 401 not documented"
		]);
		const asCustomer = problemsOf(userList, d => {
			delete d["x-required-role"];
			delete d.responses["403"];
		});
		expect(asCustomer).toEqual([
			'GET /users: x-required-role undefined, permissions ["admin"]',
			"GET /users: 403 not documented"
		]);
	});

	it("fails on an action whose permissions changed under the operation", () => {
		const problems = operationProblems(orderGet, documented(orderGet), {
			...definitions["orders.get"],
			permissions: ["admin"]
		});
		expect(problems).toEqual([
			'GET /orders/:id: x-required-role undefined, permissions ["admin"]',
			"GET /orders/:id: 403 not documented"
		]);
	});
});

describe("deriving an operation's parameters", () => {
	const specs = loadActionSpecs();
	const base = API_OPERATIONS.find(op => op.action === "carts.update")!;

	it("refuses a path parameter the action does not take", () => {
		expect(() => bindParams({ ...base, path: "/cart/items/:sku" }, specs)).toThrow(
			"carts.update: path parameter sku is not one of its params"
		);
	});

	it("refuses a note that restates a type, or describes a parameter the action lacks", () => {
		expect(() => bindParams({ ...base, notes: { quantity: { type: "string" } } }, specs)).toThrow(
			"carts.update: note on quantity restates type"
		);
		expect(() => bindParams({ ...base, notes: { price: { description: "x" } } }, specs)).toThrow(
			"carts.update: note on price, which the action does not take"
		);
	});

	it("refuses a rule it cannot state faithfully", () => {
		expect(() => ruleToJsonSchema({ type: "uuid" }, "id")).toThrow('rule type "uuid"');
		expect(() => ruleToJsonSchema({ type: "string", alpha: true }, "name")).toThrow(
			"rule keys alpha not translated"
		);
		expect(() => ruleToJsonSchema({ type: "string", pattern: /^a$/i }, "code")).toThrow("flags i");
		expect(() =>
			ruleToJsonSchema({ type: "string", lowercase: true, pattern: /^sku-[a-z]+$/ }, "sku")
		).toThrow("case-insensitive");
	});

	it("widens a case-folded pattern to both cases, which the action accepts", () => {
		expect(
			ruleToJsonSchema({ type: "string", lowercase: true, pattern: /^[a-z0-9][a-z -]*$/ }, "c")
		).toEqual({ type: "string", pattern: "^[a-zA-Z0-9][a-zA-Z -]*$" });
	});
});
