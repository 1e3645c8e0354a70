/**
 * Bodies over 1 MiB answer 413 whatever their framing or content type (issue 16, item 6): a chunked body without
 * Content-Length, not JSON, used to be ignored unread and answered 422.
 */
import http from "node:http";
import { stopAll } from "../../scripts/lib/cluster";
import { startEmbedded } from "../helpers/embedded";

/** Sends `chunks` chunked (no Content-Length), as a streaming client does. */
function sendChunked(
	base: string,
	path: string,
	headers: Record<string, string>,
	chunks: Buffer[]
) {
	return new Promise<{ status: number; body: any }>((resolve, reject) => {
		const url = new URL(path, base);
		const req = http.request(
			{ host: url.hostname, port: url.port, path: url.pathname, method: "POST", headers },
			res => {
				let text = "";
				res.setEncoding("utf8");
				res.on("data", d => (text += d));
				res.on("end", () =>
					resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null })
				);
			}
		);
		req.on("error", reject);
		(async () => {
			for (const chunk of chunks) {
				if (!req.write(chunk)) await new Promise(r => req.once("drain", r));
			}
			req.end();
		})().catch(() => undefined);
	});
}

describe("the 1 MiB body limit", () => {
	let base: string;
	beforeAll(async () => {
		({ base } = await startEmbedded("body-limit"));
	});
	afterAll(() => stopAll());

	const big = () => Array.from({ length: 24 }, () => Buffer.alloc(64 * 1024, "a"));

	it.each([
		["text/plain", { "Content-Type": "text/plain" }],
		["no content type", {}],
		["JSON", { "Content-Type": "application/json" }]
	])("answers 413 to a chunked body over 1 MiB sent as %s", async (_name, headers) => {
		const res = await sendChunked(
			base,
			"/api/auth/login",
			headers as Record<string, string>,
			big()
		);
		expect(res.status).toBe(413);
		expect(res.body).toMatchObject({ code: 413, type: "PAYLOAD_TOO_LARGE" });
	});

	it("answers a small chunked body that is not JSON 415 UNSUPPORTED_MEDIA_TYPE (issue 24)", async () => {
		const res = await sendChunked(base, "/api/auth/login", { "Content-Type": "text/plain" }, [
			Buffer.from("hello")
		]);
		expect(res.status).toBe(415);
		expect(res.body).toMatchObject({ code: 415, type: "UNSUPPORTED_MEDIA_TYPE" });
	});
});
