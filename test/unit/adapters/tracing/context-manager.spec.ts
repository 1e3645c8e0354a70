/**
 * OpenTelemetry's context on the request-context store: a request scope opened inside a span keeps the span, a span
 * made active inside a scope keeps the scope, both follow awaits, and `attach` restores what it replaced.
 */
import { ROOT_CONTEXT, createContextKey } from "@opentelemetry/api";
import { SharedStorageContextManager } from "../../../../adapters/tracing/context-manager";
import { bindToScope, currentScope, runInScope } from "../../../../lib/request-context";

const KEY = createContextKey("test span");

describe("adapters/tracing/context-manager", () => {
	const manager = new SharedStorageContextManager().enable();
	const traced = ROOT_CONTEXT.setValue(KEY, "span-1");

	it("answers the root context outside any", () => {
		expect(manager.active()).toBe(ROOT_CONTEXT);
	});

	it("keeps the active span inside a request scope opened in it, across awaits", async () => {
		await manager.with(traced, async () => {
			await runInScope({ requestId: "r1" }, async () => {
				await new Promise(resolve => setImmediate(resolve));
				expect(manager.active().getValue(KEY)).toBe("span-1");
				expect(currentScope()?.requestId).toBe("r1");
			});
			expect(currentScope()).toBeUndefined();
		});
		expect(manager.active()).toBe(ROOT_CONTEXT);
	});

	it("keeps the request scope inside a span made active in it, and ids bound there reach the scope", async () => {
		await runInScope({ requestId: "r2" }, async () => {
			await manager.with(traced, async () => {
				await Promise.resolve();
				expect(currentScope()?.requestId).toBe("r2");
				bindToScope({ orderId: "o1" });
			});
			expect(currentScope()).toEqual({ requestId: "r2", orderId: "o1" });
			expect(manager.active()).toBe(ROOT_CONTEXT);
		});
	});

	it("passes this and the arguments to the function run", () => {
		const self = { n: 2 };
		const got = manager.with(
			traced,
			function (this: typeof self, a: number) {
				return this.n * a;
			},
			self,
			21
		);
		expect(got).toBe(42);
	});

	it("attach makes a context active for the rest of the chain and dispose restores the scope and context before", async () => {
		await runInScope({ requestId: "r3" }, async () => {
			await Promise.resolve();
			const token = manager.attach(traced);
			expect(manager.active().getValue(KEY)).toBe("span-1");
			expect(currentScope()?.requestId).toBe("r3");
			token.dispose();
			token.dispose(); // once only: a second dispose changes nothing
			expect(manager.active()).toBe(ROOT_CONTEXT);
			expect(currentScope()?.requestId).toBe("r3");
		});
	});
});
