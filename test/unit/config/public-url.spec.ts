import { ConfigError, loadConfig } from "../../../config";

describe("PUBLIC_URL", () => {
	it("defaults to the gateway's address, localhost for a wildcard host", () => {
		expect(loadConfig({}).gateway.publicUrl).toBe("http://localhost:5921");
		expect(loadConfig({ GATEWAY_HOST: "127.0.0.1", GATEWAY_PORT: "8080" }).gateway.publicUrl).toBe(
			"http://127.0.0.1:8080"
		);
		expect(loadConfig({ GATEWAY_HOST: "::1" }).gateway.publicUrl).toBe("http://[::1]:5921");
	});

	it("keeps a path prefix and drops a trailing slash", () => {
		expect(loadConfig({ PUBLIC_URL: "https://shop.example.com/store/" }).gateway.publicUrl).toBe(
			"https://shop.example.com/store"
		);
	});

	it.each(["shop.example.com", "ftp://shop.example.com", "https://shop.example.com/?a=1"])(
		"refuses %s naming the variable",
		value => {
			expect(() => loadConfig({ PUBLIC_URL: value })).toThrow(ConfigError);
			expect(() => loadConfig({ PUBLIC_URL: value })).toThrow(/PUBLIC_URL/);
		}
	);
});
