/**
 * Requests Node's HTTP parser refuses (issue 16, item 5) are answered in the contract's shape: an error body with a
 * type, X-Request-Id and the security headers, instead of a bare 431 or 400.
 */
import net from "node:net";
import { stopAll } from "../../scripts/lib/cluster";
import { startEmbedded } from "../helpers/embedded";

/** Writes `raw` on a new connection and reads the whole answer (the gateway closes the connection). */
function rawRequest(base: string, raw: string): Promise<string> {
	const url = new URL(base);
	return new Promise((resolve, reject) => {
		const socket = net.connect(Number(url.port), url.hostname, () => socket.write(raw));
		let text = "";
		socket.setEncoding("utf8");
		socket.on("data", d => (text += d));
		socket.on("end", () => resolve(text));
		socket.on("error", reject);
	});
}

function parse(answer: string) {
	const [head, body] = answer.split("\r\n\r\n");
	const [statusLine, ...lines] = head.split("\r\n");
	const headers = Object.fromEntries(
		lines.map(l => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()])
	);
	return { status: Number(statusLine.split(" ")[1]), headers, body: JSON.parse(body) };
}

describe("requests the HTTP parser refuses", () => {
	let base: string;
	beforeAll(async () => {
		({ base } = await startEmbedded("client-error"));
	});
	afterAll(() => stopAll());

	it("answers oversized headers with 431 in the contract's shape", async () => {
		const res = parse(
			await rawRequest(
				base,
				`GET /api/products HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`
			)
		);
		expect(res.status).toBe(431);
		expect(res.body).toMatchObject({
			code: 431,
			type: "HEADERS_TOO_LARGE",
			requestId: expect.any(String)
		});
		expect(res.headers["x-request-id"]).toBe(res.body.requestId);
		expect(res.headers["x-content-type-options"]).toBe("nosniff");
		expect(res.headers["content-type"]).toMatch(/^application\/json/);
	});

	it("answers a bad header byte with 400 in the contract's shape", async () => {
		const res = parse(
			await rawRequest(base, "GET /api/products HTTP/1.1\r\nHost: x\r\nX-Bad\x01: y\r\n\r\n")
		);
		expect(res.status).toBe(400);
		expect(res.body).toMatchObject({
			code: 400,
			type: "BAD_REQUEST",
			requestId: expect.any(String)
		});
		expect(res.headers["x-request-id"]).toBe(res.body.requestId);
	});
});
