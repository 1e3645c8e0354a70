/**
 * The served document's shape as clients and their generators need it: one template per path, a named schema for
 * every answer with examples that hold, short plain summaries beside full descriptions, and the Error shape for
 * every error answer. (contract.spec.ts checks the parameters against the actions; the lint runs Redocly.)
 */
import Ajv2020 from "ajv/dist/2020";
import addFormats from "ajv-formats";
import { buildOpenApi, checkTemplates } from "../../../../services/api/openapi";

type Json = Record<string, any>;

const doc = buildOpenApi("test") as Json;
const operations = Object.entries(doc.paths as Json).flatMap(([path, item]) =>
	Object.entries(item as Json).map(([method, op]) => ({
		where: `${method} ${path}`,
		op: op as Json
	}))
);
/** An operation's response with its `$ref` (to a shared response) followed. */
const resolved = (response: Json): Json =>
	response.$ref ? doc.components.responses[String(response.$ref).split("/").pop()!] : response;

describe("the OpenAPI document", () => {
	it("gives every path a template of its own", () => {
		const shapes = Object.keys(doc.paths).map(p => p.replace(/\{[^}]+\}/g, "{}"));
		expect(shapes.length).toBeGreaterThan(25);
		expect(new Set(shapes).size).toBe(shapes.length);
		expect(doc.paths["/api/products/{id}"]).toMatchObject({
			get: { operationId: "products.get" },
			patch: { operationId: "products.update" },
			delete: { operationId: "products.archive" }
		});
	});

	it("refuses a table whose templates differ only by parameter names", () => {
		expect(() =>
			checkTemplates([
				{ method: "GET", template: "/api/products/{idOrSlug}" },
				{ method: "PATCH", template: "/api/products/{id}" }
			])
		).toThrow("path templates /api/products/{idOrSlug} and /api/products/{id} differ only");
		expect(() =>
			checkTemplates([
				{ method: "GET", template: "/api/cart" },
				{ method: "GET", template: "/api/cart" }
			])
		).toThrow("GET /api/cart is bound twice");
	});

	it("answers every JSON success with a named schema", () => {
		const anonymous = operations.flatMap(({ where, op }) =>
			Object.entries(op.responses as Json)
				.filter(([status]) => status.startsWith("2"))
				.flatMap(([status, r]) => {
					const schema = (r as Json).content?.["application/json"]?.schema;
					return schema && !schema.$ref ? [`${where} ${status}`] : [];
				})
		);
		expect(anonymous).toEqual([]);
		for (const name of ["Product", "ProductPage", "Order", "OrderPage", "Cart", "User", "Error"]) {
			expect(doc.components.schemas).toHaveProperty(name);
		}
		expect(doc.components.schemas.InventoryLevel).toBeDefined();
		expect(doc.components.schemas.Payment).toBeDefined();
	});

	it("gives every named schema an example that its schema accepts", () => {
		const ajv = new Ajv2020({ strict: false });
		addFormats(ajv);
		ajv.addSchema(doc, "doc");
		const problems = Object.entries(doc.components.schemas as Json).flatMap(([name, schema]) => {
			const examples = (schema as Json).examples as unknown[] | undefined;
			if (!examples?.length) return [`${name}: no example`];
			const validate = ajv.compile({ $ref: `doc#/components/schemas/${name}` });
			return examples.flatMap((example, i) =>
				validate(example) ? [] : [`${name} example ${i}: ${ajv.errorsText(validate.errors)}`]
			);
		});
		// OpenApiDocument is this document itself: its example would be a copy.
		expect(problems).toEqual(["OpenApiDocument: no example"]);
		expect(
			ajv.compile({ $ref: "doc#/components/schemas/OpenApiDocument" })(
				JSON.parse(JSON.stringify(doc))
			)
		).toBe(true);
	});

	it("keeps summaries to a few plain words and says the rest in a description", () => {
		const problems = operations.flatMap(({ where, op }) => [
			...(typeof op.summary === "string" && op.summary.split(" ").length <= 5
				? []
				: [`${where}: summary "${op.summary}" is not a few words`]),
			...(/[`*_[\]]/.test(op.summary) ? [`${where}: Markdown in the summary`] : []),
			...(typeof op.description === "string" && op.description.length > op.summary.length
				? []
				: [`${where}: no description`])
		]);
		expect(problems).toEqual([]);
	});

	it("answers every error in the Error shape, with what the status means there", () => {
		const problems = operations.flatMap(({ where, op }) =>
			Object.entries(op.responses as Json)
				.filter(([status]) => Number(status) >= 400)
				.flatMap(([status, r]) => {
					const response = resolved(r as Json);
					const schema = response.content?.["application/json"]?.schema ?? {};
					const refs = [schema, ...(schema.anyOf ?? [])].map((s: Json) => s.$ref);
					return refs.includes("#/components/schemas/Error") && response.description
						? []
						: [`${where} ${status}`];
				})
		);
		expect(problems).toEqual([]);
		const checkout = doc.paths["/api/orders"].post.responses;
		expect(checkout["409"].description).toMatch(
			/OUT_OF_STOCK.*CART_CHANGED.*IDEMPOTENCY_KEY_IN_USE/
		);
		expect(checkout["422"].description).toMatch(/EMPTY_CART.*IDEMPOTENCY_KEY_REUSED/);
		expect(doc.paths["/ready"].get.responses["503"].content["application/json"].schema).toEqual({
			anyOf: [{ $ref: "#/components/schemas/Readiness" }, { $ref: "#/components/schemas/Error" }]
		});
	});
});
