import { ConfigError, loadConfig } from "../../../config";
import { resolveRateLimitStore } from "../../../adapters/rate-limit";

const PRIVATE = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----";
const CLUSTER = {
	TRANSPORTER: "nats://nats:4222",
	SERVICES: "users",
	JWT_PRIVATE_KEY: PRIVATE,
	MONGO_URI: "mongodb://mongo:27017/flashmart"
};

describe("config: login and registration throttling", () => {
	it("defaults the limits", () => {
		const { auth } = loadConfig({});
		expect(auth).toMatchObject({
			loginMaxFailures: 5,
			loginFailureWindow: 900,
			loginAddressMaxAccounts: 20,
			loginAddressWindow: 3600,
			deviceTokenTtl: 2592000,
			registerMaxPerWindow: 100,
			registerWindow: 60
		});
	});

	it("refuses a users node in a cluster with MONGO_URI and no Redis for the shared counters, naming CACHER", () => {
		expect(() => loadConfig(CLUSTER)).toThrow(ConfigError);
		expect(() => loadConfig(CLUSTER)).toThrow(/CACHER/);
		expect(loadConfig({ ...CLUSTER, CACHER: "redis://redis:6379" }).cacher.type).toBe("redis");
		// Without MONGO_URI a cluster has one users node (its own NeDB files): its process counts exactly.
		expect(loadConfig({ ...CLUSTER, MONGO_URI: "" }).cacher.type).toBe("memory");
	});

	it("normalises ADMIN_EMAIL with the shared email rule and refuses an invisible character", () => {
		expect(
			loadConfig({ ADMIN_EMAIL: "Ａdmin@Example.com", ADMIN_PASSWORD: "admin-password" }).auth
				.adminEmail
		).toBe("admin@example.com");
		expect(() =>
			loadConfig({ ADMIN_EMAIL: "ad\u00admin@example.com", ADMIN_PASSWORD: "admin-password" })
		).toThrow(/ADMIN_EMAIL/);
	});

	it("counts in the process without Redis", async () => {
		const store = resolveRateLimitStore({ cacher: { type: "memory" }, namespace: "t" });
		expect(store.kind).toBe("memory");
		const limiter = store.limiter({ name: "x", points: 100, duration: 60 });
		await limiter.consume("k");
		await limiter.consume("k");
		expect((await limiter.get("k"))?.consumedPoints).toBe(2);
		await store.close();
	});
});
