import fs from "node:fs";
import path from "node:path";
import { ConfigError, ENV_VARIABLES, loadConfig } from "../../../config";

describe("config.loadConfig", () => {
	it("defaults to the embedded mode on port 5921 with every service", () => {
		const cfg = loadConfig({});
		expect(cfg.mode).toBe("embedded");
		expect(cfg.transporter).toBeNull();
		expect(cfg.gateway.port).toBe(5921);
		expect(cfg.services).toContain("api");
		expect(cfg.requestTimeout).toBeGreaterThan(0);
		expect(cfg.log.format).toBe("pretty");
		expect(cfg.namespace).toBe("flashmart");
	});

	it("is a cluster node when TRANSPORTER is set, with JSON logs in production", () => {
		const cfg = loadConfig({
			TRANSPORTER: "nats://nats:4222",
			NODE_ENV: "production",
			SERVICES: "api",
			JWT_PUBLIC_KEY: "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----"
		});
		expect(cfg.mode).toBe("cluster");
		expect(cfg.transporter).toBe("nats://nats:4222");
		expect(cfg.services).toEqual(["api"]);
		expect(cfg.log.format).toBe("json");
	});

	it.each([
		["GATEWAY_PORT", "abc"],
		["GATEWAY_PORT", "70000"],
		["REQUEST_TIMEOUT", "0"],
		["TRANSPORTER", "http://localhost:4222"],
		["LOG_LEVEL", "loud"],
		["NODE_ENV", "staging"],
		["MONGO_URI", "postgres://x"],
		["METRICS_ENABLED", "perhaps"],
		["INVENTORY_SWEEP_INTERVAL", "50"],
		["TRUSTED_PROXIES", "10.0.0.0/99"],
		["TRUSTED_PROXIES", "loopback, proxy.example"],
		["TAX_INCLUSIVE_CURRENCIES", "EUR,eur"],
		["TAX_INCLUSIVE_CURRENCIES", "EUR,XYZ"],
		["TAX_DEFAULT_COUNTRY", "UK"]
	])("stops with a message naming %s when it is %p", (variable, value) => {
		expect(() => loadConfig({ [variable]: value })).toThrow(ConfigError);
		expect(() => loadConfig({ [variable]: value })).toThrow(
			new RegExp(`^Invalid environment variable ${variable}:`)
		);
	});

	it("never defaults secrets in the cluster mode", () => {
		expect(() => loadConfig({ TRANSPORTER: "nats://nats:4222", SERVICES: "users" })).toThrow(
			/^Invalid environment variable JWT_PRIVATE_KEY:/
		);
		expect(() => loadConfig({ TRANSPORTER: "nats://nats:4222", SERVICES: "api" })).toThrow(
			/^Invalid environment variable JWT_PUBLIC_KEY:/
		);
		expect(() => loadConfig({ ADMIN_EMAIL: "a@b.example" })).toThrow(/ADMIN_PASSWORD/);
	});

	it("reads a PEM key written on one line with \\n escapes", () => {
		const cfg = loadConfig({
			TRANSPORTER: "nats://nats:4222",
			SERVICES: "api",
			JWT_PUBLIC_KEY: "-----BEGIN PUBLIC KEY-----\\nMIIB\\n-----END PUBLIC KEY-----"
		});
		expect(cfg.auth.publicKeyPem).toBe(
			"-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----"
		);
	});

	it("refuses an unknown service name in SERVICES", () => {
		expect(() => loadConfig({ SERVICES: "api,bogus" })).toThrow(
			/SERVICES: unknown service 'bogus'/
		);
	});

	it("refuses a heartbeat timeout not above the interval", () => {
		expect(() => loadConfig({ HEARTBEAT_INTERVAL: "5", HEARTBEAT_TIMEOUT: "5" })).toThrow(
			/HEARTBEAT_TIMEOUT/
		);
	});

	it("treats an empty value as unset, as compose files write it", () => {
		const cfg = loadConfig({ TRANSPORTER: "", GATEWAY_PORT: " " });
		expect(cfg.mode).toBe("embedded");
		expect(cfg.gateway.port).toBe(5921);
	});

	it("gives every number it reads a default", () => {
		const cfg = loadConfig({});
		expect(cfg.orders).toEqual({
			ttl: 900,
			sweepInterval: 5000,
			checkoutConcurrency: 32,
			checkoutQueue: 64,
			soldOutTtl: 2000
		});
		expect(cfg.inventory).toEqual({
			lowStockThreshold: 5,
			sweepInterval: 5000,
			holdGrace: 120000,
			saleHoldSeconds: 120
		});
		expect(cfg.catalog.cacheTtl).toBe(300);
	});

	it("reads lists and converts numbers", () => {
		const cfg = loadConfig({
			CORS_ORIGINS: "https://a.example, https://b.example",
			REQUEST_TIMEOUT: "2500"
		});
		expect(cfg.gateway.corsOrigins).toEqual(["https://a.example", "https://b.example"]);
		expect(cfg.requestTimeout).toBe(2500);
	});

	it("has every variable it reads documented in .env.example", () => {
		const example = fs.readFileSync(path.join(__dirname, "..", "..", "..", ".env.example"), "utf8");
		const documented = new Set([...example.matchAll(/^([A-Z0-9_]+)=/gm)].map(m => m[1]));
		expect(ENV_VARIABLES.filter(v => !documented.has(v))).toEqual([]);
	});
});
