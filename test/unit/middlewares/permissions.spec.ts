import { ServiceBroker } from "moleculer";
import PermissionsMiddleware from "../../../middlewares/permissions.middleware";

describe("permissions middleware", () => {
	const broker = new ServiceBroker({ logger: false, middlewares: [PermissionsMiddleware] });
	broker.createService({
		name: "things",
		actions: {
			open: { handler: () => "open" },
			mine: { permissions: "authenticated", handler: () => "mine" },
			admin: { permissions: ["admin"], handler: () => "admin" }
		} as never
	});
	beforeAll(() => broker.start());
	afterAll(() => broker.stop());

	const customer = { user: { id: "u1", email: "c@x.example", roles: ["customer"] } };
	const admin = { user: { id: "u2", email: "a@x.example", roles: ["customer", "admin"] } };

	it("lets anyone call an action that declares nothing", async () => {
		await expect(broker.call("things.open")).resolves.toBe("open");
	});

	it("answers 401 NO_TOKEN without a user", async () => {
		await expect(broker.call("things.mine")).rejects.toMatchObject({ code: 401, type: "NO_TOKEN" });
		await expect(broker.call("things.admin")).rejects.toMatchObject({
			code: 401,
			type: "NO_TOKEN"
		});
	});

	it("answers 403 FORBIDDEN to a user without the role", async () => {
		await expect(broker.call("things.mine", {}, { meta: customer })).resolves.toBe("mine");
		await expect(broker.call("things.admin", {}, { meta: customer })).rejects.toMatchObject({
			code: 403,
			type: "FORBIDDEN"
		});
	});

	it("lets an admin in", async () => {
		await expect(broker.call("things.admin", {}, { meta: admin })).resolves.toBe("admin");
	});
});
