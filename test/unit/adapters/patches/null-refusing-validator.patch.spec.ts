import { ServiceBroker } from "moleculer";
import {
	NULL_NOT_ALLOWED,
	NullRefusingValidator
} from "../../../../adapters/patches/null-refusing-validator.patch";

/** A custom checker as lib/validation's: it gives the value back changed, and leaves other types alone. */
const upper = (value: unknown) => (typeof value === "string" ? value.toUpperCase() : value);

describe("null-refusing validator (fastest-validator 1.19)", () => {
	const broker = new ServiceBroker({
		logger: false,
		validator: new NullRefusingValidator() as never
	});
	broker.createService({
		name: "t",
		actions: {
			echo: {
				params: {
					$$strict: "remove",
					text: { type: "string", optional: true },
					withDefault: { type: "string", default: "D" },
					maybe: { type: "string", optional: true, nullable: true },
					nested: {
						type: "object",
						optional: true,
						props: { n: { type: "number", optional: true } }
					},
					list: { type: "array", optional: true, items: "string" }
				},
				handler: ctx => ctx.params
			},
			custom: {
				params: {
					$$strict: "remove",
					stamp: { type: "string", optional: true, custom: upper },
					inner: {
						type: "object",
						optional: true,
						props: { stamp: { type: "string", optional: true, custom: upper } }
					},
					needed: { type: "string", optional: true, default: "d", custom: upper }
				},
				handler: ctx => ctx.params
			}
		}
	});
	beforeAll(() => broker.start());
	afterAll(() => broker.stop());

	const refusal = async (params: object) => {
		const err = await broker.call("t.echo", params).then(
			() => null,
			(e: { code: number; data: Array<{ field: string; type: string }> }) => e
		);
		expect(err).not.toBeNull();
		expect(err!.code).toBe(422);
		return err!.data;
	};

	it("refuses null for an optional field", async () => {
		expect(await refusal({ text: null })).toEqual([
			expect.objectContaining({ field: "text", type: NULL_NOT_ALLOWED })
		]);
	});

	it("refuses null for a field with a default instead of applying the default", async () => {
		expect(await refusal({ withDefault: null })).toEqual([
			expect.objectContaining({ field: "withDefault", type: NULL_NOT_ALLOWED })
		]);
	});

	it("refuses null inside objects and arrays", async () => {
		expect(await refusal({ nested: { n: null } })).toEqual([
			expect.objectContaining({ field: "nested.n", type: NULL_NOT_ALLOWED })
		]);
		expect(await refusal({ list: ["a", null] })).toEqual([
			expect.objectContaining({ field: "list", type: NULL_NOT_ALLOWED })
		]);
	});

	it("keeps null where a rule says nullable: true, and absent optional fields absent", async () => {
		await expect(broker.call("t.echo", { maybe: null })).resolves.toEqual({
			maybe: null,
			withDefault: "D"
		});
		await expect(broker.call("t.echo", { text: "x" })).resolves.toEqual({
			text: "x",
			withDefault: "D"
		});
	});

	it("runs no custom checker for an absent optional field, so it stays absent, not a key holding undefined", async () => {
		const absent = (await broker.call("t.custom", { inner: {} })) as Record<string, unknown>;
		expect(Object.keys(absent).sort()).toEqual(["inner", "needed"]);
		expect(Object.keys(absent.inner as object)).toEqual([]);
		expect(absent.needed).toBe("D");
		await expect(broker.call("t.custom", { stamp: "ab", inner: { stamp: "cd" } })).resolves.toEqual(
			{
				stamp: "AB",
				inner: { stamp: "CD" },
				needed: "D"
			}
		);
	});
});
