/**
 * `sale <id>` (repl/commands/sale.ts) against a stand-in inventory service in an in-process broker: the stand-in
 * answers inventory.saleStats in the documented shape, admin-only through the real permissions middleware and with
 * strict params, so the command's call and its printing are what is checked here; the real action is checked on a
 * cluster by the REPL's end-to-end test.
 */
import { type Context, ServiceBroker } from "moleculer";
import PermissionsMiddleware from "../../../../middlewares/permissions.middleware";
import { NotFoundError } from "../../../../lib/errors";
import { REPL_COMMANDS } from "../../../../repl/commands";
import { type SaleStats, inspectSale, saleCommand } from "../../../../repl/commands/sale";
import type { AppMeta } from "../../../../types/meta";

const STATS: SaleStats = {
	sale: {
		id: "sale-1",
		name: "Midnight drop",
		startsAt: "2030-01-01T00:00:00.000Z",
		endsAt: "2030-01-01T01:00:00.000Z",
		holdSeconds: 120,
		status: "live",
		items: [
			{
				productId: "p-hot",
				salePrice: 4900,
				currency: "USD",
				units: 10000,
				perCustomerLimit: 2,
				// The cached document's copy, older than inventory's counts below.
				unitsLeft: 9000
			},
			{
				productId: "p-side",
				salePrice: 990,
				currency: "USD",
				units: 50,
				perCustomerLimit: 5,
				unitsLeft: 50
			}
		]
	},
	items: [{ productId: "p-hot", unitsLeft: 8700, held: 300, sold: 1000 }],
	holdsOpen: 300
};

describe("repl sale <id>", () => {
	const broker = new ServiceBroker({ logger: false, middlewares: [PermissionsMiddleware] });
	const calls: Array<{ params: unknown; roles: string[] | undefined }> = [];
	broker.createService({
		name: "inventory",
		actions: {
			saleStats: {
				permissions: ["admin"],
				params: { $$strict: true, id: "string" },
				handler(ctx: Context<{ id: string }, AppMeta>) {
					calls.push({ params: ctx.params, roles: ctx.meta.user?.roles });
					if (ctx.params.id !== STATS.sale.id) throw new NotFoundError("Sale");
					return STATS;
				}
			}
		}
	} as never);

	beforeAll(() => broker.start());
	afterAll(() => broker.stop());
	afterEach(() => jest.restoreAllMocks());

	/** Runs the command as moleculer-repl would and answers what it printed to stdout and stderr. */
	async function typed(id: string) {
		const out: string[] = [];
		const err: string[] = [];
		jest.spyOn(console, "log").mockImplementation((...a: unknown[]) => void out.push(a.join(" ")));
		jest
			.spyOn(console, "error")
			.mockImplementation((...a: unknown[]) => void err.push(a.join(" ")));
		await saleCommand.action(broker, { id, options: {} });
		return { out: out.join("\n"), err: err.join("\n") };
	}

	it("is one of the REPL's operator commands", () => {
		expect(REPL_COMMANDS.map(c => c.command)).toContain("sale <id>");
	});

	it("prints the status, the window, each item's price, units, left, held, sold and limit, and the holds open", async () => {
		const { out, err } = await typed("sale-1");
		expect(err).toBe("");
		expect(JSON.parse(out)).toEqual({
			id: "sale-1",
			name: "Midnight drop",
			status: "live",
			window: {
				startsAt: "2030-01-01T00:00:00.000Z",
				endsAt: "2030-01-01T01:00:00.000Z",
				holdSeconds: 120
			},
			items: [
				{
					productId: "p-hot",
					salePrice: 4900,
					currency: "USD",
					units: 10000,
					left: 8700,
					held: 300,
					sold: 1000,
					perCustomerLimit: 2
				},
				// No counts from inventory for this item: null, not the document's unitsLeft.
				{
					productId: "p-side",
					salePrice: 990,
					currency: "USD",
					units: 50,
					left: null,
					held: null,
					sold: null,
					perCustomerLimit: 5
				}
			],
			holdsOpen: 300
		});
	});

	it("calls inventory.saleStats as an admin, with the id alone", async () => {
		calls.length = 0;
		await inspectSale(broker, "sale-1");
		expect(calls).toEqual([{ params: { id: "sale-1" }, roles: ["customer", "admin"] }]);
	});

	it("prints an unknown sale as one error line with its type, and nothing on stdout", async () => {
		const { out, err } = await typed("no-such-sale");
		expect(out).toBe("");
		expect(err).toBe(">> ERROR: NotFoundError (NOT_FOUND) Sale not found");
	});

	it("is refused by the action without an admin: the stand-in checks permissions as inventory does", async () => {
		await expect(
			broker.call(
				"inventory.saleStats",
				{ id: "sale-1" },
				{
					meta: { user: { id: "c", email: "c@x.example", roles: ["customer"] } }
				}
			)
		).rejects.toMatchObject({ code: 403, type: "FORBIDDEN" });
	});
});
