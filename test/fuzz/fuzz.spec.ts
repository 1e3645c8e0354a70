/**
 * The fuzz harness itself, without a server: its checker fails what the document does not promise and passes what it
 * does, and a seed always gives the same requests (so a failure printed with its seed can be replayed).
 */
import fc from "fast-check";
import { requestArbitrary } from "./generate";
import { Checker, PREFLIGHT, operations } from "./openapi";

const ERROR = { $ref: "#/components/schemas/Error" };
const DOC = {
	paths: {
		"/things/{id}": {
			patch: {
				operationId: "things.update",
				security: [{ bearerAuth: [] }],
				parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
				requestBody: {
					content: {
						"application/json": {
							schema: {
								type: "object",
								required: ["name"],
								properties: { name: { type: "string" }, size: { type: "integer", minimum: 1 } }
							}
						}
					}
				},
				responses: {
					200: {
						content: {
							"application/json": {
								schema: {
									type: "object",
									required: ["id", "name"],
									properties: { id: { type: "string" }, name: { type: "string" } }
								}
							}
						}
					},
					404: { $ref: "#/components/responses/E404" }
				}
			}
		}
	},
	components: {
		schemas: {
			Error: {
				type: "object",
				required: ["code", "type"],
				properties: { code: { type: "integer" }, type: { type: "string" } }
			}
		},
		responses: { E404: { content: { "application/json": { schema: ERROR } } } }
	}
};

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

describe("fuzz checker", () => {
	const [op] = operations(DOC);
	const checker = new Checker(DOC);
	const check = (status: number, body: unknown) =>
		checker.check(op.responses, status, "application/json; charset=utf-8", json(body));

	it("passes a listed status whose body matches its schema, through a $ref", () => {
		expect(check(200, { id: "1", name: "a" })).toBeUndefined();
		expect(check(404, { code: 404, type: "NOT_FOUND" })).toBeUndefined();
	});

	it("fails a 5xx, an unlisted status and a body off its schema", () => {
		expect(check(500, { code: 500, type: "INTERNAL_ERROR" })).toBe("500 INTERNAL_ERROR");
		expect(check(422, { code: 422, type: "VALIDATION_ERROR" })).toBe(
			"undocumented status 422 VALIDATION_ERROR"
		);
		expect(check(200, { id: "1", name: null })).toBe(
			"200 body violates its schema at /name: must be string"
		);
		expect(check(404, "Not found")).toMatch(/^404 body violates its schema/);
	});

	it("takes a preflight answered with the operation's own answer as a failure", () => {
		expect(checker.check(PREFLIGHT, 204, undefined, Buffer.alloc(0))).toBeUndefined();
		expect(checker.check(PREFLIGHT, 200, "application/json", json({ id: "1" }))).toBe(
			"undocumented status 200"
		);
	});

	it("knows the methods a path does not define", () => {
		expect(op).toMatchObject({ id: "things.update", method: "PATCH", access: "user" });
		expect(op.otherMethods).toEqual(["GET", "PUT", "POST", "DELETE", "HEAD"]);
	});

	it("takes HEAD as defined wherever GET is, and sends it to GET operations", () => {
		const path = DOC.paths["/things/{id}"];
		const ops = operations({
			...DOC,
			paths: { "/things/{id}": { ...path, get: { responses: { 200: {} } } } }
		});
		expect(ops.map(o => [o.method, o.otherMethods])).toEqual([
			["GET", ["PUT", "POST", "DELETE"]],
			["PATCH", ["PUT", "POST", "DELETE"]]
		]);
		const mutations = fc.sample(requestArbitrary(ops[0], {}), { seed: 7, numRuns: 400 });
		expect(mutations.map(r => r.mutation)).toContain("method.HEAD");
	});
});

describe("fuzz generation", () => {
	const [op] = operations(DOC);
	const sample = (seed: number) =>
		fc.sample(requestArbitrary(op, {}), { seed, numRuns: 400 }).map(r => ({
			mutation: r.mutation,
			method: r.method,
			path: r.path,
			query: r.query,
			headers: r.headers,
			body: r.body
		}));

	it("gives the same requests for the same seed, and others for another", () => {
		expect(sample(7)).toEqual(sample(7));
		expect(sample(8)).not.toEqual(sample(7));
	});

	it("sends valid requests and each kind of mutation", () => {
		const kinds = new Set(sample(7).map(r => r.mutation.split(" ")[0]));
		for (const kind of ["valid", "body.null", "body.wrongType", "body.missing", "body.extra"])
			expect(kinds).toContain(kind);
		for (const kind of ["path.malformed", "query.odd", "header.badToken", "method.OPTIONS"])
			expect(kinds).toContain(kind);
	});
});
