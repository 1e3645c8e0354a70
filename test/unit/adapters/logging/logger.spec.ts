import { jsonFormatter, prettyFormatter, redact } from "../../../../adapters/logging/logger";
import { bindToScope, runInScope } from "../../../../lib/request-context";

const bindings = { nodeID: "node-1", ns: "t", mod: "orders", svc: "orders" };
const parse = (lines: string[]) => JSON.parse(lines[0]) as Record<string, unknown>;

describe("logger.jsonFormatter", () => {
	it("writes one JSON object with the contract's fields and the ids of the request in scope", () => {
		const line = runInScope({ requestId: "req-1", userId: "u-1" }, () => {
			bindToScope({ orderId: "o-9" });
			return parse(jsonFormatter("info", ["order created", { total: 1200 }], bindings));
		});
		expect(line).toMatchObject({
			level: "info",
			message: "order created",
			service: "orders",
			nodeID: "node-1",
			requestId: "req-1",
			userId: "u-1",
			orderId: "o-9",
			total: 1200
		});
		expect(new Date(line["@timestamp"] as string).toISOString()).toBe(line["@timestamp"]);
	});

	it("names no request outside a scope", () => {
		expect(parse(jsonFormatter("warn", ["boot"], bindings)).requestId).toBeUndefined();
	});

	it("never writes secrets", () => {
		const line = jsonFormatter(
			"info",
			[
				"login with Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl",
				{
					password: "hunter22",
					headers: { authorization: "Bearer abc" },
					paymentToken: "tok_visa",
					refreshToken: "r"
				}
			],
			bindings
		)[0];
		expect(line).not.toMatch(/hunter22|tok_visa|eyJzdWIi|Bearer abc|"r"/);
		expect(line).toContain("[REDACTED]");
	});

	it("records an error's name, message and stack", () => {
		const line = parse(jsonFormatter("error", ["failed", new Error("boom")], bindings));
		expect(line.message).toBe("failed Error: boom");
		expect(line.error).toMatchObject({ name: "Error", message: "boom" });
	});
});

describe("logger.prettyFormatter", () => {
	it("names the request id for people too", () => {
		const [text] = runInScope({ requestId: "req-7" }, () =>
			prettyFormatter("info", ["hello"], bindings)
		);
		expect(text).toMatch(/INFO +orders \[req-7\]: hello/);
	});
});

describe("logger.redact", () => {
	it("bounds depth and copies without touching the original", () => {
		const original = { a: { password: "x" } };
		expect(redact(original)).toEqual({ a: { password: "[REDACTED]" } });
		expect(original.a.password).toBe("x");
	});
});
