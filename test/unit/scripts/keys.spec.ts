import { execFileSync } from "node:child_process";
import path from "node:path";
import { loadConfig } from "../../../config";

const KEYS_JS = path.resolve(__dirname, "../../../dist/scripts/keys.js");

/** Reads `NAME="value"` lines as a .env file loader (docker compose, dotenv) does. */
function parseEnvFile(text: string): Record<string, string> {
	const env: Record<string, string> = {};
	for (const line of text.trim().split("\n")) {
		const m = /^([A-Z_]+)="(.*)"$/.exec(line);
		if (!m) throw new Error(`not a .env line: ${line}`);
		env[m[1]] = m[2];
	}
	return env;
}

describe("npm run keys", () => {
	it("prints a pair a cluster users node and gateway accept as they are", () => {
		const env = parseEnvFile(execFileSync(process.execPath, [KEYS_JS], { encoding: "utf8" }));
		expect(Object.keys(env)).toEqual(["JWT_PRIVATE_KEY", "JWT_PUBLIC_KEY"]);
		const cfg = loadConfig({ ...env, TRANSPORTER: "nats://127.0.0.1:4222", SERVICES: "api,users" });
		expect(cfg.auth.privateKeyPem).toMatch(
			/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----$/
		);
		expect(cfg.auth.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
	});

	it("prints a fresh pair each time", () => {
		const a = execFileSync(process.execPath, [KEYS_JS], { encoding: "utf8" });
		const b = execFileSync(process.execPath, [KEYS_JS], { encoding: "utf8" });
		expect(a).not.toEqual(b);
	});
});
