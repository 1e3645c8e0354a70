/**
 * monitoring/kibana/import.sh, the compose stack's `kibana-setup` job, run for real (sh and curl) against a loopback
 * stand-in for Kibana's HTTP API (no Kibana on a test machine): it waits for /api/status, authenticates with the
 * credentials from the environment, posts saved-objects.ndjson to the import API with overwrite=true and the
 * kbn-xsrf header, is idempotent, and fails loudly when Kibana refuses the objects.
 */
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { KIBANA_DIR, run } from "../helpers/monitoring";

const SCRIPT = path.join(KIBANA_DIR, "import.sh");
const OBJECTS = fs.readFileSync(path.join(KIBANA_DIR, "saved-objects.ndjson"), "utf8");
// Quotes and backslashes: the script must pass them to curl intact.
const USER = "elastic";
const PASSWORD = 'pa"ss\\word';

interface Received {
	method: string;
	url: string;
	headers: http.IncomingHttpHeaders;
	body: string;
}

interface KibanaStandIn {
	url: string;
	received: Received[];
	/** Answers 503 to this many more status checks (a Kibana still starting). */
	unavailableFor: number;
	importAnswer: { status: number; body: unknown };
	close(): Promise<void>;
}

async function startKibanaStandIn(): Promise<KibanaStandIn> {
	const state: KibanaStandIn = {
		url: "",
		received: [],
		unavailableFor: 2,
		importAnswer: { status: 200, body: { success: true, successCount: 6, successResults: [] } },
		close: () => new Promise(resolve => server.close(() => resolve()))
	};
	const expectedAuth = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`;
	const server = http.createServer((req, res) => {
		let body = "";
		req.on("data", d => (body += d));
		req.on("end", () => {
			state.received.push({ method: req.method!, url: req.url!, headers: req.headers, body });
			const send = (status: number, payload: unknown) =>
				res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(payload));
			if (req.headers.authorization !== expectedAuth) return send(401, { statusCode: 401 });
			if (req.url === "/api/status") {
				if (state.unavailableFor > 0) {
					state.unavailableFor--;
					return send(503, { status: { overall: { level: "unavailable" } } });
				}
				return send(200, { status: { overall: { level: "available" } } });
			}
			if (req.method === "POST" && req.url?.startsWith("/api/saved_objects/_import")) {
				if (!req.headers["kbn-xsrf"])
					return send(400, { message: "Request must contain a kbn-xsrf header." });
				return send(state.importAnswer.status, state.importAnswer.body);
			}
			send(404, {});
		});
	});
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
	return state;
}

const importTo = (url: string, env: Record<string, string> = {}) =>
	run("sh", [SCRIPT], {
		env: {
			KIBANA_URL: url,
			KIBANA_USERNAME: USER,
			KIBANA_PASSWORD: PASSWORD,
			KIBANA_WAIT_SECONDS: "30",
			...env
		}
	});

describe("kibana import script", () => {
	let kibana: KibanaStandIn;
	beforeEach(async () => {
		kibana = await startKibanaStandIn();
	});
	afterEach(() => kibana.close());

	const imports = () => kibana.received.filter(r => r.url.startsWith("/api/saved_objects/_import"));

	it("waits for Kibana, then imports every saved object with overwrite=true, as often as it runs", async () => {
		const first = await importTo(kibana.url);
		expect(first).toMatchObject({ code: 0 });
		expect(first.stdout).toMatch(/imported 6 saved objects/);
		// It asked for the status until Kibana was available.
		expect(kibana.received.filter(r => r.url === "/api/status").length).toBeGreaterThanOrEqual(3);

		const second = await importTo(kibana.url);
		expect(second).toMatchObject({ code: 0 });

		expect(imports()).toHaveLength(2);
		for (const req of imports()) {
			expect(req.method).toBe("POST");
			expect(new URL(req.url, kibana.url).searchParams.get("overwrite")).toBe("true");
			expect(req.headers["kbn-xsrf"]).toBeTruthy();
			expect(req.headers["content-type"]).toMatch(/^multipart\/form-data; boundary=/);
			expect(req.body).toMatch(
				/Content-Disposition: form-data; name="file"; filename="saved-objects.ndjson"/
			);
			expect(req.body).toContain(OBJECTS);
		}
		// The same objects (fixed ids) both times: the second run overwrites, it does not duplicate.
		expect(imports()[0].body.split(/\r\n/).slice(1, -2)).toEqual(
			imports()[1].body.split(/\r\n/).slice(1, -2)
		);
	});

	it("fails, naming Kibana's errors, when the import is refused", async () => {
		kibana.unavailableFor = 0;
		kibana.importAnswer = {
			status: 200,
			body: {
				success: false,
				errors: [{ id: "flashmart-errors", error: { type: "missing_references" } }]
			}
		};
		const res = await importTo(kibana.url);
		expect(res.code).toBe(1);
		expect(res.stderr).toMatch(/refused.*missing_references/);
	});

	it("gives up after KIBANA_WAIT_SECONDS when Kibana never becomes available (wrong password)", async () => {
		const res = await importTo(kibana.url, { KIBANA_PASSWORD: "wrong", KIBANA_WAIT_SECONDS: "2" });
		expect(res.code).toBe(1);
		expect(res.stderr).toMatch(/did not answer 200 within 2s/);
		expect(imports()).toHaveLength(0);
	});

	it("refuses a username without a password", async () => {
		const res = await run("sh", [SCRIPT], {
			env: { KIBANA_URL: kibana.url, KIBANA_USERNAME: USER, KIBANA_PASSWORD: "" }
		});
		expect(res.code).toBe(1);
		expect(res.stderr).toMatch(/KIBANA_PASSWORD/);
	});
});
