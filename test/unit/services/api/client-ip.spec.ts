import { clientIp, trustProxies } from "../../../../services/api/client-ip";

const trust = (...entries: string[]) => trustProxies(entries);

describe("clientIp", () => {
	it("ignores X-Forwarded-For from a connection that is not a trusted proxy", () => {
		expect(clientIp("::ffff:203.0.113.9", "1.2.3.4", trust())).toBe("203.0.113.9");
		expect(clientIp("203.0.113.9", "1.2.3.4", trust("10.0.0.1"))).toBe("203.0.113.9");
	});

	it("takes the nearest untrusted address behind trusted proxies", () => {
		expect(clientIp("10.0.0.1", "6.6.6.6, 198.51.100.7", trust("10.0.0.1"))).toBe("198.51.100.7");
		expect(
			clientIp("10.0.0.1", "6.6.6.6, 198.51.100.7, 10.0.0.2", trust("10.0.0.1", "10.0.0.2"))
		).toBe("198.51.100.7");
	});

	it("keeps the proxy's address when it forwards nothing", () => {
		expect(clientIp("10.0.0.1", undefined, trust("10.0.0.1"))).toBe("10.0.0.1");
	});

	it("trusts CIDR ranges and proxy-addr's names (a load balancer in 10.0.0.0/8)", () => {
		expect(clientIp("10.1.2.3", "198.51.100.7", trust("10.0.0.0/8"))).toBe("198.51.100.7");
		expect(clientIp("10.1.2.3", "198.51.100.7, 10.9.9.9", trust("10.0.0.0/8"))).toBe(
			"198.51.100.7"
		);
		expect(clientIp("127.0.0.1", "198.51.100.7", trust("loopback"))).toBe("198.51.100.7");
		expect(clientIp("::ffff:192.168.1.5", "198.51.100.7", trust("uniquelocal"))).toBe(
			"198.51.100.7"
		);
		expect(clientIp("11.0.0.1", "198.51.100.7", trust("10.0.0.0/8"))).toBe("11.0.0.1");
	});

	it("refuses an entry it cannot parse", () => {
		expect(() => trustProxies(["10.0.0.0/99"])).toThrow();
		expect(() => trustProxies(["not-an-address"])).toThrow();
	});
});
