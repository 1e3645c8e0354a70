import { clientIp } from "../../../../services/api/client-ip";

describe("clientIp", () => {
	it("ignores X-Forwarded-For from a connection that is not a trusted proxy", () => {
		expect(clientIp("::ffff:203.0.113.9", "1.2.3.4", [])).toBe("203.0.113.9");
		expect(clientIp("203.0.113.9", "1.2.3.4", ["10.0.0.1"])).toBe("203.0.113.9");
	});

	it("takes the nearest untrusted address behind trusted proxies", () => {
		expect(clientIp("10.0.0.1", "6.6.6.6, 198.51.100.7", ["10.0.0.1"])).toBe("198.51.100.7");
		expect(clientIp("10.0.0.1", "6.6.6.6, 198.51.100.7, 10.0.0.2", ["10.0.0.1", "10.0.0.2"])).toBe(
			"198.51.100.7"
		);
	});

	it("keeps the proxy's address when it forwards nothing", () => {
		expect(clientIp("10.0.0.1", undefined, ["10.0.0.1"])).toBe("10.0.0.1");
	});
});
